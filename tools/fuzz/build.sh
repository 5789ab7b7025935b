#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (Debian's clang++ ships libFuzzer):
#   tools/fuzz/build.sh [outdir]        (default outdir: build-fuzz)
# then, from the repository root, e.g.
#   build-fuzz/fuzz_xml -max_total_time=300 -max_len=8192 build-fuzz/corpus_xml tools/fuzz/corpus_xml
#   build-fuzz/fuzz_png -max_total_time=300 build-fuzz/corpus_png
#   build-fuzz/fuzz_json -max_total_time=300 -max_len=4096 build-fuzz/corpus_json
# The XML seed corpus is tools/fuzz/corpus_xml plus the VOC-shaped fixtures in
# tests/fixtures/voc/Annotations (copied into the output folder's corpus).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build-fuzz}
mkdir -p "$out/corpus_xml" "$out/corpus_png" "$out/corpus_json"
CXX=${CXX:-clang++}
FLAGS="-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc -I/usr/include/stb -DPRM_USE_CUDA=0"
$CXX $FLAGS tools/fuzz/fuzz_xml.cpp src/data/xml.cpp src/data/voc.cpp src/data/image.cpp src/data/files.cpp -o "$out/fuzz_xml"
$CXX $FLAGS tools/fuzz/fuzz_png.cpp src/data/image.cpp src/data/files.cpp -o "$out/fuzz_png"
$CXX $FLAGS tools/fuzz/fuzz_json.cpp src/data/json.cpp -o "$out/fuzz_json"
cp tests/fixtures/voc/Annotations/*.xml tools/fuzz/corpus_xml/* "$out/corpus_xml/" 2>/dev/null || true
echo "built $out/fuzz_xml, $out/fuzz_png and $out/fuzz_json"
