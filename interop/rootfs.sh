#!/usr/bin/env bash
# Builds (once) the Debian rootfs an interop target's guest boots in, and prints its path.
#   interop/rootfs.sh trixie|sid
# The rootfs lives outside the checkout, in $RPCTLS_INTEROP_CACHE (default /var/cache/rpctls-interop),
# named by the suite and a hash of packages-SUITE.txt and this script, so a fresh clone reuses it and an
# edited package list builds a new one. Everything comes from deb.debian.org via debootstrap.
# test/uml/sid-rootfs.sh builds a separate, kernel-only sid rootfs on purpose: npm test should not wait
# for (or be invalidated by) the 1 GB userland this one carries.
set -euo pipefail
suite=${1:?usage: rootfs.sh trixie|sid}
case "$suite" in trixie | sid) ;; *) echo "rootfs.sh: unknown suite '$suite'" >&2; exit 64 ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${RPCTLS_INTEROP_CACHE:-/var/cache/rpctls-interop}
mirror=${RPCTLS_INTEROP_MIRROR:-http://deb.debian.org/debian}

list="$here/packages-$suite.txt"
packages=$(grep -v '^\s*#' "$list" | tr -s ' \n' '\n' | grep -v '^$' | sort -u | paste -sd, -)
hash=$(cat "$list" "$here/rootfs.sh" | sha256sum | cut -c1-12)
rootfs="$cache/rootfs-$suite-$hash"

if [ -f "$rootfs/.rpctls-interop-ready" ]; then
  echo "$rootfs"
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
fi

mkdir -p "$cache"
exec 9>"$cache/.lock-$suite"
flock -w 1200 9
if [ -f "$rootfs/.rpctls-interop-ready" ]; then echo "$rootfs"; exit 0; fi

building="$cache/building-$suite-$hash"
log="$cache/debootstrap-$suite-$hash.log"
rm -rf "$building"
echo "interop: building $suite rootfs $rootfs (debootstrap; about 2 minutes)" >&2
start=$(date +%s)
# debootstrap lays a bare minbase; apt inside it then installs the list (apt resolves dependencies that
# debootstrap's own resolver misses, e.g. node-gyp's).
timeout 1500 debootstrap --variant=minbase "$suite" "$building" "$mirror" >"$log" 2>&1 || {
  echo "interop: debootstrap failed; last lines of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
}
printf '#!/bin/sh\nexit 101\n' > "$building/usr/sbin/policy-rc.d"
chmod +x "$building/usr/sbin/policy-rc.d"
in_root() {
  timeout 1500 unshare --mount --propagation private -- sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$building" "$@"
}
# A sid snapshot's Release file may be past its Valid-Until: that must not stop the build.
apt_options='-o Acquire::Check-Valid-Until=false'
in_root sh -c "apt-get $apt_options update -q && DEBIAN_FRONTEND=noninteractive apt-get $apt_options install -y -q --no-install-recommends $(echo "$packages" | tr , ' ')" \
  >>"$log" 2>&1 || {
  echo "interop: apt-get install in the rootfs failed; last lines of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
}

# The UML kernel's modules where modprobe looks for them, indexed.
release=$(ls "$building/usr/lib/uml/modules" | sort -V | tail -n 1)
mkdir -p "$building/lib/modules"
rm -rf "$building/lib/modules/$release"
cp -a "$building/usr/lib/uml/modules/$release" "$building/lib/modules/$release"
in_root depmod "$release"
echo "$release" > "$building/.uml-release"
in_root apt-get clean
rm -rf "$building/var/lib/apt/lists/"*

# Older rootfs builds of this suite (and those of before suites were named) are replaced, not accumulated.
for old in "$cache"/rootfs-"$suite"-* "$cache"/building-"$suite"-* "$cache"/debootstrap-"$suite"-*.log \
  "$cache"/rootfs-[0-9a-f]*[0-9a-f] "$cache"/debootstrap-[0-9a-f]*[0-9a-f].log; do
  case "$old" in "$rootfs" | "$building" | "$log") continue ;; esac
  [ -e "$old" ] && rm -rf "$old"
done
touch "$building/.rpctls-interop-ready"
mv "$building" "$rootfs"
echo "interop: rootfs built in $(( $(date +%s) - start )) s" >&2
echo "$rootfs"
