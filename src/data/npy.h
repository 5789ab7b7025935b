// NumPy .npy files: float32 / float64 / int64, little-endian, C order (the on-disk tensor
// contract in docs/formats.md). The reader accepts format versions 1.0 and 2.0 (2-byte and 4-byte
// header lengths) and is strict: Fortran order, big-endian or any other dtype, a truncated file,
// trailing bytes or a header whose shape disagrees with the data size all throw prm::Error naming
// the file. The writer emits version 1.0 (2.0 only for a header over 64 KiB), header padded so
// that the data starts on a 64-byte boundary, and writes atomically (data/files.h).
#pragma once
#include <string>

#include "tensor/tensor.h"

namespace prm {

// Reads `path` into a new CPU tensor of the file's dtype and shape.
Tensor load_npy(const std::string& path);
// Writes a tensor of any device (copied to the host) to `path`.
void save_npy(const std::string& path, const Tensor& tensor);

// The same on bytes in memory; `name` is used in error messages (usually the file path).
Tensor parse_npy(const std::string& bytes, const std::string& name);
std::string encode_npy(const Tensor& tensor);

}  // namespace prm
