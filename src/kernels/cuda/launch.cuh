// CUDA twin of cpu::parallel_for: a grid-stride loop calling f(i) for every i in [0, n).
// f is a __device__ lambda (nvcc --extended-lambda) capturing pointers and sizes by value.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/check.h"

namespace prm::cuda {

template <typename F>
__global__ void grid_stride_kernel(int64_t n, F f) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    f(i);
}

template <typename F>
void parallel_for(int64_t n, F f) {
  if (n <= 0) return;
  constexpr int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65536);
  grid_stride_kernel<<<static_cast<unsigned>(blocks), threads>>>(n, f);
  CUDA_LAUNCH_CHECK();
}

}  // namespace prm::cuda
