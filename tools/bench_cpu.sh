#!/usr/bin/env bash
# The CPU side by side of docs/cpu_gemm.md: `prm bench` against PyTorch (tools/bench_torch.py,
# Debian's python3-torch) and, when given, ONNX Runtime's CPU inference, in alternating rounds so
# that a change in the machine's load hits every side alike. Run by hand on a quiet machine;
# never by CI. Prints every JSON line it collects into OUT (default bench_cpu.jsonl), then the
# medians over the rounds with tools/bench_table.py.
#
#   tools/bench_cpu.sh [--rounds 3] [--runs 5] [--prm build/prm] [--out F.jsonl]
#                      [--only forward,train[,prm]] [--ort MODEL.onnx ORT_BENCH.js]
#   (NODE_PATH must find onnxruntime-node for --ort)
#
# Each round runs, for each measurement of --only in turn: prm bench, bench_torch.py, and for
# the forward ort_bench.js; each with its own warm-up and --runs timed runs (ResNet-50,
# 448 x 448, batch 1, all cores). prm's PRM row is the batched one (all peaks in one backward);
# PyTorch's are its official loop and is_grads_batched.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 runs=5 prm=build/prm out=bench_cpu.jsonl only=forward,train ort_model="" ort_js=""
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --prm) prm=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --ort) ort_model=$2; ort_js=$3; shift 3 ;;
    *) echo "bench_cpu.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$prm" ] || { echo "bench_cpu.sh: $prm is not built (make, or --prm PATH)" >&2; exit 2; }
: > "$out"
IFS=, read -r -a measurements <<<"$only"
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  for m in "${measurements[@]}"; do
    extra=()
    [ "$m" = prm ] && extra=(--prm-mode batched)
    "$prm" bench --arch resnet50 --size 448 --batch 1 --device cpu --runs "$runs" --only "$m" \
      "${extra[@]}" 2>/dev/null | grep '^{' >> "$out" || true
    /usr/bin/python3 tools/bench_torch.py --arch resnet50 --size 448 --batch 1 --device cpu \
      --runs "$runs" --only "$m" 2>/dev/null | grep '^{' >> "$out" || true
    if [ -n "$ort_model" ] && [ "$m" = forward ]; then
      node "$ort_js" "$ort_model" 448 "$(nproc)" 2>/dev/null | grep '^{' >> "$out" || true
    fi
  done
done
cat "$out"
/usr/bin/python3 tools/bench_table.py "$out"
