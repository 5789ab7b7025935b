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

// Same two passes as the CPU twin: mean, then squared deviations, in double.
template <typename T>
__global__ void stats_kernel(T* mean, T* var, const T* inp, int64_t N, int64_t C, int64_t HW) {
  __shared__ double shared[kReduceThreads];
  const int64_t c = blockIdx.x, M = N * HW;
  double sum = 0;
  ChannelCursor at(c, C, HW);
  for (int64_t j = threadIdx.x; j < M; j += blockDim.x, at.advance()) sum += inp[at.index()];
  const double m = block_sum(sum, shared) / M;
  double sq = 0;
  at = ChannelCursor(c, C, HW);
  for (int64_t j = threadIdx.x; j < M; j += blockDim.x, at.advance()) {
    const double d = inp[at.index()] - m;
    sq += d * d;
  }
  const double v = block_sum(sq, shared) / M;
  if (threadIdx.x == 0) {
    mean[c] = static_cast<T>(m);
    var[c] = static_cast<T>(v);
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
