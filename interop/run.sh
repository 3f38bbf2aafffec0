#!/usr/bin/env bash
# npm run interop: rpctls against the Linux kernel's own RPC-with-TLS (nfsd + tlshd, and the kernel NFS
# client), inside trixie's user-mode-linux 6.12 kernel booted in a cached Debian trixie rootfs; our
# programs run there on the rootfs's Debian nodejs. Prints a table (scenario, result, cipher, offload)
# and "interop totals: N passed, N failed"; exits non-zero on any failure. Needs root (debootstrap,
# chroot, mount namespaces). README.md, "Interop with the Linux kernel", says what each row proves.
# Env: RPCTLS_INTEROP_CACHE (default /var/cache/rpctls-interop), RPCTLS_INTEROP_TIMEOUT (guest, s; 600),
#      RPCTLS_INTEROP_SCENARIOS (comma list, default all), RPCTLS_INTEROP_MEM (guest RAM, default 1G).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cache=${RPCTLS_INTEROP_CACHE:-/var/cache/rpctls-interop}
name=nfs.test
scenarios=${RPCTLS_INTEROP_SCENARIOS:-null-v4,null-v3,read-v4,read-v3,cli-probe-tls,plain-v4,plain-v3,cli-probe-plain,kclient-lib,kclient-cli,agent-none,agent-mount,agent-untrusted,agent-restart,agent-mtls}
now() { date +%s%N; }
elapsed() { echo $(( ($(now) - $1) / 1000000 )); }
totals() { echo "interop totals: $1 passed, $2 failed"; }

if [ "$(id -u)" != 0 ]; then
  echo "interop: needs root (debootstrap, chroot, mount namespaces)" >&2
  totals 0 1
  exit 2
fi
case "$repo" in *[[:space:]]*) echo "interop: the repository path must not contain spaces" >&2; totals 0 1; exit 2 ;; esac
for tool in debootstrap openssl unshare; do
  if ! command -v "$tool" >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap openssl util-linux >&2
    break
  fi
done

t_all=$(now)
t=$(now)
rootfs=$(interop/rootfs.sh)
ms_rootfs=$(elapsed "$t")

# Our programs run from dist/ (bin/rpctls.js does too): rebuild it when a source is newer.
t=$(now)
if [ ! -f dist/index.js ] || [ ! -f dist/cli/index.js ] || [ -n "$(find src -newer dist/index.js -name '*.ts' -print -quit)" ]; then
  echo "interop: building dist/ (tsc)" >&2
  npx tsc -p tsconfig.build.json >&2 || echo "interop: tsc reported errors; running with what it emitted" >&2
fi
ms_build=$(elapsed "$t")

t=$(now)
addon=$(interop/build-addon.sh "$rootfs")
ms_addon=$(elapsed "$t")

# The ptrace shim linux.uml needs on AVX-512/AMX hosts (see test/uml/xstate-shim.c), built with the rootfs's gcc.
shim_hash=$(sha256sum test/uml/xstate-shim.c | cut -c1-12)
shim=/opt/rpctls-interop/uml-xstate-$shim_hash.so
if [ ! -f "$rootfs$shim" ]; then
  exec 8>"$cache/.shim-lock" && flock -w 300 8
  mkdir -p "$rootfs/opt/rpctls-interop"
  cp test/uml/xstate-shim.c "$rootfs/opt/rpctls-interop/xstate-shim.c"
  timeout 120 chroot "$rootfs" env -i PATH=/usr/bin:/bin gcc -O2 -Wall -Wextra -shared -fPIC \
    -o "$shim.tmp" /opt/rpctls-interop/xstate-shim.c -ldl >&2
  mv "$rootfs$shim.tmp" "$rootfs$shim"
fi

run="$cache/runs/$(date +%Y%m%d-%H%M%S)-$$"
mkdir -p "$run"
ls -1d "$cache"/runs/*/ 2>/dev/null | head -n -5 | xargs -r rm -rf   # keep the last 5 runs
interop/pki.sh "$run/pki" "$name"
mkdir -p "$rootfs/rpctls" "$rootfs/interop-run"

# trixie's linux.uml needs trixie's glibc: run it chrooted into the rootfs, in a private mount namespace
# (nothing stays mounted on the host) where the checkout (read-only), the run directory and a tmpfs for
# the guest's RAM are mounted. The guest's root is that chroot, through hostfs.
echo "interop: booting UML $(cat "$rootfs/.uml-release") (run directory $run)" >&2
t=$(now)
set +e
SHIM=$shim timeout --kill-after=15 "${RPCTLS_INTEROP_TIMEOUT:-600}" unshare --mount --propagation private -- sh -c '
  set -e
  root=$1 repo=$2 run=$3
  shift 3
  mount --bind "$repo" "$root/rpctls"
  mount -o remount,bind,ro "$root/rpctls"
  mount --bind "$run" "$root/interop-run"
  mount -t tmpfs -o mode=1777 umlshm "$root/dev/shm"
  exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TMPDIR=/dev/shm LD_PRELOAD="$SHIM" "$@"
' sh "$rootfs" "$repo" "$run" \
  /usr/bin/linux.uml mem="${RPCTLS_INTEROP_MEM:-1G}" rootfstype=hostfs rw init=/rpctls/interop/guest/init.sh \
  umid="rpctls-interop-$$" uml_dir=/dev/shm/uml con=null con0=null,fd:2 \
  INTEROP_NAME="$name" INTEROP_PKI=/interop-run/pki RPCTLS_NATIVE_PATH="$addon" INTEROP_SCENARIOS="$scenarios" \
  </dev/null >"$run/console.log" 2>&1
uml_status=$?
set -e
ms_guest=$(elapsed "$t")

guest_exit=$(cat "$run/exit-code" 2>/dev/null || echo none)
node interop/report.mjs "$run/results.jsonl" "$scenarios" \
  "rootfs ${ms_rootfs} ms, dist ${ms_build} ms, addon ${ms_addon} ms, boot+guest ${ms_guest} ms, total $(elapsed "$t_all") ms" \
  "$guest_exit" "$uml_status" "$run"
