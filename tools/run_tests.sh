#!/usr/bin/env bash
# Runs the doctest binary and ends with one plain summary line ("N passed, N failed") that CI reads.
set -uo pipefail
bin=$1; shift
out=$(mktemp)
"$bin" "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
line=$(grep -E '^\[doctest\] test cases:' "$out" | tail -n 1)
passed=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$line")
failed=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$line")
skipped=$(sed -E 's/.*\| *([0-9]+) skipped.*/\1/' <<<"$line")
# CUDA cases without a GPU return early with a "skipped:" message; doctest counts them as
# passed, we count them as skipped.
no_gpu=$(grep -c 'MESSAGE: skipped:' "$out")
rm -f "$out"
passed=$(( ${passed:-0} - no_gpu )); skipped=$(( ${skipped:-0} + no_gpu ))
[ "$no_gpu" -gt 0 ] && echo "($no_gpu test cases skipped themselves: no CUDA device visible or PRM_BIN unset)"
echo "tests: ${passed} passed, ${failed:-0} failed, ${skipped} skipped"
exit "$rc"
