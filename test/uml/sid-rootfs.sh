#!/usr/bin/env bash
# Builds (once) the small Debian sid rootfs that Linux 7.2's user-mode-linux runs chrooted in (its
# linux.uml needs glibc >= 2.38; this host's is older), and prints its path. Only the kernel, its
# modules and modprobe live there: the tests themselves run on the host's userland (see run.sh).
# Cached outside the checkout in $RPCTLS_UML_CACHE (default /var/cache/rpctls-uml), named by a hash
# of this script, so a fresh clone reuses it. Everything comes from deb.debian.org via debootstrap.
set -euo pipefail
cache=${RPCTLS_UML_CACHE:-/var/cache/rpctls-uml}
mirror=${RPCTLS_UML_MIRROR:-http://deb.debian.org/debian}
packages="user-mode-linux kmod"

hash=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)
rootfs="$cache/sid-$hash"
if [ -f "$rootfs/.rpctls-uml-ready" ]; then echo "$rootfs"; exit 0; fi

if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
fi
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -w 1200 9
if [ -f "$rootfs/.rpctls-uml-ready" ]; then echo "$rootfs"; exit 0; fi

building="$cache/building-$hash"
log="$cache/debootstrap-$hash.log"
rm -rf "$building"
echo "uml: building the sid rootfs for Linux 7.2 in $rootfs (debootstrap; about a minute)" >&2
start=$(date +%s)
# sid's Release file may be past its Valid-Until in a snapshot mirror: do not let that stop the build.
timeout 1200 debootstrap --variant=minbase --include="${packages// /,}" sid "$building" "$mirror" >"$log" 2>&1 || {
  echo "uml: debootstrap failed; last lines of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
}
release=$(ls "$building/usr/lib/uml/modules" | sort -V | tail -n 1)
# modprobe looks in /lib/modules/<release>: give it the UML tree there, indexed.
mkdir -p "$building/lib/modules"
rm -rf "$building/lib/modules/$release"
cp -a "$building/usr/lib/uml/modules/$release" "$building/lib/modules/$release"
chroot "$building" depmod "$release"
echo "$release" > "$building/.uml-release"
mkdir -p "$building/host"
rm -rf "$building/var/cache/apt/archives/"*.deb "$building/var/lib/apt/lists/"*

for old in "$cache"/sid-* "$cache"/building-* "$cache"/debootstrap-*.log; do
  case "$old" in "$rootfs" | "$building" | "$log") continue ;; esac
  [ -e "$old" ] && rm -rf "$old"
done
touch "$building/.rpctls-uml-ready"
mv "$building" "$rootfs"
echo "uml: sid rootfs (kernel $release) built in $(( $(date +%s) - start )) s" >&2
echo "$rootfs"
