#!/usr/bin/env bash
# Everything a session with a lent GPU should run, in one call of the device tool:
#   here (no GPU):   tools/gpu_check.sh --prepare      copies Debian's stb and doctest headers into
#                                                      third_party/ (git-ignored) for the trip
#   on the device:   tools/gpu_check.sh                (device tool: carry ["third_party"])
#
# Steps, most important first (a step's time limit in brackets; the whole run also stops starting
# steps when GPU_CHECK_DEADLINE seconds, default 460, are nearly spent, so the call always returns
# its summary; the benchmark, last, is what a slow build squeezes out):
#   build       make all without OpenBLAS (none on the GPU machine), USE_MPI=0 without mpicc  [180]
#   test-gpu    make test-gpu: the doctest cuda suite, failing when no GPU is visible           [90]
#   gradcheck   prm gradcheck --device cuda: every op's gradient against finite differences     [60]
#   e2e         synthetic VOC set; train on the CPU and on CUDA from one seed, resume the CUDA
#               run; infer and eval with the CPU's weights on both devices; tools/compare_runs.py
#               judges the pairs within stated tolerances                                        [90]
#   memcheck    compute-sanitizer memcheck on a subset of the cuda suite                        [90]
#   racecheck   compute-sanitizer racecheck: the kernels with shared-memory reductions          [60]
#   initcheck   compute-sanitizer initcheck: the same kernels and batch norm's backward         [60]
#   nccl        one rank under mpirun against one process (needs mpirun and an NCCL build)      [40]
#   bench       prm bench --device cuda (engines x precisions) and tools/bench_torch.py        [150]
#   profile     ncu: every kernel of one fp32 training step (ResNet-50, 448, batch 16), summed
#               per kernel by tools/ncu_summary.py into profile_train.md: where the next speed
#               work should go (skipped where ncu is missing or cannot read the counters)      [90]
#
# Options:
#   --only STEP,...   run only these steps (a rerun of the failed ones; without `build` the
#                     existing build folder is used as it is, though test-gpu's make still
#                     builds what is missing there, with this script's make variables)
#   --skip STEP,...   run all but these
#   --e2e-only        the same as --only e2e
#   --print-build     print the make command of the build step and exit (tests/gpu_check_build_test.sh)
#   --list-steps      print the steps with their time limits and exit
#   --prepare, --list-stb   see above / the stb headers the sources include
# Environment:
#   OUT                  logs and results (the device tool brings $OUT back), else ./gpu_check_out
#   GPU_CHECK_BUILD      build folder (default build-gpu); e.g. build for a CPU-only e2e here
#   GPU_CHECK_DEVICE2    the e2e step's second device (default cuda; cpu tests the step without a GPU:
#                        GPU_CHECK_BUILD=build GPU_CHECK_DEVICE2=cpu tools/gpu_check.sh --e2e-only)
#   GPU_CHECK_DEADLINE   seconds for the whole run (default 460)
#   GPU_CHECK_TIMEOUTS   per-step limits replaced, e.g. build=300,bench=60
#   GPU_CHECK_E2E_EXTRACTION_SIZE   the e2e step's --extraction-size (default 448, the official)
# Exit status: 0 when no step failed (skipped steps do not fail the run), else 1.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
self=tools/gpu_check.sh

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
build=${GPU_CHECK_BUILD:-build-gpu}
prm=$build/prm
device2=${GPU_CHECK_DEVICE2:-cuda}

# The make variables every make call here shares. The GPU machine has no OpenBLAS, often no
# OpenMPI and no package registry: without USE_MPI=0 the Makefile's `deps` step would reach for
# apt-get to install OpenMPI (failing, or waiting on a registry that is not there), and test-gpu's
# make would repeat that. With mpicc present, the Makefile decides (MPI and NCCL where found).
make_args=(BUILD="$build" USE_OPENBLAS=0)
command -v mpicc >/dev/null 2>&1 || make_args+=(USE_MPI=0)
# Device code for this GPU's architecture only (sm_90 on an H100 or H200): the default builds
# sm_80 and sm_90, twice the nvcc time, and the build is the step closest to its limit.
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
if [[ "$cap" =~ ^[0-9]+$ ]]; then
  make_args+=("GENCODE=-gencode arch=compute_${cap},code=[sm_${cap},compute_${cap}]")
fi
build_cmd=(make -j"$(nproc)" "${make_args[@]}" all)

# ---------------------------------------------------------------------------------------------
# The steps' bodies. Each runs in its own bash process (the script calls itself with --body
# STEP), so that `timeout` can stop a shell function and everything it started. Exit 77 means
# "skipped" (the last line says why).

body_build() { "${build_cmd[@]}"; }

body_test_gpu() { make "${make_args[@]}" test-gpu; }

body_gradcheck() { "$prm" gradcheck --device cuda; }

sanitizer() {
  if command -v compute-sanitizer >/dev/null; then command -v compute-sanitizer
  elif [ -x /usr/local/cuda/bin/compute-sanitizer ]; then echo /usr/local/cuda/bin/compute-sanitizer
  else return 1; fi
}

# Runs the cuda suite's cases matching PATTERNS (doctest's comma-separated wildcards) under
# compute-sanitizer --tool TOOL. A pattern that matches no case fails the step (a renamed test
# would otherwise leave the sanitizer checking nothing, and doctest reports "0 test cases" as
# success); so does a run in which no case ran or one failed, or a GPU that is not visible
# (PRM_REQUIRE_GPU: the cases would skip themselves).
sanitize() {
  local tool=$1 patterns=$2 cs pattern n log
  local -a pats
  cs=$(sanitizer) || { echo "skipped: no compute-sanitizer"; return 77; }
  IFS=, read -ra pats <<<"$patterns"
  for pattern in "${pats[@]}"; do
    n=$("$build/prm_tests" --list-test-cases --test-suite=cuda --test-case="$pattern" |
      sed -nE 's/.*passing the current filters: ([0-9]+).*/\1/p')
    echo "filter '$pattern': ${n:-?} test cases"
    [ "${n:-0}" -ge 1 ] || { echo "FAIL: filter '$pattern' matches no test case of the cuda suite"; return 1; }
  done
  log=$(mktemp)
  PRM_REQUIRE_GPU=1 "$cs" --tool "$tool" --error-exitcode 1 \
    "$build/prm_tests" --test-suite=cuda --test-case="$patterns" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line found
  line=$(grep -E '^\[doctest\] test cases:' "$log" | tail -n 1)
  # The sanitizer's own verdict ("========= ERROR SUMMARY: 2 errors", racecheck's hazard count),
  # for the summary line.
  found=$(grep -E '^=+ .*SUMMARY:' "$log" | sed -E 's/^=+ //' | tr '\n' ' ')
  # Some machines' runtimes (gVisor) give the sanitizer no access to the GPU: say so, as a skip.
  local refused
  refused=$(grep -m1 -E 'Device not supported|Unable to find injection library' "$log")
  rm -f "$log"
  if [ -n "$refused" ]; then
    echo "skipped: compute-sanitizer cannot use this GPU here: $refused"; return 77
  fi
  if [[ ! $line =~ test\ cases:\ *([0-9]+)\ *\|\ *([0-9]+)\ passed\ *\|\ *([0-9]+)\ failed ]]; then
    echo "FAIL: no doctest summary (exit $rc) ${found}"; return 1
  fi
  if [ "${BASH_REMATCH[1]}" -eq 0 ] || [ "${BASH_REMATCH[3]}" -ne 0 ] || [ "$rc" -ne 0 ]; then
    echo "FAIL: $tool: ${BASH_REMATCH[1]} cases, ${BASH_REMATCH[3]} failed, exit $rc; ${found:-no sanitizer summary}"
    return 1
  fi
  echo "$tool: ${BASH_REMATCH[1]} cases, no errors; ${found}"
}

# memcheck: the broad subset it has always had (every op's parity, convolutions, the loader's
# pinned memory, peaks, batch norm).
body_memcheck() { sanitize memcheck '*parity*,*conv*,*loader*,*peak*,*batch_norm*'; }
# racecheck: shared-memory hazards, so the kernels that reduce through shared memory: sums and
# means, batch-norm statistics (forward, the fused epilogue's backward), the median's radix
# select and the peak search.
body_racecheck() {
  sanitize racecheck '*cuda elementwise and reductions*,*batch_norm statistics cuda*,*batch_norm_act cuda*,*nn cuda: batch_norm*,*peak stimulation on cuda*'
}
# initcheck: reads of device memory never written; the same kernels plus peak back-propagation
# (batch norm's eval-mode backward must not read the per-channel sums it leaves unset).
body_initcheck() {
  sanitize initcheck '*cuda elementwise and reductions*,*batch_norm statistics cuda*,*batch_norm_act cuda*,*nn cuda: batch_norm*,*peak stimulation on cuda*,*peak back-propagation on cuda*'
}

# The whole pipeline on two devices: the CPU is the reference, $device2 (cuda; cpu to test this
# step without a GPU) the one checked. Sizes keep it to seconds: 16 training and 8 validation
# images of 64 pixels, 3 classes, ResNet-18 of width 8, batches of 4 (4 steps an epoch).
body_e2e() {
  case $device2 in cpu | cuda) ;; *) echo "GPU_CHECK_DEVICE2 must be cpu or cuda"; return 2 ;; esac
  local d=$out/e2e
  rm -rf "$d" && mkdir -p "$d" || return 1
  run() { echo "+ $*"; "$@"; }
  run "$prm" synth --out "$d/data" --train 16 --val 8 --size 64 --classes 3 --seed 7 || return 1
  mkdir -p "$d/val_images"
  local id
  while read -r id; do
    cp "$d/data/JPEGImages/$id.jpg" "$d/val_images/" || return 1
  done <"$d/data/ImageSets/Main/val.txt"
  local train=(--data "$d/data" --arch resnet18 --width 8 --size 64 --batch 4 --epochs 2
    --workers 1 --seed 3)
  # a. Two epochs on each device from the same seed (the same initial weights, order and flips).
  # Folders are named by role (ref: the CPU; dev2: the device checked), so that device2=cpu
  # runs the same commands into other folders.
  run "$prm" train "${train[@]}" --device cpu --out "$d/train_ref" || return 1
  run "$prm" train "${train[@]}" --device "$device2" --out "$d/train_dev2" || return 1
  # Then one more epoch by --resume: the second device's run itself, and a copy of the CPU run as
  # its reference (the CPU run's own 2-epoch weights stay W_cpu for the inference below).
  run cp -r "$d/train_ref" "$d/train_ref3" || return 1
  run "$prm" train --resume "$d/train_ref3" --epochs 3 --workers 1 || return 1
  run "$prm" train --resume "$d/train_dev2" --epochs 3 --workers 1 >"$d/resume.log" 2>&1
  local rc=$?
  cat "$d/resume.log"
  [ "$rc" -eq 0 ] || return 1
  # It continued: the resumed process trained epoch 3 only (not from epoch 1 again).
  if ! grep -q 'epoch 3/3' "$d/resume.log" || grep -qE 'epoch [12]/3' "$d/resume.log"; then
    echo "FAIL: the resumed run did not train exactly epoch 3 of 3"; return 1
  fi
  # b. The same weights (the CPU's, after 2 epochs) on both devices. --peak-threshold 0: two
  # epochs leave the class response maps far below the official 30, which would leave no peaks
  # and no instances to compare.
  # The proposals run on the CPU for both; GPU_CHECK_E2E_EXTRACTION_SIZE (default the official
  # 448) lets tests/compare_runs_test.sh run them 4x faster at 224 on two cores.
  local w=$d/train_ref/weights.safetensors role dev
  local extraction=(--extraction-size "${GPU_CHECK_E2E_EXTRACTION_SIZE:-448}")
  for role in ref dev2; do
    dev=cpu
    [ "$role" = dev2 ] && dev=$device2
    run "$prm" infer --weights "$w" --input "$d/val_images" --out "$d/infer_$role" \
      --device "$dev" --peak-threshold 0 "${extraction[@]}" || return 1
    run "$prm" eval --data "$d/data" --weights "$w" --out "$d/eval_$role" --device "$dev" \
      --peak-threshold 0 "${extraction[@]}" || return 1
  done
  # c. The verdict (tolerances argued in tools/compare_runs.py). Training: the 3-epoch runs,
  # whose metrics.jsonl hold epochs 1-2 of the plain runs and epoch 3 of the resumed ones.
  run python3 tools/compare_runs.py --expect-epochs 3 \
    --train "$d/train_ref3" "$d/train_dev2" \
    --weights "$d/train_ref3/weights.safetensors" "$d/train_dev2/weights.safetensors" \
    --infer "$d/infer_ref" "$d/infer_dev2" \
    --eval "$d/eval_ref" "$d/eval_dev2"
}

# The data-parallel NCCL path (docs/scaling.md): one rank under mpirun against one process, on a
# tiny synthetic set, same weights bit for bit. Needs OpenMPI and an NCCL build.
body_nccl() {
  command -v mpirun >/dev/null || { echo "skipped: no mpirun: the NCCL path did not run"; return 77; }
  # `prm --version` names MPI but not NCCL; make info says whether these make variables give NCCL.
  "$prm" --version 2>/dev/null | grep -q 'MPI yes' ||
    { echo "skipped: $prm was built without MPI: the NCCL path did not run"; return 77; }
  make -s "${make_args[@]}" info | grep -q 'USE_NCCL=1' ||
    { echo "skipped: this build has no NCCL (USE_NCCL=0): the NCCL path did not run"; return 77; }
  local d=$out/nccl && rm -rf "$d" && mkdir -p "$d"
  "$prm" synth --out "$d/data" --train 12 --val 0 --size 64 --classes 3 --seed 7 || return 1
  local flags=(--data "$d/data" --arch resnet18 --width 8 --size 64 --batch 4 --epochs 1
    --device cuda --val-split none --workers 1)
  "$prm" train "${flags[@]}" --out "$d/one" || return 1
  mpirun --allow-run-as-root -np 1 "$prm" train "${flags[@]}" --out "$d/mpi" || return 1
  python3 tools/compare_runs.py --weights "$d/one/weights.safetensors" "$d/mpi/weights.safetensors" \
    --weight-rtol 0
}

# Last: timings, prm's engines and precisions, then PyTorch's on the same GPU. JSON lines only on
# stdout (the log is bench.jsonl; tools/bench_table.py reads it).
body_bench() {
  local precision engine only
  for precision in fp32 tf32 bf16; do
    for engine in native cudnn; do
      # cuDNN refuses bf16 (docs/precision.md): bf16 GEMM inputs exist in the native engine only.
      [ "$precision/$engine" = bf16/cudnn ] && continue
      for only in forward train; do
        "$prm" bench --device cuda --arch resnet50 --size 448 --batch 16 --runs 10 \
          --conv-engine $engine --precision $precision --only $only || return 1
      done
    done
  done
  "$prm" bench --device cuda --arch resnet50 --size 448 --runs 10 --only prm --peaks 16 || return 1
  if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    for precision in fp32 tf32 bf16; do
      for only in forward train; do
        python3 tools/bench_torch.py --device cuda --arch resnet50 --size 448 --batch 16 --runs 10 \
          --only $only --precision $precision
      done
    done
    python3 tools/bench_torch.py --device cuda --arch resnet50 --size 448 --runs 10 --only prm --peaks 16
  fi
}

# One fp32 training step under Nsight Compute, its kernels' durations only (one pass per kernel;
# caches and clocks left alone, as in a real step), summed per kernel. --warmup 0 --runs 1: the
# one step profiled is the first, whose kernels are those of every step (cuBLAS and the allocator
# make their choices on the host). The step's wall time for the busy share comes from the bench
# step's fp32 native train row when there is one.
body_profile() {
  command -v ncu >/dev/null || { echo "skipped: no ncu on this machine"; return 77; }
  local raw=$out/profile_train.csv wall
  ncu --csv --page raw --metrics gpu__time_duration.sum --print-units base \
    --cache-control none --clock-control none --print-kernel-base function \
    "$prm" bench --device cuda --arch resnet50 --size 448 --batch 16 --warmup 0 --runs 1 \
    --only train >"$raw" 2>&1
  local rc=$?
  if grep -qE 'LibraryNotLoaded|ERR_NVGPUCTRPERM|not supported' "$raw"; then
    echo "skipped: ncu cannot profile on this machine: $(grep -m1 -E 'LibraryNotLoaded|ERR_NVGPUCTRPERM|not supported' "$raw")"
    return 77
  fi
  [ "$rc" -eq 0 ] || { tail -n 5 "$raw"; echo "FAIL: ncu exited $rc"; return 1; }
  wall=$(python3 - "$out/bench.jsonl" <<'PY' 2>/dev/null
import json, sys
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if (r.get("bench"), r.get("impl"), r.get("device"), r.get("batch"), r.get("precision"),
            r.get("conv_engine")) == ("train_step", "prm", "cuda", 16, "fp32", "native"):
        print(r["median_s"])
        break
PY
)
  python3 tools/ncu_summary.py "$raw" --top 30 ${wall:+--wall-s "$wall"} | tee "$out/profile_train.md"
}

all_steps=(build test-gpu gradcheck e2e memcheck racecheck initcheck nccl bench profile)
declare -A limit=([build]=180 [test-gpu]=90 [gradcheck]=60 [e2e]=90 [memcheck]=90 [racecheck]=60
  [initcheck]=60 [nccl]=40 [bench]=150 [profile]=90)

if [ "${1:-}" = "--body" ]; then
  case $2 in
    build) body_build ;; test-gpu) body_test_gpu ;; gradcheck) body_gradcheck ;; e2e) body_e2e ;;
    memcheck) body_memcheck ;; racecheck) body_racecheck ;; initcheck) body_initcheck ;;
    nccl) body_nccl ;; bench) body_bench ;; profile) body_profile ;;
    *) echo "no step $2" >&2; exit 2 ;;
  esac
  exit $?
fi

# ---------------------------------------------------------------------------------------------
# Options.
usage() { sed -n '2,/^set -uo/p' "$self" | sed -e '$d' -e 's/^# \{0,1\}//'; }
is_step() { local s; for s in "${all_steps[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
only="" skip=""
while [ $# -gt 0 ]; do
  case $1 in
    --only) only=${2:-}; shift ;;
    --only=*) only=${1#--only=} ;;
    --skip) skip=${2:-}; shift ;;
    --skip=*) skip=${1#--skip=} ;;
    --e2e-only) only=e2e ;;
    --print-build) printf '%q ' "${build_cmd[@]}"; echo; exit 0 ;;
    --list-steps) for s in "${all_steps[@]}"; do echo "$s ${limit[$s]} s"; done; exit 0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
  shift
done
for s in ${only//,/ } ${skip//,/ }; do
  is_step "$s" || { echo "gpu_check.sh: no step '$s' (steps: ${all_steps[*]})" >&2; exit 2; }
done
timeouts=${GPU_CHECK_TIMEOUTS:-}
for kv in ${timeouts//,/ }; do
  if ! is_step "${kv%%=*}" || ! [[ ${kv#*=} =~ ^[0-9]+$ ]]; then
    echo "gpu_check.sh: bad GPU_CHECK_TIMEOUTS entry '$kv'" >&2; exit 2
  fi
  limit[${kv%%=*}]=${kv#*=}
done
deadline=${GPU_CHECK_DEADLINE:-460}
selected() {
  [[ ,$skip, == *,$1,* ]] && return 1
  [ -z "$only" ] || [[ ,$only, == *,$1,* ]]
}

mkdir -p "$out"
summary=()
failed=0
# Runs one step under `timeout` (its own limit, cut to what is left of the deadline), its output in
# $out/<step>.log (bench: bench.jsonl), and records ok / FAIL / skip with its time.
step() {
  local name=$1 log t0=$SECONDS left n
  log=$out/${name//-/_}.log
  [ "$name" = bench ] && log=$out/bench.jsonl
  left=$((deadline - SECONDS))
  if [ "$left" -lt 15 ]; then  # too little to start anything useful
    summary+=("skip  $name (only ${left} s left of GPU_CHECK_DEADLINE=$deadline)")
    return
  fi
  n=${limit[$name]}
  [ "$left" -lt "$n" ] && n=$left
  echo "== $name (limit $n s) ..."
  # -k 10: a step that ignores SIGTERM (a wedged kernel) is killed 10 s later.
  timeout -k 10 "$n" bash "$self" --body "$name" >"$log" 2>&1
  local rc=$? took=$((SECONDS - t0))
  if [ "$rc" -eq 0 ]; then
    summary+=("ok    $name (${took} s)")
  elif [ "$rc" -eq 77 ]; then
    summary+=("skip  $name (${took} s): $(tail -n 1 "$log")")
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    summary+=("FAIL  $name (${took} s): timed out after $n s; last line: $(tail -n 1 "$log" | cut -c1-160)")
    failed=1
  else
    summary+=("FAIL  $name (${took} s, exit $rc): $(tail -n 1 "$log" | cut -c1-200)")
    failed=1
  fi
  echo "${summary[-1]}"
}

if command -v nvidia-smi >/dev/null; then
  timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$out/gpu.txt" 2>&1
else
  echo "no nvidia-smi" >"$out/gpu.txt"
fi
for s in "${all_steps[@]}"; do
  if selected "$s"; then step "$s"; fi
done

echo
echo "== gpu_check on $(head -n 1 "$out/gpu.txt"), build $build, $SECONDS s in all"
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
if selected bench && [ -s "$out/bench.jsonl" ]; then
  python3 - "$out/bench.jsonl" <<'PY' || true
import json, sys
for line in open(sys.argv[1]):
    if line.startswith("{"):
        r = json.loads(line)
        print(f"{r.get('impl')} {r.get('bench')} {r.get('precision', '')} "
              f"{r.get('conv_engine', '')} batch {r.get('batch')}: median {r.get('median_s')} s, "
              f"peak {r.get('peak_mem_mb')} MB")
PY
  echo
  echo "== prm against PyTorch on this GPU (PyTorch's median / prm's best engine; > 1: prm faster)"
  python3 tools/bench_table.py "$out/bench.jsonl" | tee "$out/bench_table.md" || true
fi
exit "$failed"
