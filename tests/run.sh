#!/usr/bin/env bash
# tests/run.sh GILUA: runs every Lua test (tests/test-*.lua) and every C
# test (build/tests/*, or $CTESTS) in a process of its own under a
# timeout, and ends with one line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
GILUA=${1:-build/gilua}
CTESTS=${CTESTS:-$(dirname "$GILUA")/tests}
TIMEOUT=${TEST_TIMEOUT:-180}
export GILUA LUA_PATH="tests/?.lua;scripts/lib/?.lua;;"
passed=0
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

for t in tests/test-*.lua; do
  start=$(date +%s%N)
  timeout -k 5 "$TIMEOUT" "$GILUA" "$t" >"$out" 2>&1
  rc=$?
  p=$(grep -c '^ok ' "$out")
  f=$(grep -c '^not ok ' "$out")
  plan=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$out" | tail -1)
  extra=0
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then extra=1; fi
  if [ -z "$plan" ] || [ "$((p + f))" -lt "${plan:-0}" ]; then extra=1; fi
  ms=$((($(date +%s%N) - start) / 1000000))
  printf '%-34s %4d passed %3d failed  %4d.%01ds%s\n' "$t" "$p" "$((f + extra))" \
    "$((ms / 1000))" "$((ms % 1000 / 100))" "$([ "$rc" -eq 124 ] && echo '  TIMEOUT')"
  if [ "$f" -gt 0 ] || [ "$extra" -gt 0 ]; then
    grep -A6 '^not ok ' "$out" | head -60
    [ "$extra" -gt 0 ] && { echo "--- exit status $rc; last output:"; tail -25 "$out"; }
  fi
  passed=$((passed + p))
  failed=$((failed + f + extra))
done

if [ -d "$CTESTS" ]; then
  for t in "$CTESTS"/*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    timeout -k 5 "$TIMEOUT" "$t" >"$out" 2>&1
    rc=$?
    p=$(grep -c '^ok ' "$out")
    f=$(grep -c '^not ok ' "$out")
    extra=0
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then extra=1; fi
    printf '%-34s %4d passed %3d failed\n' "$t" "$p" "$((f + extra))"
    if [ "$rc" -ne 0 ]; then cat "$out" | tail -40; fi
    passed=$((passed + p))
    failed=$((failed + f + extra))
  done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
