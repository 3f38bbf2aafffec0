#!/bin/sh
# PID 1 inside the UML guest started by run.sh: mount, load kernel TLS, run the command, power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
out="$RPCTLS_UML_OUT"

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs -o mode=1777 shm /dev/shm 2>/dev/null
ip link set lo up

# Let the kernel auto-load tcp-ulp-tls and the crypto modules from the UML module tree, as a normal
# system would with its own /lib/modules.
wrapper="$RPCTLS_UML_MODROOT/modprobe.sh"
printf '#!/bin/sh\nexec /usr/sbin/modprobe -d %s "$@"\n' "$RPCTLS_UML_MODROOT" > "$wrapper"
chmod +x "$wrapper"
echo "$wrapper" > /proc/sys/kernel/modprobe
for module in tls gcm ghash-generic ctr chacha20poly1305; do
  modprobe -d "$RPCTLS_UML_MODROOT" "$module"
done

{
  echo "--- uname: $(uname -r)"
  echo "--- tls_stat before"
  cat /proc/net/tls_stat
} > "$out/tls_stat.log" 2>&1

RPCTLS_EXPECT_KTLS=1 sh "$out/command.sh" > "$out/output.log" 2>&1
echo $? > "$out/exit-code.tmp"

{
  echo "--- tls_stat after"
  cat /proc/net/tls_stat
} >> "$out/tls_stat.log" 2>&1
mv "$out/exit-code.tmp" "$out/exit-code"
sync
poweroff -f
