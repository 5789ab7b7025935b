// Per-output-element math of the sum-over-dims reduction, shared by cpu/reduce.cpp and
// cuda/reduce.cu. Sums accumulate in double whatever T is, so float32 sums over many elements
// keep their precision and the CPU and CUDA twins add in the same order.
#pragma once
#include <cstdint>

#include "kernels/common.h"
#include "kernels/elementwise_math.h"

namespace prm {

// Sum of p[0], p[step], ..., p[(n-1) step] in double. Eight independent accumulators (lane j
// takes k = j mod 8) break the dependency chain of the additions, in a fixed, deterministic
// order; a contiguous run (step 1) is its own loop so that a CPU compiler vectorises it.
template <typename T>
PRM_HD double sum_run(const T* p, int64_t n, int64_t step) {
  constexpr int kLanes = 8;
  double acc[kLanes] = {};
  int64_t k = 0;
  if (step == 1) {
    for (; k + kLanes <= n; k += kLanes)
      for (int j = 0; j < kLanes; ++j) acc[j] += static_cast<double>(p[k + j]);
  } else {
    for (; k + kLanes <= n; k += kLanes)
      for (int j = 0; j < kLanes; ++j) acc[j] += static_cast<double>(p[(k + j) * step]);
  }
  for (; k < n; ++k) acc[0] += static_cast<double>(p[k * step]);
  double total = 0.0;
  for (int j = 0; j < kLanes; ++j) total += acc[j];
  return total;
}

// out[o] = sum over r < n_reduced of inp[off(o, kept) + off(r, reduced)], walked as runs along
// the innermost reduced dim so the index math is done once per run.
template <typename T>
PRM_HD T sum_at(int64_t o, const T* inp, const Strides& kept, const Strides& reduced,
                int64_t n_reduced) {
  const T* base = inp + strided_offset(o, kept);
  if (reduced.ndim == 0) return base[0];  // only size-1 dims were summed
  const int64_t inner = reduced.size[reduced.ndim - 1];
  const int64_t step = reduced.stride[reduced.ndim - 1];
  double acc = 0.0;
  for (int64_t r = 0; r < n_reduced; r += inner)
    acc += sum_run(base + strided_offset(r, reduced), inner, step);
  return static_cast<T>(acc);
}

}  // namespace prm
