// CUDA bodies of the per-channel reductions of kernels/batch_norm.h (one block per channel), and
// the registration of all its kernels.
#include "kernels/batch_norm.h"
#include "kernels/cuda/loop.cuh"
#include "kernels/register.h"

namespace prm {

namespace {

// One block per channel reduces its M = N * HW values; a power of two for the tree below.
constexpr int kReduceThreads = 512;

// Walks this thread's elements j = threadIdx.x, + blockDim.x, ... (j < M) of channel c in the
// [N, C, HW] layout, where element j is (n, hw) = (j / HW, j % HW). The position advances by a
// precomputed step instead of dividing per element (a 64-bit divide is dozens of instructions).
struct ChannelCursor {
  int64_t n, hw, step_n, step_hw, C, HW, c;
  __device__ ChannelCursor(int64_t c_, int64_t C_, int64_t HW_)
      : n(threadIdx.x / HW_),
        hw(threadIdx.x % HW_),
        step_n(blockDim.x / HW_),
        step_hw(blockDim.x % HW_),
        C(C_),
        HW(HW_),
        c(c_) {}
  __device__ int64_t index() const { return (n * C + c) * HW + hw; }
  __device__ void advance() {
    n += step_n;
    hw += step_hw;
    if (hw >= HW) {
      hw -= HW;
      ++n;
    }
  }
};

// The sum of `value` over the block (shared-memory tree); every thread gets the total.
__device__ double block_sum(double value, double* shared) {
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();  // `shared` is reused by the caller's next block_sum
  return total;
}

// The merge of every thread's moments over the block (shared-memory tree); every thread gets it.
__device__ Moments block_moments(Moments m, Moments* shared) {
  shared[threadIdx.x] = m;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride)
      shared[threadIdx.x] = moments_merge(shared[threadIdx.x], shared[threadIdx.x + stride]);
    __syncthreads();
  }
  return shared[0];
}

// One pass over x, as the CPU twin: each thread takes its values kChunk at a time into
// registers, gives each chunk its exact two-pass moments and merges them (Moments), then the
// threads' moments merge over the block.
template <typename T>
__global__ void stats_kernel(T* mean, T* var, const T* inp, int64_t N, int64_t C, int64_t HW) {
  constexpr int kChunk = 8;
  __shared__ Moments shared[kReduceThreads];
  const int64_t c = blockIdx.x, M = N * HW;
  Moments acc{0, 0, 0};
  T chunk[kChunk];
  int count = 0;
  ChannelCursor at(c, C, HW);
  for (int64_t j = threadIdx.x; j < M; j += blockDim.x, at.advance()) {
    chunk[count++] = inp[at.index()];
    if (count == kChunk) {
      acc = moments_merge(acc, moments_of(chunk, kChunk));
      count = 0;
    }
  }
  if (count > 0) acc = moments_merge(acc, moments_of(chunk, count));
  const Moments total = block_moments(acc, shared);
  if (threadIdx.x == 0) {
    mean[c] = static_cast<T>(total.mean);
    var[c] = static_cast<T>(total.m2 / total.n);
  }
}

template <typename T>
__global__ void backward_reduce_kernel(T* sum_dout, T* sum_dout_xhat, const T* dout,
                                       const T* relu_out, const T* inp, const T* mean,
                                       const T* invstd, int64_t N, int64_t C, int64_t HW) {
  __shared__ double shared[kReduceThreads];
  const int64_t c = blockIdx.x, M = N * HW;
  const double m = mean[c], s = invstd[c];
  double sum_dy = 0, sum_dy_xhat = 0;
  ChannelCursor at(c, C, HW);
  for (int64_t j = threadIdx.x; j < M; j += blockDim.x, at.advance()) {
    const int64_t i = at.index();
    const T d = batch_norm_gated_grad(dout[i], relu_out, i);
    sum_dy += d;
    sum_dy_xhat += d * ((inp[i] - m) * s);
  }
  sum_dy = block_sum(sum_dy, shared);
  sum_dy_xhat = block_sum(sum_dy_xhat, shared);
  if (threadIdx.x == 0) {
    sum_dout[c] = static_cast<T>(sum_dy);
    sum_dout_xhat[c] = static_cast<T>(sum_dy_xhat);
  }
}

}  // namespace

template <>
template <typename T>
void BatchNormStats<CudaLoop>::run(T* mean, T* var, const T* inp, int64_t N, int64_t C,
                                   int64_t HW) {
  if (C == 0) return;
  stats_kernel<<<static_cast<unsigned>(C), kReduceThreads>>>(mean, var, inp, N, C, HW);
  CUDA_LAUNCH_CHECK();
}

template <>
template <typename T>
void BatchNormBackwardReduce<CudaLoop>::run(T* sum_dout, T* sum_dout_xhat, const T* dout,
                                            const T* relu_out, const T* inp, const T* mean,
                                            const T* invstd, int64_t N, int64_t C, int64_t HW) {
  if (C == 0) return;
  backward_reduce_kernel<<<static_cast<unsigned>(C), kReduceThreads>>>(
      sum_dout, sum_dout_xhat, dout, relu_out, inp, mean, invstd, N, C, HW);
  CUDA_LAUNCH_CHECK();
}

}  // namespace prm

PRM_REGISTER_KERNELS(CudaLoop, BatchNormStats, BatchNormBackwardReduce, BatchNormFinalize,
                     BatchNormApply, BatchNormBackwardInput)
