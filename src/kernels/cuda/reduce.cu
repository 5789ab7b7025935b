// CUDA kernels of kernels/reduce.h: SumAll's own GPU algorithm (a block tree) and the
// registration of the rest.
#include "kernels/cuda/loop.cuh"
#include "kernels/reduce.h"
#include "kernels/register.h"
#include "tensor/allocator.h"

namespace prm {

namespace {

constexpr int kThreads = 256;  // a power of two: the tree halves it
constexpr int kMaxBlocks = 1024;

// Tree reduction of one value per thread in shared memory; thread 0 returns the block's sum.
__device__ double block_sum(double value) {
  __shared__ double shared[kThreads];
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  return shared[0];
}

// Pass 1: each block sums a grid-stride share of inp into partial[blockIdx.x].
template <typename T>
__global__ void sum_partials_kernel(double* partial, const T* inp, int64_t n) {
  double acc = 0.0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x; i < n;
       i += static_cast<int64_t>(kThreads) * gridDim.x)
    acc += static_cast<double>(inp[i]);
  const double total = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// Pass 2: one block sums the partials into out[0].
template <typename T>
__global__ void sum_final_kernel(T* out, const double* partial, int n_partial) {
  double acc = 0.0;
  for (int i = threadIdx.x; i < n_partial; i += kThreads) acc += partial[i];
  const double total = block_sum(acc);
  if (threadIdx.x == 0) out[0] = static_cast<T>(total);
}

}  // namespace

template <>
template <typename T>
void SumAll<CudaLoop>::run(T* out, const T* inp, int64_t n) {
  const int blocks = static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks)));
  // Scratch from the caching allocator; freeing it right after the launches is safe because
  // everything runs in order on the default stream.
  const size_t bytes = blocks * sizeof(double);
  double* partial = static_cast<double*>(device_alloc(Device::cuda, bytes));
  sum_partials_kernel<<<blocks, kThreads>>>(partial, inp, n);
  CUDA_LAUNCH_CHECK();
  sum_final_kernel<<<1, kThreads>>>(out, partial, blocks);
  CUDA_LAUNCH_CHECK();
  device_free(Device::cuda, partial, bytes);
}

}  // namespace prm

PRM_REGISTER_KERNELS(CudaLoop, SumAll, SumDims)
