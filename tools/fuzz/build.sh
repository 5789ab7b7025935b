#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (Debian's clang++ ships libFuzzer):
#   tools/fuzz/build.sh [outdir]        (default outdir: build-fuzz)
# then, from the repository root, e.g.
#   build-fuzz/fuzz_xml -max_total_time=300 -max_len=8192 build-fuzz/corpus_xml tools/fuzz/corpus_xml
#   build-fuzz/fuzz_png -max_total_time=300 build-fuzz/corpus_png
#   build-fuzz/fuzz_json -max_total_time=300 -max_len=4096 build-fuzz/corpus_json
#   build-fuzz/fuzz_coco -max_total_time=600 -max_len=4096 -dict=tools/fuzz/coco.dict \
#     build-fuzz/corpus_coco tools/fuzz/corpus_coco
#   build-fuzz/fuzz_safetensors -max_total_time=600 -max_len=8192 build-fuzz/corpus_safetensors
#   build-fuzz/fuzz_npy -max_total_time=600 -max_len=4096 build-fuzz/corpus_npy
#   build-fuzz/fuzz_predictions -max_total_time=600 -max_len=4096 build-fuzz/corpus_predictions
#   build-fuzz/fuzz_checkpoint -max_total_time=600 -max_len=4096 build-fuzz/corpus_checkpoint
#   build-fuzz/fuzz_pth -max_total_time=600 -max_len=8192 build-fuzz/corpus_pth
#   build-fuzz/fuzz_coco_results -max_total_time=600 -max_len=4096 -dict=tools/fuzz/coco.dict \
#     build-fuzz/corpus_coco_results
# The XML seed corpus is tools/fuzz/corpus_xml plus the VOC-shaped fixtures in
# tests/fixtures/voc/Annotations (copied into the output folder's corpus); the others are
# tools/fuzz/corpus_<name> (hand-made: every dtype, format version, line kind), plus the small
# .safetensors, .npy and .pth test fixtures.
# The readers of the last six need most of the library (tensors, networks for the checkpoint
# reader): it is built once with the same sanitizers into OUTDIR/lib through the Makefile
# (SANITIZE=1 gives ASan + UBSan and keeps its stb exemption; -j2 by default, JOBS=n to change).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build-fuzz}
lib_targets="safetensors npy predictions checkpoint pth coco_results"
mkdir -p "$out/corpus_xml" "$out/corpus_png" "$out/corpus_json" "$out/corpus_coco"
for t in $lib_targets; do mkdir -p "$out/corpus_$t"; done
CXX=${CXX:-clang++}
FLAGS="-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc -I/usr/include/stb -DPRM_USE_CUDA=0"
$CXX $FLAGS tools/fuzz/fuzz_png.cpp src/data/image.cpp src/data/files.cpp -o "$out/fuzz_png"
$CXX $FLAGS tools/fuzz/fuzz_json.cpp src/data/json.cpp -o "$out/fuzz_json"
$CXX $FLAGS tools/fuzz/fuzz_coco.cpp src/data/coco.cpp src/data/json_cursor.cpp src/data/json.cpp \
  src/data/files.cpp -o "$out/fuzz_coco"
cp tests/fixtures/voc/Annotations/*.xml tools/fuzz/corpus_xml/* "$out/corpus_xml/" 2>/dev/null || true

CXX_NAME=$(command -v "$CXX")
make -j"${JOBS:-2}" BUILD="$out/lib" USE_CUDA=0 USE_CUDNN=0 USE_OPENBLAS=0 USE_MPI=0 CXX="$CXX_NAME" \
  SANITIZE=1 WARN="-w -fsanitize=fuzzer-no-link" "$out/lib/libprm.a"
# The VOC reader behind fuzz_xml reads COCO too: it takes the library as well.
$CXX $FLAGS tools/fuzz/fuzz_xml.cpp "$out/lib/libprm.a" -fopenmp -lpthread -o "$out/fuzz_xml"
for t in $lib_targets; do
  $CXX $FLAGS "tools/fuzz/fuzz_$t.cpp" "$out/lib/libprm.a" -fopenmp -lpthread -o "$out/fuzz_$t"
  cp tools/fuzz/corpus_$t/* "$out/corpus_$t/"
done
find tests/fixtures -name '*.safetensors' -size -8k -exec cp {} "$out/corpus_safetensors/" \;
find tests/fixtures -name '*.npy' -size -4k -exec cp {} "$out/corpus_npy/" \;
find tests/fixtures/pth -name '*.pth' -size -8k -exec cp {} "$out/corpus_pth/" \;
echo "built $out/fuzz_xml, fuzz_png, fuzz_json, fuzz_coco$(printf ', fuzz_%s' $lib_targets)"
