#!/bin/sh
# PID 1 of the interop guest (INTEROP_TARGET trixie: UML 6.12 in the trixie rootfs; sid: UML 7.2 in the
# sid rootfs; the rootfs is its root via hostfs), booted by interop/run.sh. Brings up loopback, the kernel's NFS server and client with RPC-with-TLS (rpcbind,
# rpc.mountd, nfsdcld, nfsd, tlshd), runs each scenario in guest/scenarios.mjs on the rootfs's nodejs,
# and writes rows, logs and the exit code to /interop-run (a directory of the host), then powers off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
# libuv's io_uring rings trip a UML page-table bug ("BUG: Bad page map ... [io_uring]"): no io_uring
# in this guest (set below, once /proc is mounted), and libuv told so too.
export UV_USE_IO_URING=0
out=/interop-run
log=$out/guest.log
repo=/rpctls
# Refuse to run anywhere but as PID 1 of a UML kernel (it mounts over /etc, /srv, /mnt, ...).
[ $$ -eq 1 ] || { echo "$0: only PID 1 of the interop UML guest runs this" >&2; exit 1; }
mount -t proc proc /proc 2>/dev/null
grep -q hostfs /proc/filesystems || { echo "$0: not a UML kernel with hostfs" >&2; exit 1; }
exec >"$log" 2>&1
t0=$(date +%s%N)
stamp() { echo "--- $(( ($(date +%s%N) - t0) / 1000000 )) ms: $*"; }
fail_setup() {
  stamp "setup failed: $*"
  echo "{\"id\":\"setup\",\"scenario\":\"guest setup (nfsd, mountd, tlshd)\",\"ok\":false,\"cipher\":\"-\",\"offload\":\"-\",\"detail\":\"$*\"}" >> "$out/results.jsonl"
  finish 1
}
finish() {
  stamp "tls_stat at the end"; cat /proc/net/tls_stat
  stamp "dmesg (tail)"; dmesg | tail -n 60
  stamp "tlshd log"; tail -n 80 /run/interop/tlshd.log 2>/dev/null
  stamp "nfsdcld log"; tail -n 20 /run/interop/nfsdcld.log 2>/dev/null
  echo "$1" > "$out/exit-code.tmp" && mv "$out/exit-code.tmp" "$out/exit-code"
  sync
  # minbase has no poweroff(8): sysrq o, else the reboot(2) syscall (169, POWER_OFF) via perl-base.
  echo o > /proc/sysrq-trigger 2>/dev/null
  perl -e 'syscall(169, 0xfee1dead, 672274793, 0x4321fedc, 0)' 2>/dev/null
  sleep 10
}

mount -t proc proc /proc 2>/dev/null
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts 2>/dev/null
for d in /tmp /run /dev/shm /var/lib/nfs /srv /mnt; do mount -t tmpfs -o mode=0755 tmpfs "$d" || fail_setup "tmpfs $d"; done
chmod 1777 /tmp /dev/shm
ip link set lo up
echo 2 > /proc/sys/kernel/io_uring_disabled
hostname rpctls-interop
stamp "kernel $(uname -r), $(nproc) cpu"

# Files the guest must not change in the cached rootfs are bind-mounted over from tmpfs.
mkdir -p /run/interop
printf '127.0.0.1\tlocalhost %s\n::1\tlocalhost\n' "$INTEROP_NAME" > /run/interop/hosts
mount --bind /run/interop/hosts /etc/hosts

# 7.2 has no ghash-generic module any more (gcm finds its ghash itself).
case "$INTEROP_TARGET" in
  sid) modules="tls gcm chacha20poly1305 sunrpc auth_rpcgss grace lockd nfs_acl nfsd nfs nfsv3 nfsv4" ;;
  *) modules="tls gcm ghash-generic chacha20poly1305 sunrpc auth_rpcgss grace lockd nfs_acl nfsd nfs nfsv3 nfsv4" ;;
esac
modprobe -a $modules || fail_setup "modprobe $modules"
stamp "modules loaded"; cat /proc/net/tls_stat | tr -s ' \n' ' '; echo

# Exports on tmpfs (nfsd cannot export hostfs): the v4 root, a TLS-only export and a plaintext one.
mkdir -p /srv/nfs && mount -t tmpfs -o size=64m nfsroot /srv/nfs
for e in tls plain mtls; do
  mkdir -p /srv/nfs/$e && mount -t tmpfs -o size=16m nfs$e /srv/nfs/$e
  printf 'hello from /srv/nfs/%s\n' $e > /srv/nfs/$e/hello.txt
done
head -c 1048576 /dev/urandom > /srv/nfs/tls/big.bin
export INTEROP_BIG_SHA256=$(sha256sum /srv/nfs/tls/big.bin | cut -d' ' -f1)
opts=no_subtree_check,insecure,no_root_squash,sec=sys
cat > /run/interop/exports <<EOT
/srv/nfs        127.0.0.1(ro,fsid=0,$opts,xprtsec=none:tls:mtls)
/srv/nfs/tls    127.0.0.1(rw,fsid=1,$opts,xprtsec=tls)
/srv/nfs/plain  127.0.0.1(rw,fsid=2,$opts,xprtsec=none)
/srv/nfs/mtls   127.0.0.1(rw,fsid=3,$opts,xprtsec=mtls)
EOT
mount --bind /run/interop/exports /etc/exports
mkdir -p /var/lib/nfs/rpc_pipefs /var/lib/nfs/nfsdcld /var/lib/nfs/v4recovery /var/lib/nfs/sm /var/lib/nfs/sm.bak
touch /var/lib/nfs/etab /var/lib/nfs/rmtab
mount -t rpc_pipefs rpc_pipefs /var/lib/nfs/rpc_pipefs || fail_setup "rpc_pipefs"
mount -t nfsd nfsd /proc/fs/nfsd || fail_setup "nfsd fs"

mkdir -p /run/rpcbind && rpcbind -w || fail_setup "rpcbind"
exportfs -ra || fail_setup "exportfs"
exportfs -v
rpc.mountd --port 20048 || fail_setup "rpc.mountd"
# nfsdcld: nfsd still logs "Unable to initialize client recovery tracking (-110)" in this guest; harmless
# here: the grace period is 10 s and the v4 READs use the bypass stateid, which grace does not block.
nfsdcld -F -d >/run/interop/nfsdcld.log 2>&1 &
sleep 0.3
# nfs-utils 3.1 (sid) leaves NFSv4.0 off unless asked; the v4 scenarios speak 4.0.
versions=""
[ "$INTEROP_TARGET" = sid ] && versions="-V 3 -V 4 -V 4.0 -V 4.1 -V 4.2"
rpc.nfsd $versions --grace-time 10 --lease-time 10 8 || fail_setup "rpc.nfsd"
cat /proc/fs/nfsd/versions; echo

cat > /run/interop/tlshd.conf <<EOT
[debug]
loglevel=1
tls=0
nl=0

[authenticate]

[authenticate.client]
x509.truststore=$INTEROP_PKI/ca.pem
x509.certificate=$INTEROP_PKI/client.pem
x509.private_key=$INTEROP_PKI/client.key

[authenticate.server]
x509.truststore=$INTEROP_PKI/ca.pem
x509.certificate=$INTEROP_PKI/server.pem
x509.private_key=$INTEROP_PKI/server.key
EOT
tlshd -s -c /run/interop/tlshd.conf >/run/interop/tlshd.log 2>&1 &
sleep 0.5
kill -0 $! 2>/dev/null || fail_setup "tlshd exited: $(tr '\n"' '  ' < /run/interop/tlshd.log)"
rpcinfo -p 127.0.0.1
stamp "setup done"

# Scenarios: each prints its rows; one that dies or times out without a row gets a failing row.
export RPCTLS_NATIVE_PATH INTEROP_PKI INTEROP_NAME INTEROP_TARGET
status=0
for s in $(echo "$INTEROP_SCENARIOS" | tr , " "); do
  stamp "scenario $s"
  limit=120
  [ "$s" = ganesha ] && limit=400   # starts NFS-Ganesha, then 20+ sessions, some waiting out its race
  timeout -k 5 $limit node "$repo/interop/guest/scenarios.mjs" "$s" > /run/interop/rows.$s 2>/run/interop/stderr.$s
  rc=$?
  cat /run/interop/rows.$s /run/interop/stderr.$s
  grep '^{' /run/interop/rows.$s >> "$out/results.jsonl"
  if [ $rc -ne 0 ]; then
    status=1
    if ! grep -q '^{' /run/interop/rows.$s; then
      why=$(tail -n 3 /run/interop/stderr.$s | tr '\n"\\' '   ' | cut -c1-300)
      echo "{\"run\":\"$s\",\"id\":\"$s\",\"scenario\":\"$s\",\"ok\":false,\"cipher\":\"-\",\"offload\":\"-\",\"detail\":\"exit $rc: $why\"}" >> "$out/results.jsonl"
    fi
  fi
done
stamp "scenarios done"
finish $status
