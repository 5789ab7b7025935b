// Shared by the CPU and CUDA twins: the host/device qualifier for per-element math, and the
// sizes and strides a kernel receives by value. (Which twin runs is kernels/dispatch.h's job.)
#pragma once
#include <cstdint>

#include "tensor/error.h"

#if defined(__CUDACC__)
#define PRM_HD __host__ __device__ inline
#else
#define PRM_HD inline
#endif

namespace prm {

// Largest rank a strided per-element kernel handles (broadcasting, reductions).
constexpr int kMaxDims = 8;

// Sizes and strides passed by value to kernels, so a CUDA launch can capture them.
struct Strides {
  int ndim = 0;
  int64_t size[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};
};

}  // namespace prm
