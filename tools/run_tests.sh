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
rm -f "$out"
echo "tests: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
exit "$rc"
