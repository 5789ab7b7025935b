// The CUDA loop policy of kernels/dispatch.h: a grid-stride loop over a __device__ lambda
// (nvcc --extended-lambda) capturing pointers and sizes by value.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/check.h"
#include "kernels/dispatch.h"

namespace prm {

template <typename F>
__global__ void grid_stride_kernel(int64_t n, F f) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    f(i);
}

struct CudaLoop {
  // f(i) for every i in [0, n), one thread per index; `cost` only matters on the CPU.
  template <typename F>
  static void for_each(int64_t n, F f, int64_t /*cost*/ = 1) {
    if (n <= 0) return;
    constexpr int threads = 256;
    const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65536);
    grid_stride_kernel<<<static_cast<unsigned>(blocks), threads>>>(n, f);
    CUDA_LAUNCH_CHECK();
  }

  // f(row, begin, end) covering rows x [0, len): here one element per thread (end = begin + 1),
  // so adjacent threads touch adjacent elements of a row and their accesses coalesce.
  template <typename F>
  static void for_each_run(int64_t rows, int64_t len, F f) {
    if (len <= 0) return;
    for_each(rows * len, [=] __device__(int64_t i) { f(i / len, i % len, i % len + 1); });
  }
};

}  // namespace prm
