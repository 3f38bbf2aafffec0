#!/bin/sh
# PID 1 inside the UML guest started by run.sh: mount, load kernel TLS, run the command, power off.
# With RPCTLS_UML_HOSTROOT (Linux 7.2) the guest's root is the sid rootfs that holds the kernel's
# modules; the command then runs chrooted into the host's root mounted there.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
host="${RPCTLS_UML_HOSTROOT:-}"
out="$host$RPCTLS_UML_OUT"

mount -t proc proc /proc
mount -t sysfs sys /sys
# UML's io_uring breaks its page tables ("Bad page map ... io_uring", then a panic in exit_mmap); the
# official Node 22+ builds use io_uring through libuv (Debian's and the older ones do not): none here.
echo 2 > /proc/sys/kernel/io_uring_disabled 2>/dev/null
export UV_USE_IO_URING=0
mount -t tmpfs -o mode=1777 shm /dev/shm 2>/dev/null
# The sid rootfs has no iproute2: use the host's ip, in its own root.
if [ -n "$host" ]; then chroot "$host" ip link set lo up; else ip link set lo up; fi

if [ -n "$host" ]; then
  # The sid rootfs has the UML modules in /lib/modules, where the kernel's own modprobe finds them.
  modprobe_args=
else
  # Let the kernel auto-load tcp-ulp-tls and the crypto modules from the UML module tree, as a normal
  # system would with its own /lib/modules.
  wrapper="$RPCTLS_UML_MODROOT/modprobe.sh"
  printf '#!/bin/sh\nexec /usr/sbin/modprobe -d %s "$@"\n' "$RPCTLS_UML_MODROOT" > "$wrapper"
  chmod +x "$wrapper"
  echo "$wrapper" > /proc/sys/kernel/modprobe
  modprobe_args="-d $RPCTLS_UML_MODROOT"
fi
# ghash-generic is a module in 6.1 and built in (or gone) in 7.2: a missing one is not an error.
for module in tls gcm ghash-generic ctr chacha20poly1305; do
  modprobe $modprobe_args "$module" 2>/dev/null
done

{
  echo "--- uname: $(uname -r)"
  echo "--- tls_stat before"
  cat /proc/net/tls_stat
} > "$out/tls_stat.log" 2>&1

if [ -n "$host" ]; then
  mount -t proc proc "$host/proc"
  mount -t sysfs sys "$host/sys"
  mount -t tmpfs -o mode=1777 shm "$host/dev/shm"
  RPCTLS_EXPECT_KTLS=1 chroot "$host" sh "$RPCTLS_UML_OUT/command.sh" > "$out/output.log" 2>&1
else
  RPCTLS_EXPECT_KTLS=1 sh "$out/command.sh" > "$out/output.log" 2>&1
fi
echo $? > "$out/exit-code.tmp"

{
  echo "--- tls_stat after"
  cat /proc/net/tls_stat
} >> "$out/tls_stat.log" 2>&1
mv "$out/exit-code.tmp" "$out/exit-code"
sync
# The sid rootfs is minimal (no poweroff of its own): use the host's.
if [ -n "$host" ]; then exec chroot "$host" poweroff -f; fi
poweroff -f
