#!/usr/bin/env bash
# tools/gpu_check.sh's e2e step without a GPU, and tools/compare_runs.py's failure path.
#  1. `GPU_CHECK_DEVICE2=cpu tools/gpu_check.sh --e2e-only` with the build of $PRM_BIN: the whole
#     step (synth, train, resume, infer, eval, compare) on two CPU runs, which must match.
#  2. compare_runs.py on copies of that step's outputs, each with one planted difference: beyond
#     tolerance it must exit 1, within tolerance 0. Its PNG decoder is checked against the masks'
#     pixel counts that prm infer writes beside them (`area`).
# Run from the repository root: PRM_BIN=build/prm bash tests/compare_runs_test.sh (about 10-20 s
# on two cores; tests/test_gpu_check_script.cpp runs it under `make test`).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
prm=${PRM_BIN:-build/prm}
[ -x "$prm" ] || { echo "no prm at $prm (set PRM_BIN)"; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

# 1. The e2e step, CPU against CPU.
# Proposals at 224 instead of 448: the same commands, a quarter of the time on two cores.
if OUT=$work/out GPU_CHECK_BUILD=$(dirname "$prm") GPU_CHECK_DEVICE2=cpu GPU_CHECK_E2E_EXTRACTION_SIZE=224 \
  bash tools/gpu_check.sh --e2e-only >"$work/gpu_check.txt" 2>&1; then
  echo "ok    gpu_check.sh --e2e-only with GPU_CHECK_DEVICE2=cpu"
else
  echo "FAIL  gpu_check.sh --e2e-only with GPU_CHECK_DEVICE2=cpu:"
  sed 's/^/  | /' "$work/gpu_check.txt"
  tail -n 30 "$work/out/e2e.log" 2>/dev/null | sed 's/^/  | /'
  exit 1
fi
e=$work/out/e2e

# 2. Planted differences. expect STATUS NAME PYTHON: copies the e2e outputs, runs PYTHON (with
# `e` the copy's folder, json, os, glob and compare_runs imported) to plant the difference, then
# compare_runs.py on the original against the copy must exit STATUS.
expect() {
  local want=$1 name=$2 code=$3 c=$work/copy
  rm -rf "$c" && cp -r "$e" "$c"
  if ! python3 - "$c" <<EOF
import glob, json, os, struct, sys, zlib
sys.path.insert(0, "tools")
import compare_runs
e = sys.argv[1]
def first_with_instances():
    for f in sorted(glob.glob(os.path.join(e, "infer_dev2", "*.json"))):
        d = json.load(open(f))
        if d["instances"]:
            return f, d
    raise SystemExit("no image with instances")
def rewrite(f, d):
    json.dump(d, open(f, "w"))
def write_png(path, w, h, mask):
    rows = b"".join(b"\0" + bytes(255 if mask[y * w + x] else 0 for x in range(w)) for y in range(h))
    chunk = lambda k, b: struct.pack(">I", len(b)) + k + b + struct.pack(">I", zlib.crc32(k + b))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
$code
EOF
  then
    echo "FAIL  $name: could not plant the difference"; fail=1; return
  fi
  python3 tools/compare_runs.py --expect-epochs 3 \
    --train "$e/train_ref3" "$c/train_dev2" \
    --weights "$e/train_ref3/weights.safetensors" "$c/train_dev2/weights.safetensors" \
    --infer "$e/infer_ref" "$c/infer_dev2" --eval "$e/eval_ref" "$c/eval_dev2" >"$work/cmp.txt" 2>&1
  local got=$?
  if [ "$got" -eq "$want" ]; then
    echo "ok    $name: exit $got ($(grep -m1 '^DIFF' "$work/cmp.txt" || echo 'no difference reported'))"
  else
    echo "FAIL  $name: compare_runs.py exited $got, expected $want"; sed 's/^/  | /' "$work/cmp.txt"
    fail=1
  fi
}

expect 0 "unchanged copy" "pass"
expect 0 "a class score 1e-5 relative off (within 1e-3)" '
f, d = first_with_instances(); c = max(d["class_scores"], key=lambda k: abs(d["class_scores"][k]))
d["class_scores"][c] *= 1 + 1e-5; rewrite(f, d)'
expect 1 "a class score 1% off" '
f, d = first_with_instances(); c = max(d["class_scores"], key=lambda k: abs(d["class_scores"][k]))
d["class_scores"][c] *= 1.01; rewrite(f, d)'
expect 1 "a point one pixel to the right" '
f, d = first_with_instances(); d["points"][0]["x"] += 1; rewrite(f, d)'
expect 1 "an instance from another peak" '
f, d = first_with_instances(); d["instances"][0]["peak"][-1] += 1; rewrite(f, d)'
expect 1 "an instance score 1% off" '
f, d = first_with_instances(); d["instances"][0]["score"] *= 1.01; rewrite(f, d)'
expect 1 "one image missing" '
f, d = first_with_instances(); os.remove(f)'
expect 0 "a mask with one pixel flipped (IoU >= 0.99 on a mask of >= 100 pixels)" '
best = None
for f in sorted(glob.glob(os.path.join(e, "infer_dev2", "*.json"))):
    for s in json.load(open(f))["instances"]:
        if s["area"] >= 100 and (best is None or s["area"] > best["area"]): best = s
assert best, "no mask of 100 pixels"
p = os.path.join(e, "infer_dev2", best["mask"]); w, h, m = compare_runs.png_mask(p)
m = list(m); m[0] = not m[0]; write_png(p, w, h, m)'
expect 1 "a mask shifted by a quarter of the image width" '
f, d = first_with_instances(); p = os.path.join(e, "infer_dev2", d["instances"][0]["mask"])
w, h, m = compare_runs.png_mask(p); s = max(1, w // 4)
write_png(p, w, h, [m[y * w + (x - s) % w] for y in range(h) for x in range(w)])'
expect 1 "an eval metric 0.01 off" '
p = os.path.join(e, "eval_dev2", "eval.json"); d = json.load(open(p))
d["classification"]["map"] += 0.01; rewrite(p, d)'
expect 1 "a training loss 1% off" '
p = os.path.join(e, "train_dev2", "metrics.jsonl"); rows = [json.loads(x) for x in open(p)]
rows[1]["loss"] *= 1.01; open(p, "w").write("".join(json.dumps(r) + "\n" for r in rows))'
expect 1 "the resumed epoch missing" '
p = os.path.join(e, "train_dev2", "metrics.jsonl"); rows = open(p).readlines()
open(p, "w").write("".join(rows[:2]))'
expect 1 "one weight off by 1% of its tensor's largest magnitude" '
p = os.path.join(e, "train_dev2", "weights.safetensors"); b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]; head = json.loads(b[8:8 + n])
k = next(k for k, v in head.items() if k != "__metadata__" and v["dtype"] == "F32" and v["shape"] and v["shape"][0] > 1)
lo, hi = head[k]["data_offsets"]; x = list(struct.unpack("<%df" % ((hi - lo) // 4), b[8 + n + lo:8 + n + hi]))
x[0] += 0.01 * max(abs(v) for v in x); b[8 + n + lo:8 + n + lo + 4] = struct.pack("<f", x[0])
open(p, "wb").write(bytes(b))'

# The PNG decoder against prm's own pixel counts (its writer uses several row filters).
if python3 - "$e/infer_ref" <<'EOF'
import glob, json, os, sys
sys.path.insert(0, "tools")
import compare_runs
d, n, bad = sys.argv[1], 0, 0
for f in glob.glob(os.path.join(d, "*.json")):
    for s in json.load(open(f))["instances"]:
        n += 1
        bad += sum(compare_runs.png_mask(os.path.join(d, s["mask"]))[2]) != s["area"]
print(f"{n} masks, {bad} with a pixel count other than prm's area")
sys.exit(0 if n and not bad else 1)
EOF
then echo "ok    the PNG decoder counts each mask's pixels as prm does"
else echo "FAIL  the PNG decoder"; fail=1; fi

if [ "$fail" -eq 0 ]; then echo "compare_runs_test: ok"; else echo "compare_runs_test: FAILED"; fi
exit "$fail"
