// Shared by the CPU and CUDA twins: the host/device qualifier for per-element math, and the
// macro that routes a call to the CUDA twin (or fails clearly in a CPU-only build).
#pragma once
#include <cstdint>

#include "tensor/error.h"

#if defined(__CUDACC__)
#define PRM_HD __host__ __device__ inline
#else
#define PRM_HD inline
#endif

#if PRM_USE_CUDA
#define PRM_CUDA_ONLY(...) __VA_ARGS__
#else
#define PRM_CUDA_ONLY(...) ::prm::throw_no_cuda(__FILE__, __LINE__)
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
