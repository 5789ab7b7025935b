#!/usr/bin/env bash
# Everything a session with a lent GPU should run, in one call of at most 10 minutes:
#   here (no GPU):   tools/gpu_check.sh --prepare      copies Debian's stb and doctest headers into
#                                                      third_party/ (git-ignored) for the trip
#   on the device:   tools/gpu_check.sh                (device tool: carry ["third_party"])
# It builds without OpenBLAS (the GPU machine has none), runs the CUDA tests (`make test-gpu`),
# runs a subset under compute-sanitizer memcheck, then `prm bench --device cuda` and, where
# PyTorch is installed, tools/bench_torch.py on the same GPU, and prints one summary at the end.
# Logs and the JSON lines go to $OUT (the device tool brings that folder back) or ./gpu_check_out.
set -uo pipefail
cd "$(dirname "$0")/.."

# The stb headers the code includes, read from the sources (not a fixed list: a new include would
# otherwise break the GPU build on a machine without Debian's stb).
stb_headers() {
  grep -rhoE '#include [<"](stb/)?stb_[a-z_]+\.h[>"]' src apps tests tools 2>/dev/null |
    sed -E 's/.*(stb_[a-z_]+\.h).*/\1/' | sort -u
}

if [ "${1:-}" = "--prepare" ]; then
  mkdir -p third_party/stb third_party/doctest
  for h in $(stb_headers); do
    cp "/usr/include/stb/$h" third_party/stb/ || { echo "missing /usr/include/stb/$h" >&2; exit 1; }
  done
  cp /usr/include/doctest/doctest.h third_party/doctest/
  echo "third_party/ ready ($(stb_headers | tr '\n' ' ')and doctest.h): carry it to the GPU machine"
  exit 0
fi
if [ "${1:-}" = "--list-stb" ]; then stb_headers; exit 0; fi

out=${OUT:-gpu_check_out}
mkdir -p "$out"
build=build-gpu
summary=()
step() {  # step NAME LOG COMMAND...: runs, records pass/fail and the log's last line
  local name=$1 log=$2; shift 2
  local t0=$SECONDS
  if "$@" >"$out/$log" 2>&1; then summary+=("ok    $name ($((SECONDS - t0)) s)");
  else summary+=("FAIL  $name ($((SECONDS - t0)) s): $(tail -n 1 "$out/$log")"); fi
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$out/gpu.txt" 2>&1
step build build.log make -j"$(nproc)" BUILD=$build USE_OPENBLAS=0 all
step test-gpu test_gpu.log make BUILD=$build USE_OPENBLAS=0 test-gpu
if command -v compute-sanitizer >/dev/null || [ -x /usr/local/cuda/bin/compute-sanitizer ]; then
  cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  step memcheck memcheck.log "$cs" --tool memcheck --error-exitcode 1 \
    $build/prm_tests --test-suite=cuda --test-case='*parity*,*conv*,*loader*,*peak*,*batch_norm*'
fi
bench() {
  for precision in fp32 tf32 bf16; do
    for engine in native cudnn; do
      # cuDNN refuses bf16 (docs/precision.md): bf16 GEMM inputs exist in the native engine only.
      [ "$precision/$engine" = bf16/cudnn ] && continue
      $build/prm bench --device cuda --arch resnet50 --size 448 --batch 16 --runs 10 \
        --conv-engine $engine --precision $precision --only forward || return 1
      $build/prm bench --device cuda --arch resnet50 --size 448 --batch 16 --runs 10 \
        --conv-engine $engine --precision $precision --only train || return 1
    done
  done
  $build/prm bench --device cuda --arch resnet50 --size 448 --runs 10 --only prm --peaks 16 || return 1
  if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    for precision in fp32 tf32 bf16; do
      python3 tools/bench_torch.py --device cuda --arch resnet50 --size 448 --batch 16 --runs 10 --only forward --precision $precision
      python3 tools/bench_torch.py --device cuda --arch resnet50 --size 448 --batch 16 --runs 10 --only train --precision $precision
    done
    python3 tools/bench_torch.py --device cuda --arch resnet50 --size 448 --runs 10 --only prm --peaks 16
  fi
}
step bench bench.jsonl bench
# The data-parallel NCCL path (docs/scaling.md): one rank under mpirun against one process, on a
# tiny synthetic set, same weights up to rounding. Needs OpenMPI on the GPU machine.
nccl_check() {
  local d=$out/nccl && rm -rf "$d" && mkdir -p "$d"
  $build/prm synth --out "$d/data" --train 12 --val 0 --size 64 --classes 3 --seed 7 || return 1
  local flags="--data $d/data --arch resnet18 --width 8 --size 64 --batch 4 --epochs 1 --device cuda --val-split none --workers 1"
  $build/prm train $flags --out "$d/one" || return 1
  mpirun --allow-run-as-root -np 1 $build/prm train $flags --out "$d/mpi" || return 1
  python3 - "$d/one/weights.safetensors" "$d/mpi/weights.safetensors" <<'PY'
import json, struct, sys
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
same = sum(a[k] == b[k] for k in a)
print(f"nccl one-rank run: {same}/{len(a)} tensors bitwise equal to the one-process run")
sys.exit(0 if same == len(a) else 1)
PY
}
if command -v mpirun >/dev/null && grep -q 'USE_NCCL=1' "$out/build.log"; then
  step nccl nccl.log nccl_check
else
  summary+=("skip  nccl (no mpirun or no NCCL in this build: the NCCL path did not run)")
fi

echo "== gpu_check on $(cat "$out/gpu.txt")"
printf '%s\n' "${summary[@]}"
grep -h '^{' "$out/bench.jsonl" 2>/dev/null | sed -E 's/.*"bench": "([a-z_]+)", "impl": "([a-z]+)".*"batch": ([0-9]+).*"median_s": ([0-9.]+).*"peak_mem_mb": ([0-9.]+).*"precision": "([a-z0-9]+)".*/\2 \1 \6 batch \3: median \4 s, peak \5 MB/'
echo
echo "== prm against PyTorch on this GPU (PyTorch's median / prm's best engine; > 1: prm faster)"
python3 tools/bench_table.py "$out/bench.jsonl" | tee "$out/bench_table.md" || true
