#!/usr/bin/env bash
# The whole test suite: static checks, then every test under Deno, under Bun and under Node 26.
# Ends with one line "N passed, N failed" that sums the checks and the three runtimes.
set -u -o pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH" NO_COLOR=1
for tool in deno bun node; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run npm install first"; echo "0 passed, 1 failed"; exit 1; }
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Every temporary file of the run (the tests' and benchmarks' directories, files and sockets) goes under $out, so
# that what a test fails to remove is found below and nothing survives the run.
mkdir "$out/tmp"
export TMPDIR="$out/tmp"
# Node compiles every module of the library again in each process it starts (0.3 s a process here, 0.07 s with the
# cache), and the tests start hundreds: its compile cache lives as long as the run.
export NODE_COMPILE_CACHE="$out/node-compile-cache"
# Ctrl-C stops the run: the runner in progress ends on it (each test process's reaper, tests/reaper.sh, then ends its
# children and removes its segments and files), and the next runtime's does not start. A SIGTERM sent to this script
# alone stops it once the runner in progress has finished.
interrupted=""
trap 'interrupted=INT' INT
trap 'interrupted=TERM' TERM
stop_if_interrupted() {
  if [ -n "$interrupted" ]; then
    echo "interrupted by SIG$interrupted"
    echo "${passed} passed, $((failed + 1)) failed"
    exit 130
  fi
}
passed=0
failed=0
check() {
  local label=$1
  shift
  if "$@" >"$out/check.log" 2>&1; then
    echo "check ok: $label"
    passed=$((passed + 1))
  else
    echo "check FAILED: $label"
    cat "$out/check.log"
    failed=$((failed + 1))
  fi
}
check "deno fmt --check" deno fmt --check
check "deno lint" deno lint
check "deno check" deno check mod.ts ffi/ src/ tests/ bench/ cli.ts
check "deno doc --lint mod.ts" deno doc --lint mod.ts

stop_if_interrupted
echo "== deno test"
deno test -A tests/ 2>&1 | tee "$out/deno.log"
deno_line=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$out/deno.log" | tail -1)
if [ -z "$deno_line" ]; then
  echo "deno test did not finish"
  failed=$((failed + 1))
else
  passed=$((passed + $(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$deno_line")))
  failed=$((failed + $(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$deno_line")))
fi

stop_if_interrupted
echo "== bun test"
bun test --timeout 900000 tests/ 2>&1 | tee "$out/bun.log"
bun_pass=$(grep -E '^ *[0-9]+ pass$' "$out/bun.log" | tail -1 | tr -dc 0-9)
bun_fail=$(grep -E '^ *[0-9]+ fail$' "$out/bun.log" | tail -1 | tr -dc 0-9)
if [ -z "$bun_pass" ] || [ -z "$bun_fail" ]; then
  echo "bun test did not finish"
  failed=$((failed + 1))
else
  passed=$((passed + bun_pass))
  failed=$((failed + bun_fail))
fi

stop_if_interrupted
echo "== node --test"
node --no-warnings --test --test-reporter=spec --test-timeout=900000 tests/ 2>&1 | tee "$out/node.log"
node_pass=$(grep -E '^ℹ pass [0-9]+$' "$out/node.log" | tail -1 | tr -dc 0-9)
node_fail=$(grep -E '^ℹ fail [0-9]+$' "$out/node.log" | tail -1 | tr -dc 0-9)
if [ -z "$node_pass" ] || [ -z "$node_fail" ]; then
  echo "node --test did not finish"
  failed=$((failed + 1))
else
  passed=$((passed + node_pass))
  failed=$((failed + node_fail))
fi

stop_if_interrupted
# The last test processes' reapers finish as those processes end.
for _ in $(seq 50); do pgrep -f "$PWD/tests/reaper.sh" >/dev/null || break; sleep 0.1; done
files=$(find "$TMPDIR" -mindepth 1 -maxdepth 1 -name 'svm*' 2>/dev/null)
if [ -n "$files" ]; then
  echo "temporary files left (a failure; removed with the run's directory):" $files
  failed=$((failed + 1))
fi
left=$(find /dev/shm -maxdepth 1 \( -name 'svmtest-*' -o -name 'svmbench-*' -o -name 'svm-demo-*' \) 2>/dev/null)
if [ -n "$left" ]; then
  echo "segments left in /dev/shm (a failure; removed now):" $left
  rm -f $left
  failed=$((failed + 1))
fi
# What failed, again at the end, where a log cut to its last lines still shows it: each failing test's name, then
# the start of its error, at most 30 lines a runtime.
if [ "$failed" -ne 0 ]; then
  echo "== what failed"
  [ -f "$out/deno.log" ] && sed -n '/^ ERRORS *$/,/^ FAILURES *$/p' "$out/deno.log" | head -30 | sed 's/^/deno: /'
  [ -f "$out/bun.log" ] && { grep -E '^\(fail\) ' "$out/bun.log"; grep -B 20 -E '^\(fail\) ' "$out/bun.log"; } |
    head -30 | sed 's/^/bun: /'
  [ -f "$out/node.log" ] && sed -n '/^✖ failing tests:/,$p' "$out/node.log" | head -30 | sed 's/^/node: /'
fi
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
