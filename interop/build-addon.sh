#!/usr/bin/env bash
# Builds the native addon for the rootfs's own Debian nodejs (which links the system OpenSSL), with
# trixie's node-gyp, g++ and headers, chrooted into the rootfs on this host (fast: no UML). The build
# happens in a copy of native/ inside the rootfs (never in native/build, which the host's node uses),
# and is cached by a hash of the addon's sources. Prints the addon's path as the guest sees it.
#   interop/build-addon.sh ROOTFS
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rootfs=$1
hash=$( (cd "$repo" && cat native/binding.gyp native/src/* node_modules/node-addon-api/package.json) | sha256sum | cut -c1-12)
guest_dir=/opt/rpctls-addon/$hash
if [ -f "$rootfs$guest_dir/rpctls_native.node" ]; then
  echo "$guest_dir/rpctls_native.node"
  exit 0
fi
mkdir -p "$rootfs/opt/rpctls-addon"
exec 9>"$rootfs/opt/rpctls-addon/.lock"
flock -w 600 9
if [ -f "$rootfs$guest_dir/rpctls_native.node" ]; then echo "$guest_dir/rpctls_native.node"; exit 0; fi
build="$rootfs/opt/rpctls-addon/build"
rm -rf "$build" && mkdir -p "$build/node_modules"
cp -a "$repo/native/binding.gyp" "$repo/native/src" "$build/"
cp -a "$repo/node_modules/node-addon-api" "$build/node_modules/"
echo "interop: building the addon for the rootfs's node (node-gyp in a chroot)" >&2
in_root() {
  timeout 600 unshare --mount --propagation private -- sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$rootfs" \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"
}
if ! in_root sh -c 'cd /opt/rpctls-addon/build && node-gyp rebuild -j 2' >"$rootfs/opt/rpctls-addon/build.log" 2>&1; then
  echo "interop: addon build failed:" >&2
  tail -n 40 "$rootfs/opt/rpctls-addon/build.log" >&2
  exit 1
fi
# It must load in that node (OpenSSL version check included), on this host's kernel already.
in_root node -e 'const a = require(process.argv[1]); console.error(`interop: addon for node ${process.version}, OpenSSL ${a.opensslVersion} (headers ${a.opensslHeaderVersion})`)' \
  /opt/rpctls-addon/build/build/Release/rpctls_native.node >&2
for old in "$rootfs/opt/rpctls-addon/"*; do
  case "${old##*/}" in build | build.log | .lock) ;; *) rm -rf "$old" ;; esac
done
mkdir -p "$rootfs$guest_dir"
cp "$build/build/Release/rpctls_native.node" "$rootfs$guest_dir/"
echo "$guest_dir/rpctls_native.node"
