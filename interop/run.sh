#!/usr/bin/env bash
# npm run interop: rpctls against the Linux kernel's own RPC-with-TLS (nfsd + tlshd, and the kernel NFS
# client) and, on sid, NFS-Ganesha's userspace RPC-with-TLS, inside a user-mode-linux kernel booted in a
# cached Debian rootfs; our programs run there on the rootfs's Debian nodejs. Two targets:
#   trixie: Linux 6.12, tlshd 1.0, nfs-utils 2.8, nodejs 20      sid: Linux 7.2, tlshd 1.4, nfs-utils 3.1,
#   NFS-Ganesha 15, nodejs 24 (OpenSSL 3.6)
#   interop/run.sh [--target trixie|sid|both]   (default both)
# Prints a table per target (scenario, result, cipher, offload) and "interop totals: N passed, N failed"
# over both; exits non-zero on any failure. Needs root (debootstrap, chroot, mount namespaces).
# README.md, "Interop with the Linux kernel", says what each row proves.
# Env: RPCTLS_INTEROP_CACHE (default /var/cache/rpctls-interop), RPCTLS_INTEROP_TIMEOUT (guest, s; 600),
#      RPCTLS_INTEROP_SCENARIOS (comma list, default all of the target's), RPCTLS_INTEROP_MEM (guest RAM,
#      default 1G).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cache=${RPCTLS_INTEROP_CACHE:-/var/cache/rpctls-interop}
name=nfs.test
kernel_scenarios=null-v4,null-v3,read-v4,read-v3,cli-probe-tls,plain-v4,plain-v3,cli-probe-plain,prebuilt-addon,psk-openssl,kclient-lib,kclient-cli
# The agent scenarios stop tlshd for good: they come after every scenario that needs it.
agent_scenarios=agent-none,agent-mount,agent-untrusted,agent-restart,agent-mtls,agent-capabilities,agent-crl-client,agent-crl-server
common_scenarios=$kernel_scenarios,$agent_scenarios
# sid only: mtls both ways with tlshd 1.4 (which needs no keyring support in the kernel), then NFS-Ganesha.
# agent-keyring: mount -o cert_serial=,privkey_serial= (not in trixie's 6.12 NFS client).
sid_scenarios=$kernel_scenarios,mtls-ours-nfsd,mtls-kclient-ours,$agent_scenarios,agent-keyring,ganesha
targets="trixie sid"
while [ $# -gt 0 ]; do
  case "$1" in
    --target) targets=${2:-}; shift 2 || true ;;
    --target=*) targets=${1#--target=}; shift ;;
    *) echo "usage: interop/run.sh [--target trixie|sid|both]" >&2; exit 64 ;;
  esac
done
case "$targets" in trixie | sid) ;; both | "trixie sid") targets="trixie sid" ;; *) echo "interop: --target must be trixie, sid or both" >&2; exit 64 ;; esac
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
# Our programs run from dist/ (bin/rpctls.js does too): rebuild it when a source is newer.
t=$(now)
if [ ! -f dist/index.js ] || [ ! -f dist/cli/index.js ] || [ -n "$(find src -newer dist/index.js -name '*.ts' -print -quit)" ]; then
  echo "interop: building dist/ (tsc)" >&2
  npx tsc -p tsconfig.build.json >&2 || echo "interop: tsc reported errors; running with what it emitted" >&2
fi
ms_build=$(elapsed "$t")

# The linux-x64 addon the npm package ships (scripts/prebuild.mjs, against the system Node's OpenSSL 3.0
# headers), cached by source hash: the prebuilt-addon row runs it on each rootfs's nodejs and system OpenSSL.
prebuilt_dir=$cache/prebuilt-$( (cat native/binding.gyp native/src/* scripts/prebuild.mjs) | sha256sum | cut -c1-12)
if [ ! -f "$prebuilt_dir/linux-x64/rpctls_native.node" ]; then
  rm -rf "$cache"/prebuilt-*
  node scripts/prebuild.mjs --arch x64 --out "$prebuilt_dir" --nodedir "${npm_config_nodedir:-/usr}" >&2 ||
    echo "interop: the prebuilt addon could not be built; its row fails" >&2
fi

# One target: rootfs (cached), addon for its node (cached), one UML boot running its scenarios, its table.
# Prints the table; the last line is "interop TARGET: N passed, N failed".
run_target() {
  local target=$1 scenarios rootfs addon shim="" run uml_status guest_exit t ms_rootfs ms_addon ms_guest proc_in_chroot=0
  if [ "$target" = sid ]; then scenarios=${RPCTLS_INTEROP_SCENARIOS:-$sid_scenarios}; else scenarios=${RPCTLS_INTEROP_SCENARIOS:-$common_scenarios}; fi
  t=$(now)
  if ! rootfs=$(interop/rootfs.sh "$target"); then
    echo "interop $target: 0 passed, 1 failed (rootfs build)"
    return
  fi
  ms_rootfs=$(elapsed "$t")
  t=$(now)
  if ! addon=$(interop/build-addon.sh "$rootfs"); then
    echo "interop $target: 0 passed, 1 failed (addon build)"
    return
  fi
  ms_addon=$(elapsed "$t")

  if [ "$target" = trixie ]; then
    # The ptrace shim trixie's linux.uml wants on AVX-512/AMX hosts (see test/uml/xstate-shim.c), built
    # with the rootfs's gcc. Linux 7.2 needs none.
    local shim_hash
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
  else
    # linux.uml 7.2 reads /proc/self/exe at start ("readlink failure" without /proc in the chroot).
    proc_in_chroot=1
  fi

  run="$cache/runs/$(date +%Y%m%d-%H%M%S)-$target-$$"
  mkdir -p "$run"
  ls -1d "$cache"/runs/*/ 2>/dev/null | head -n -6 | xargs -r rm -rf   # keep the last 6 runs
  interop/pki.sh "$run/pki" "$name"
  if [ -f "$prebuilt_dir/linux-x64/rpctls_native.node" ]; then mkdir -p "$run/prebuilt" && cp "$prebuilt_dir/linux-x64/rpctls_native.node" "$run/prebuilt/"; fi
  mkdir -p "$rootfs/rpctls" "$rootfs/interop-run"

  # The UML kernel needs its rootfs's glibc: run it chrooted into the rootfs, in a private mount namespace
  # (nothing stays mounted on the host) where the checkout (read-only), the run directory and a tmpfs for
  # the guest's RAM are mounted. The guest's root is that chroot, through hostfs.
  echo "interop $target: booting UML $(cat "$rootfs/.uml-release") (run directory $run)" >&2
  t=$(now)
  set +e
  SHIM=$shim PROC_IN_CHROOT=$proc_in_chroot timeout --kill-after=15 "${RPCTLS_INTEROP_TIMEOUT:-600}" unshare --mount --propagation private -- sh -c '
    set -e
    root=$1 repo=$2 run=$3
    shift 3
    mount --bind "$repo" "$root/rpctls"
    mount -o remount,bind,ro "$root/rpctls"
    mount --bind "$run" "$root/interop-run"
    mount -t tmpfs -o mode=1777 umlshm "$root/dev/shm"
    if [ "$PROC_IN_CHROOT" = 1 ]; then mount -t proc proc "$root/proc"; fi
    exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TMPDIR=/dev/shm ${SHIM:+LD_PRELOAD="$SHIM"} "$@"
  ' sh "$rootfs" "$repo" "$run" \
    /usr/bin/linux.uml mem="${RPCTLS_INTEROP_MEM:-1G}" rootfstype=hostfs rw init=/rpctls/interop/guest/init.sh \
    umid="rpctls-interop-$target-$$" uml_dir=/dev/shm/uml con=null con0=null,fd:2 \
    INTEROP_TARGET="$target" INTEROP_NAME="$name" INTEROP_PKI=/interop-run/pki RPCTLS_NATIVE_PATH="$addon" INTEROP_SCENARIOS="$scenarios" \
    </dev/null >"$run/console.log" 2>&1
  uml_status=$?
  ms_guest=$(elapsed "$t")
  guest_exit=$(cat "$run/exit-code" 2>/dev/null || echo none)
  node interop/report.mjs "$target" "$run/results.jsonl" "$scenarios" \
    "rootfs ${ms_rootfs} ms, addon ${ms_addon} ms, boot+guest ${ms_guest} ms" \
    "$guest_exit" "$uml_status" "$run"
  set -e
}

passed=0 failed=0 status=0
for target in $targets; do
  out=$(run_target "$target") || status=1
  printf '%s\n\n' "$out"
  if [[ $(tail -n 1 <<<"$out") =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    passed=$((passed + BASH_REMATCH[1])) failed=$((failed + BASH_REMATCH[2]))
  else
    failed=$((failed + 1))
  fi
done
echo "timings: dist ${ms_build} ms, total $(elapsed "$t_all") ms"
totals "$passed" "$failed"
[ "$status" = 0 ] && [ "$failed" = 0 ]
