#!/usr/bin/env bash
# Runs a command inside a user-mode-linux kernel that has kernel TLS (tls.ko), on the host's userland,
# and exits with the command's exit status.
#   test/uml/run.sh npx ava test/native/                 # bookworm's Linux 6.1 (no TLS rekey)
#   UML_KERNEL=7.2 test/uml/run.sh npx ava test/native/  # sid's Linux 7.2 (TLS rekey, >= 6.14)
# 6.1 boots with the host filesystem as root. 7.2's linux.uml needs a newer glibc than the host's: it
# runs chrooted in a small cached sid rootfs (sid-rootfs.sh) with the host's root bind-mounted at /host,
# and the guest's init chroots back into /host, so the command sees the same files and programs as 6.1.
# Env: UML_KERNEL (6.1 | 7.2, default 6.1), UML_BIN (6.1 only, default /usr/bin/linux.uml),
#      UML_TIMEOUT seconds (default 900), UML_MEM (default 1G).
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 64
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kernel=${UML_KERNEL:-6.1}
case "$kernel" in
  6.1 | 7.2) ;;
  *) echo "$0: UML_KERNEL must be 6.1 or 7.2 (got '$kernel')" >&2; exit 64 ;;
esac
uml_bin=${UML_BIN:-/usr/bin/linux.uml}

if [ ! -x /usr/bin/linux.uml ] || [ ! -x /usr/sbin/modprobe ] || ! command -v cc >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y user-mode-linux kmod gcc libc6-dev >&2
  else
    echo "user-mode-linux is missing: run 'sudo apt-get install -y user-mode-linux kmod gcc' (Debian/Ubuntu)" >&2
    exit 2
  fi
fi
if [ "$kernel" = 7.2 ] && [ "$(id -u)" != 0 ]; then
  echo "$0: UML_KERNEL=7.2 needs root (debootstrap, chroot, a private mount namespace)" >&2
  exit 2
fi

case "$repo" in
  *[[:space:]]*) echo "$0: the repository path must not contain spaces (kernel command line)" >&2; exit 2 ;;
esac

work="$repo/.uml"
run_id="$$-$(date +%s)"
out="$work/runs/$run_id"
mkdir -p "$work/tmp" "$work/uml_dir" "$out"

# The guest runs the command with sh from this file: arguments survive the kernel command line.
{
  printf 'cd %q\n' "$repo"
  printf '%q ' "$@"
  printf '\n'
} > "$out/command.sh"

set +e
if [ "$kernel" = 7.2 ]; then
  rootfs=$("$repo/test/uml/sid-rootfs.sh")
  release=$(cat "$rootfs/.uml-release")
  # A private mount namespace: nothing stays mounted on the host. The guest's RAM file lives on a tmpfs.
  timeout --kill-after=10 "${UML_TIMEOUT:-900}" unshare --mount --propagation private -- sh -c '
    set -e
    root=$1
    shift
    mount --rbind / "$root/host"
    mount -t tmpfs -o mode=1777 umlshm "$root/dev/shm"
    mount -t proc proc "$root/proc"   # linux.uml 7.2 reads /proc/self/exe at start
    exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TMPDIR=/dev/shm "$@"
  ' sh "$rootfs" /usr/bin/linux.uml \
    mem="${UML_MEM:-1G}" rootfstype=hostfs rw \
    uml_dir=/dev/shm/uml umid="rpctls-$run_id" \
    init="/host$repo/test/uml/init.sh" con=null con0=null,fd:2 \
    RPCTLS_UML_OUT="$out" RPCTLS_UML_HOSTROOT=/host RPCTLS_UML_RELEASE="$release" \
    HOME="${HOME:-/root}" </dev/null >"$out/console.log" 2>&1
  uml_status=$?
else
  release=$(ls /usr/lib/uml/modules | sort -V | tail -n 1)
  modroot="$work/modroot"
  mkdir -p "$modroot/lib/modules"

  # UML 6.1 cannot restore FP state on hosts with an XSAVE area over 832 bytes (AVX-512, AMX): its init
  # dies with SIGSEGV at boot. The shim (see its header) fixes that from outside; it is a no-op elsewhere.
  shim_src="$repo/test/uml/xstate-shim.c"
  shim="$work/xstate-shim-$(cksum < "$shim_src" | cut -d' ' -f1).so"
  if [ ! -f "$shim" ]; then
    cc -O2 -Wall -shared -fPIC -o "$shim.tmp" "$shim_src" -ldl && mv "$shim.tmp" "$shim"
  fi
  ln -sfn "/usr/lib/uml/modules/$release" "$modroot/lib/modules/$release"

  LD_PRELOAD="$shim" TMPDIR="$work/tmp" timeout --kill-after=10 "${UML_TIMEOUT:-900}" "$uml_bin" \
    mem="${UML_MEM:-1G}" rootfstype=hostfs rw \
    uml_dir="$work/uml_dir" umid="rpctls-$run_id" \
    init="$repo/test/uml/init.sh" con=null con0=null,fd:2 \
    RPCTLS_UML_OUT="$out" RPCTLS_UML_MODROOT="$modroot" RPCTLS_UML_RELEASE="$release" \
    HOME="${HOME:-/root}" </dev/null >"$out/console.log" 2>&1
  uml_status=$?

fi
set -e

if [ -f "$out/output.log" ]; then cat "$out/output.log"; fi
if [ ! -f "$out/exit-code" ]; then
  echo "UML run produced no exit code (linux.uml status $uml_status); console log:" >&2
  tail -n 40 "$out/console.log" >&2
  exit 70
fi
echo "UML run: $out (Linux $kernel, kernel $release, guest exit $(cat "$out/exit-code"))" >&2
exit "$(cat "$out/exit-code")"
