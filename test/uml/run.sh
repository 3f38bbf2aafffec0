#!/usr/bin/env bash
# Runs a command inside a user-mode-linux 6.1 kernel that has kernel TLS (tls.ko), with the host
# filesystem as root, and exits with the command's exit status.
#   test/uml/run.sh npx ava test/native/
# Env: UML_BIN (default /usr/bin/linux.uml), UML_TIMEOUT seconds (default 900), UML_MEM (default 1G).
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 64
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
uml_bin=${UML_BIN:-/usr/bin/linux.uml}

if [ ! -x "$uml_bin" ] || [ ! -x /usr/sbin/modprobe ] || ! command -v cc >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y user-mode-linux kmod gcc libc6-dev >&2
  else
    echo "user-mode-linux is missing: run 'sudo apt-get install -y user-mode-linux kmod gcc' (Debian/Ubuntu)" >&2
    exit 2
  fi
fi

case "$repo" in
  *[[:space:]]*) echo "$0: the repository path must not contain spaces (kernel command line)" >&2; exit 2 ;;
esac

release=$(ls /usr/lib/uml/modules | sort -V | tail -n 1)
work="$repo/.uml"
run_id="$$-$(date +%s)"
out="$work/runs/$run_id"
modroot="$work/modroot"
mkdir -p "$work/tmp" "$work/uml_dir" "$out" "$modroot/lib/modules"

# UML 6.1 cannot restore FP state on hosts with an XSAVE area over 832 bytes (AVX-512, AMX): its init
# dies with SIGSEGV at boot. The shim (see its header) fixes that from outside; it is a no-op elsewhere.
shim_src="$repo/test/uml/xstate-shim.c"
shim="$work/xstate-shim-$(cksum < "$shim_src" | cut -d' ' -f1).so"
if [ ! -f "$shim" ]; then
  cc -O2 -Wall -shared -fPIC -o "$shim.tmp" "$shim_src" -ldl && mv "$shim.tmp" "$shim"
fi
ln -sfn "/usr/lib/uml/modules/$release" "$modroot/lib/modules/$release"

# The guest runs the command with sh from this file: arguments survive the kernel command line.
{
  printf 'cd %q\n' "$repo"
  printf '%q ' "$@"
  printf '\n'
} > "$out/command.sh"

set +e
LD_PRELOAD="$shim" TMPDIR="$work/tmp" timeout --kill-after=10 "${UML_TIMEOUT:-900}" "$uml_bin" \
  mem="${UML_MEM:-1G}" rootfstype=hostfs rw \
  uml_dir="$work/uml_dir" umid="rpctls-$run_id" \
  init="$repo/test/uml/init.sh" con=null con0=null,fd:2 \
  RPCTLS_UML_OUT="$out" RPCTLS_UML_MODROOT="$modroot" RPCTLS_UML_RELEASE="$release" \
  HOME="${HOME:-/root}" </dev/null >"$out/console.log" 2>&1
uml_status=$?
set -e

if [ -f "$out/output.log" ]; then cat "$out/output.log"; fi
if [ ! -f "$out/exit-code" ]; then
  echo "UML run produced no exit code (linux.uml status $uml_status); console log:" >&2
  tail -n 40 "$out/console.log" >&2
  exit 70
fi
echo "UML run: $out (kernel $release, guest exit $(cat "$out/exit-code"))" >&2
exit "$(cat "$out/exit-code")"
