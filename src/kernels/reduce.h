// Reduction kernels (both WRITE their output). CPU twins in cpu/reduce.cpp, CUDA twins in
// cuda/reduce.cu, same signatures; accumulation is in double.
//   sum_all:  out[0] = sum of inp[0 .. n). CPU: fixed-size chunks summed in parallel, then the
//             chunk sums in order (deterministic for any thread count). CUDA: a shared-memory
//             tree reduction per block into per-block partials, then one block over the
//             partials (two launches, deterministic).
//   sum_dims: out[o] = sum over the reduced elements of output element o; `kept` walks the
//             input's kept dims (in output order), `reduced` the summed ones (see reduce_math.h).
//             One thread per output element on both devices.
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace prm::cpu {
template <typename T> void sum_all(T* out, const T* inp, int64_t n);
template <typename T>
void sum_dims(T* out, const T* inp, const Strides& kept, const Strides& reduced, int64_t n_out,
              int64_t n_reduced);
}  // namespace prm::cpu

namespace prm::cuda {
template <typename T> void sum_all(T* out, const T* inp, int64_t n);
template <typename T>
void sum_dims(T* out, const T* inp, const Strides& kept, const Strides& reduced, int64_t n_out,
              int64_t n_reduced);
}  // namespace prm::cuda
