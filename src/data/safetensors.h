// .safetensors files (the weights contract in docs/formats.md): an 8-byte little-endian header length
// N, N bytes of JSON, then the byte buffer:
//   {"conv1.weight": {"dtype": "F32", "shape": [64, 3, 7, 7], "data_offsets": [0, 37632]},
//    "__metadata__": {"format": "pt"}, ...}
// data_offsets are [begin, end) within the buffer.
//
// The reader is strict, parsing the JSON with data/json.h, and throws prm::Error
// naming the file (and the tensor) when: the file is shorter than 8 bytes or the header length
// runs past the end (or is over 100 MB); the JSON is malformed, has duplicate names or unknown
// fields; a dtype is not supported; a shape and its byte range disagree; a byte range runs past
// the buffer; or the ranges overlap, leave a gap, or do not cover the buffer exactly.
// Supported dtypes: F32, F64, I64 load as such. F16 and BF16 are CONVERTED to float32 on load
// (exactly: every half and bfloat16 value is a float32 value), so that half-precision weight
// files load too; everything else (I32, U8, BOOL, F8...) is an error.
// The writer emits F32/F64/I64, 8-byte dtypes first, names in order, the header padded with
// spaces to a multiple of 8 bytes, and writes atomically (temp file + rename).
#pragma once
#include <map>
#include <string>

#include "tensor/tensor_map.h"

namespace prm {

using Metadata = std::map<std::string, std::string>;

struct SafetensorsContents {
  TensorMap tensors;  // CPU tensors
  Metadata metadata;  // the optional "__metadata__" string map
};

// Files prm writes carry, in the metadata entry "prm.crc32", the CRC-32 of every tensor's bytes
// and of the other metadata entries; reading such a file checks them and names the tensor (or the
// metadata) that does not match: bit rot, an edited byte. Files without the entry (torchvision's,
// other tools') load as they are. The entry is not returned in `metadata`.
constexpr const char* kChecksumKey = "prm.crc32";

// IEEE half and bfloat16 to float32, exact (every value of either, subnormals, infinities and
// NaN included, is a float32 value): what the weights readers (this one and data/pth.h) do to
// half-precision tensors on load.
float half_to_float(uint16_t h);
float bf16_to_float(uint16_t h);

// CRC-32 (IEEE 802.3, as zlib's crc32) of n bytes.
uint32_t crc32_of(const void* data, size_t n);

SafetensorsContents load_safetensors(const std::string& path);
void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const Metadata& metadata = {});

// The same on bytes in memory; `name` is used in error messages (usually the file path).
SafetensorsContents parse_safetensors(const std::string& bytes, const std::string& name);
std::string encode_safetensors(const TensorMap& tensors, const Metadata& metadata = {});

}  // namespace prm
