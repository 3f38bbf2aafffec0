#!/usr/bin/env bash
# Builds (once) the Debian trixie rootfs the interop guest boots in, and prints its path.
# The rootfs lives outside the checkout, in $RPCTLS_INTEROP_CACHE (default /var/cache/rpctls-interop),
# named by a hash of packages.txt and this script, so a fresh clone reuses it and an edited package
# list builds a new one. Everything comes from deb.debian.org via debootstrap.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${RPCTLS_INTEROP_CACHE:-/var/cache/rpctls-interop}
mirror=${RPCTLS_INTEROP_MIRROR:-http://deb.debian.org/debian}

packages=$(grep -v '^\s*#' "$here/packages.txt" | tr -s ' \n' '\n' | grep -v '^$' | sort -u | paste -sd, -)
hash=$(cat "$here/packages.txt" "$here/rootfs.sh" | sha256sum | cut -c1-12)
rootfs="$cache/rootfs-$hash"

if [ -f "$rootfs/.rpctls-interop-ready" ]; then
  echo "$rootfs"
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -w 1200 9
if [ -f "$rootfs/.rpctls-interop-ready" ]; then echo "$rootfs"; exit 0; fi

building="$cache/building-$hash"
rm -rf "$building"
echo "interop: building trixie rootfs $rootfs (debootstrap; about 2 minutes)" >&2
start=$(date +%s)
# debootstrap lays a bare minbase; apt inside it then installs the list (apt resolves dependencies that
# debootstrap's own resolver misses, e.g. node-gyp's).
timeout 1500 debootstrap --variant=minbase trixie "$building" "$mirror" >"$cache/debootstrap-$hash.log" 2>&1 || {
  echo "interop: debootstrap failed; last lines of $cache/debootstrap-$hash.log:" >&2
  tail -n 30 "$cache/debootstrap-$hash.log" >&2
  exit 1
}
printf '#!/bin/sh\nexit 101\n' > "$building/usr/sbin/policy-rc.d"
chmod +x "$building/usr/sbin/policy-rc.d"
in_root() {
  timeout 1500 unshare --mount --propagation private -- sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$building" "$@"
}
in_root sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(echo "$packages" | tr , ' ')" \
  >>"$cache/debootstrap-$hash.log" 2>&1 || {
  echo "interop: apt-get install in the rootfs failed; last lines of $cache/debootstrap-$hash.log:" >&2
  tail -n 30 "$cache/debootstrap-$hash.log" >&2
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

# Older rootfs builds are replaced, not accumulated.
for old in "$cache"/rootfs-* "$cache"/building-* "$cache"/debootstrap-*.log; do
  case "$old" in "$rootfs" | "$building" | "$cache/debootstrap-$hash.log") continue ;; esac
  [ -e "$old" ] && rm -rf "$old"
done
touch "$building/.rpctls-interop-ready"
mv "$building" "$rootfs"
echo "interop: rootfs built in $(( $(date +%s) - start )) s" >&2
echo "$rootfs"
