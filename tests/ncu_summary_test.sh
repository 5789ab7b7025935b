#!/usr/bin/env bash
# tools/ncu_summary.py on a made-up `ncu --csv --page raw` capture: ncu's own lines and the
# program's JSON mixed in, a units row in microseconds, a launch ncu could not measure. The
# expected figures are worked out by hand below. Exits non-zero on any mismatch.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cat >"$d/raw.csv" <<'CSV'
==PROF== Connected to process 4242 (/x/build-gpu/prm)
==PROF== Profiling "im2col_kernel" - 0: 0%....50%....100% - 1 pass
"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC","gpu__time_duration.sum"
"","","","","","","","","","","","usecond"
"0","4242","prm","h","im2col_kernel","1","7","(256, 1, 1)","(64, 1, 1)","0","9.0","100.5"
"1","4242","prm","h","gemm_sm90_kernel","1","7","(128, 1, 1)","(32, 1, 1)","0","9.0","1,000"
"2","4242","prm","h","im2col_kernel","1","7","(256, 1, 1)","(64, 1, 1)","0","9.0","99.5"
"3","4242","prm","h","bn|stats","1","7","(512, 1, 1)","(64, 1, 1)","0","9.0","n/a"
"4","4242","prm","h","bn|stats","1","7","(512, 1, 1)","(64, 1, 1)","0","9.0","300"
{"bench": "train", "impl": "prm", "median_s": 0.0031}
==PROF== Disconnected from process 4242
CSV
fail=0
check() { grep -qF -- "$1" "$d/out.txt" || { echo "FAIL: missing: $1"; fail=1; }; }
python3 tools/ncu_summary.py "$d/raw.csv" --top 2 --wall-s 0.003 >"$d/out.txt" || { echo "FAIL: exit $?"; fail=1; }
cat "$d/out.txt"
# 4 measured launches: 100.5 + 1000 + 99.5 + 300 us = 1500 us = 1.5 ms; 1.5 / 3 ms = 50 %.
check "4 kernel launches, 1.500 ms of kernel time in 3 kernels"
check "so the GPU was busy 50 % of it"
# gemm 1.0 ms (66.7 %), then bn|stats 0.3 ms (20 %; its | escaped for Markdown, its n/a launch
# not counted); im2col's 2 launches, 0.2 ms (13.3 %), are beyond --top 2.
check "| gemm_sm90_kernel | 1 | 1.000 | 66.7 % | 1000.0 |"
check "| bn\\|stats | 1 | 0.300 | 20.0 % | 300.0 |"
check "| (1 other kernels) | 2 | 0.200 | 13.3 % | |"
# Input without the metric is refused with a message and exit 2.
echo '"ID","Kernel Name"' >"$d/bad.csv"
python3 tools/ncu_summary.py "$d/bad.csv" >/dev/null 2>"$d/err.txt"
rc=$?
if [ "$rc" -ne 2 ] || ! grep -q "no header" "$d/err.txt"; then
  echo "FAIL: bad input not refused (exit $rc)"; fail=1
fi
[ "$fail" -eq 0 ] && echo "ncu_summary_test: ok"
exit "$fail"
