// Per-output-element math of the sum-over-dims reduction, shared by cpu/reduce.cpp and
// cuda/reduce.cu. Sums accumulate in double whatever T is, so float32 sums over many elements
// keep their precision and the CPU and CUDA twins add in the same order.
#pragma once
#include <cstdint>

#include "kernels/common.h"
#include "kernels/elementwise_math.h"

namespace prm {

// out[o] = sum over r < n_reduced of inp[off(o, kept) + off(r, reduced)].
template <typename T>
PRM_HD T sum_at(int64_t o, const T* inp, const Strides& kept, const Strides& reduced,
                int64_t n_reduced) {
  const T* base = inp + strided_offset(o, kept);
  double acc = 0.0;
  if (reduced.ndim <= 1) {
    const int64_t step = reduced.ndim == 0 ? 0 : reduced.stride[0];
    for (int64_t r = 0; r < n_reduced; ++r) acc += static_cast<double>(base[r * step]);
  } else {
    for (int64_t r = 0; r < n_reduced; ++r)
      acc += static_cast<double>(base[strided_offset(r, reduced)]);
  }
  return static_cast<T>(acc);
}

}  // namespace prm
