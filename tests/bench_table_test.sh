#!/usr/bin/env bash
# tools/bench_table.py on made-up bench rows (prm's compact JSON, PyTorch's spaced JSON, a repeated
# measurement, a log line): the medians and ratios below are worked out by hand. Exits non-zero on
# any mismatch.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cat >"$d/rows.jsonl" <<'ROWS'
prm bench: a log line that is not a row
{"bench":"train_step","impl":"prm","batch":16,"device":"cuda","median_s":0.2,"conv_engine":"native","precision":"fp32","peak_mem_mb":5000}
{"bench":"train_step","impl":"prm","batch":16,"device":"cuda","median_s":0.4,"conv_engine":"native","precision":"fp32"}
{"bench":"train_step","impl":"prm","batch":16,"device":"cuda","median_s":0.1,"conv_engine":"cudnn","precision":"fp32","peak_mem_mb":900.4}
{"bench": "train_step", "impl": "torch", "batch": 16, "device": "cuda", "median_s": 0.15, "precision": "fp32", "peak_mem_mb": 1000}
{"bench":"train_step","impl":"prm","batch":16,"device":"cuda","median_s":0.05,"conv_engine":"native","precision":"tf32"}
{"bench":"prm_batched","impl":"prm","batch":1,"device":"cuda","median_s":0.02,"precision":"fp32","peaks":16}
{"bench":"prm_per_peak","impl":"prm","batch":1,"device":"cuda","median_s":0.08,"precision":"fp32","peaks":16}
{"bench": "prm_per_peak", "impl": "torch", "batch": 1, "device": "cuda", "median_s": 0.5, "precision": "fp32", "peaks": 16}
{"bench": "prm_batched_torch", "impl": "torch", "batch": 1, "device": "cuda", "median_s": 0.13, "precision": "fp32", "peaks": 16}
ROWS
python3 tools/bench_table.py "$d/rows.jsonl" >"$d/out.txt" || { echo "FAIL: exit $?"; exit 1; }
cat "$d/out.txt"
fail=0
check() { grep -qF -- "$1" "$d/out.txt" || { echo "FAIL: missing: $1"; fail=1; }; }
# native: the median of 0.2 and 0.4 = 0.3; the best engine is cuDNN's 0.1: 0.15 / 0.1 = 1.50x;
# the memory is the best engine's (900.4 -> 900, not native's 5000) beside PyTorch's 1000.
check "| train_step | 16 | cuda | fp32 | 0.3000 s | 0.1000 s | 0.1500 s |  | 1.50x |  | 900 | 1000 |"
# tf32 has no PyTorch row of its own: against PyTorch's fp32, 0.15 / 0.05 = 3.00x, said so.
check "| train_step | 16 | cuda | tf32 | 0.0500 s |  |  |  | 3.00x (vs fp32) |  |  |  |"
# PRM: loop 0.5 / batched 0.02 = 25.00x; is_grads_batched 0.13 / 0.02 = 6.50x.
check "| cuda | fp32 | 0.0200 s | 0.0800 s | 0.5000 s | 0.1300 s | 25.00x | 6.50x |"
[ "$fail" -eq 0 ] && echo "bench_table_test: ok"
exit "$fail"
