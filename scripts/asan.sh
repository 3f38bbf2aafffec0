#!/usr/bin/env bash
# Builds the native addon with AddressSanitizer + LeakSanitizer (clang) into a separate build dir and
# runs the addon's tests (test/native/) against it. Exit 0 only if no ASan error and no leak whose
# stack goes through the addon was reported.
#
#   scripts/asan.sh                 # build + run test/native/
#   scripts/asan.sh test/tls/       # other ava files/dirs instead
# Env: ASAN_BUILD_DIR (default /tmp/rpctls-asan), ASAN_KEEP_LOGS=1 keeps the per-process logs.
#
# Why a filter instead of a plain LSan verdict: node itself is not built with ASan and, like most
# programs, does not free everything at exit (V8 isolates, OpenSSL's static tables, libuv loops), so a
# bare detect_leaks=1 run reports hundreds of node-internal "leaks" in every process. LSan suppressions
# cannot help: a leak allocated by the addon also has node frames on its stack, so suppressing node
# would suppress the addon too. Instead every report is kept (log_path, one file per process) and a
# leak counts only when its allocation stack has a frame in rpctls_native.node or native/src; the
# node-only ones are counted and listed as "ignored". scripts/asan.supp suppresses the few node/libc
# patterns that would otherwise flood the logs.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${ASAN_BUILD_DIR:-/tmp/rpctls-asan}
logs="$build/logs"
tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(test/native/)

if ! command -v clang++ >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "asan: installing clang (Debian)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >&2
  else
    echo "asan: clang is missing: sudo apt-get install -y clang" >&2
    exit 2
  fi
fi

runtime=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
if [ ! -f "$runtime" ]; then
  echo "asan: ASan runtime not found ($runtime)" >&2
  exit 2
fi

# node-gyp: the project's own if installed, else the one npm ships (what `npm install` uses).
gyp="$repo/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || gyp="$(dirname "$(readlink -f "$(command -v node)")")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
# Node's own headers (include/node), as the regular build uses them: no download.
nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
[ -f "$nodedir/include/node/common.gypi" ] || { echo "asan: node headers not found under $nodedir/include/node" >&2; exit 2; }
echo "asan: building native/ with clang -fsanitize=address into $build/native" >&2
rm -rf "$build/native" "$logs"
mkdir -p "$build" "$logs"
cp -r "$repo/native" "$build/native"
rm -rf "$build/native/build"
san="-fsanitize=address -fno-omit-frame-pointer -g -O1"
(
  cd "$build/native"
  # binding.gyp asks node for node-addon-api's include dir: resolve it from the repo.
  NODE_PATH="$repo/node_modules" CC=clang CXX=clang++ CFLAGS="$san" CXXFLAGS="$san" LDFLAGS="-fsanitize=address" \
    node "$gyp" rebuild --nodedir="$nodedir" >"$build/build.log" 2>&1 || { tail -n 40 "$build/build.log" >&2; exit 1; }
)
addon="$build/native/build/Release/rpctls_native.node"
[[ "$(nm -u "$addon")" == *__asan_init* ]] || { echo "asan: $addon is not instrumented" >&2; exit 1; }
echo "asan: built $addon (instrumented)" >&2

# Positive control: a preloaded library that leaks 1234 bytes from a constructor. Every process that
# LSan checked at exit reports it, so the count of such reports proves leak checking really ran in the
# test processes (a process killed before exit, or LSan inactive under node, would report nothing).
cat >"$build/control.c" <<'C'
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
void *volatile rpctls_asan_control_sink;
/* 4321 bytes in node processes, 1234 in any other (openssl, sh): node ones are what must be checked. */
__attribute__((noinline)) static void rpctls_asan_control_leak(void) {
  char exe[4096] = {0};
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  int node = n >= 5 && strcmp(exe + n - 5, "/node") == 0;
  rpctls_asan_control_sink = malloc(node ? 4321 : 1234);
  rpctls_asan_control_sink = 0;
}
__attribute__((constructor)) static void init(void) { rpctls_asan_control_leak(); }
C
clang -shared -fPIC -g -O0 -fsanitize=address -o "$build/control.so" "$build/control.c"

# At least one leak-checked node process per test file (ava runs each file in its own worker process).
files=$(cd "$repo" && find "${tests[@]}" -name '*.test.ts' 2>/dev/null | wc -l)
export ASAN_MIN_CHECKED=$(( files > 0 ? files : 1 ))

export RPCTLS_NATIVE_PATH="$addon"
export LD_PRELOAD="$runtime $build/control.so"
# exitcode=0: a report must not change exit statuses (helpers such as openssl and every worker would
# exit 23 because of the control leak); the verdict below is taken from the logs. handle_segv=0: V8 uses SIGSEGV itself (wasm trap handler). alloc_dealloc_mismatch=0: node (not
# instrumented) mixes allocators in ways ASan cannot see consistently.
export ASAN_OPTIONS="exitcode=0:detect_leaks=1:handle_segv=0:allow_user_segv_handler=1:alloc_dealloc_mismatch=0:detect_odr_violation=0:log_path=$logs/asan"
export LSAN_OPTIONS="suppressions=$repo/scripts/asan.supp:print_suppressions=0"

set +e
(cd "$repo" && node "$repo/node_modules/ava/entrypoints/cli.mjs" --concurrency=1 "${tests[@]}")
status=$?
set -e
unset LD_PRELOAD

set +e
node - "$logs" <<'JS'
const fs = require('node:fs');
const path = require('node:path');
const dir = process.argv[2];
let errors = 0, ours = 0, ignored = 0, ignoredBytes = 0, control = 0, nodeChecked = 0;
const report = [];
for (const file of fs.readdirSync(dir)) {
  const text = fs.readFileSync(path.join(dir, file), 'utf8');
  if (/ERROR: AddressSanitizer/.test(text)) {
    errors++;
    report.push(`${file}: ${text.split('\n').slice(0, 40).join('\n')}`);
  }
  // LSan blocks: "Direct leak of N byte(s) in M object(s) allocated from:" followed by frames.
  for (const block of text.split(/\n(?=(?:Direct|Indirect) leak of )/)) {
    const m = /^(Direct|Indirect) leak of (\d+) byte/.exec(block);
    if (!m) continue;
    if (/rpctls_asan_control_leak/.test(block)) {
      control++;
      if (m[2] === '4321') nodeChecked++;
    } else if (/rpctls_native\.node|native\/src\//.test(block)) {
      ours++;
      report.push(`${file}: ${block.split('\n').slice(0, 25).join('\n')}`);
    } else {
      ignored++;
      ignoredBytes += Number(m[2]);
    }
  }
}
console.log(`asan: ${control} process(es) checked by LSan at exit (control leak seen), ${nodeChecked} of them node; ${errors} ASan error report(s); ` +
  `${ours} leak(s) through the addon; ${ignored} other leak record(s) ignored (${ignoredBytes} bytes, node/openssl-cli internals)`);
if (report.length) console.log(report.join('\n\n'));
const minimum = Number(process.env.ASAN_MIN_CHECKED ?? 1);
if (nodeChecked < minimum) console.log(`asan: only ${nodeChecked} node process(es) were leak-checked (need ${minimum}): the run proves nothing`);
process.exitCode = errors + ours > 0 || nodeChecked < minimum ? 1 : 0;
JS
verdict=$?
set -e
[ "${ASAN_KEEP_LOGS:-0}" = 1 ] || rm -rf "$logs"
echo "asan: ava exit $status, sanitizer verdict $([ $verdict = 0 ] && echo clean || echo FAILED)" >&2
[ $status = 0 ] && [ $verdict = 0 ]
