// The kernels the tensor core itself needs: fill, dtype conversion and accumulation.
// CPU twins in cpu/basic.cpp, CUDA twins in cuda/basic.cu, same signatures.
//   fill:    out[i] = value                  (overwrites)
//   convert: out[i] = (To)inp[i]             (overwrites)
//   axpy:    out[i] += alpha * inp[i]        (accumulates)
#pragma once
#include <cstdint>

namespace prm::cpu {
template <typename T> void fill(T* out, T value, int64_t n);
template <typename To, typename From> void convert(To* out, const From* inp, int64_t n);
template <typename T> void axpy(T* out, T alpha, const T* inp, int64_t n);
}  // namespace prm::cpu

namespace prm::cuda {
template <typename T> void fill(T* out, T value, int64_t n);
template <typename To, typename From> void convert(To* out, const From* inp, int64_t n);
template <typename T> void axpy(T* out, T alpha, const T* inp, int64_t n);
}  // namespace prm::cuda
