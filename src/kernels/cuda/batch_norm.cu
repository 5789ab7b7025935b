#include "kernels/batch_norm.h"
#include "kernels/batch_norm_math.h"
#include "kernels/cuda/launch.cuh"

namespace prm::cuda {

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
__global__ void backward_reduce_kernel(T* sum_dout, T* sum_dout_xhat, const T* dout, const T* inp,
                                       const T* mean, const T* invstd, int64_t N, int64_t C,
                                       int64_t HW) {
  __shared__ double shared[kReduceThreads];
  const int64_t c = blockIdx.x, M = N * HW;
  const double m = mean[c], s = invstd[c];
  double sum_dy = 0, sum_dy_xhat = 0;
  ChannelCursor at(c, C, HW);
  for (int64_t j = threadIdx.x; j < M; j += blockDim.x, at.advance()) {
    const int64_t i = at.index();
    sum_dy += dout[i];
    sum_dy_xhat += dout[i] * ((inp[i] - m) * s);
  }
  sum_dy = block_sum(sum_dy, shared);
  sum_dy_xhat = block_sum(sum_dy_xhat, shared);
  if (threadIdx.x == 0) {
    sum_dout[c] = static_cast<T>(sum_dy);
    sum_dout_xhat[c] = static_cast<T>(sum_dy_xhat);
  }
}

}  // namespace

template <typename T>
void batch_norm_stats(T* mean, T* var, const T* inp, int64_t N, int64_t C, int64_t HW) {
  if (C == 0) return;
  stats_kernel<<<static_cast<unsigned>(C), kReduceThreads>>>(mean, var, inp, N, C, HW);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void batch_norm_finalize(T* invstd, T* running_mean, T* running_var, const T* mean, const T* var,
                         int64_t C, int64_t M, double momentum, double eps) {
  parallel_for(C, [=] __device__(int64_t c) {
    batch_norm_finalize_one(c, invstd, running_mean, running_var, mean, var, M, momentum, eps);
  });
}

template <typename T>
void batch_norm_apply(T* out, const T* inp, const T* mean, const T* invstd, const T* weight,
                      const T* bias, int64_t N, int64_t C, int64_t HW) {
  parallel_for(N * C * HW, [=] __device__(int64_t i) {
    const int64_t c = batch_norm_channel(i, C, HW);
    out[i] = batch_norm_apply_one(inp[i], mean[c], invstd[c], weight, bias, c);
  });
}

template <typename T>
void batch_norm_backward_reduce(T* sum_dout, T* sum_dout_xhat, const T* dout, const T* inp,
                                const T* mean, const T* invstd, int64_t N, int64_t C, int64_t HW) {
  if (C == 0) return;
  backward_reduce_kernel<<<static_cast<unsigned>(C), kReduceThreads>>>(
      sum_dout, sum_dout_xhat, dout, inp, mean, invstd, N, C, HW);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void batch_norm_backward_input(T* dinp, const T* dout, const T* inp, const T* mean, const T* invstd,
                               const T* weight, const T* sum_dout, const T* sum_dout_xhat,
                               bool training, int64_t N, int64_t C, int64_t HW) {
  const int64_t M = N * HW;
  parallel_for(N * C * HW, [=] __device__(int64_t i) {
    const int64_t c = batch_norm_channel(i, C, HW);
    dinp[i] = batch_norm_backward_input_one(dout[i], inp[i], mean[c], invstd[c], weight,
                                            sum_dout[c], sum_dout_xhat[c], training, M, c);
  });
}

#define PRM_INSTANTIATE_BATCH_NORM(T)                                                              \
  template void batch_norm_stats<T>(T*, T*, const T*, int64_t, int64_t, int64_t);                  \
  template void batch_norm_finalize<T>(T*, T*, T*, const T*, const T*, int64_t, int64_t, double,   \
                                       double);                                                    \
  template void batch_norm_apply<T>(T*, const T*, const T*, const T*, const T*, const T*, int64_t, \
                                    int64_t, int64_t);                                             \
  template void batch_norm_backward_reduce<T>(T*, T*, const T*, const T*, const T*, const T*,      \
                                              int64_t, int64_t, int64_t);                          \
  template void batch_norm_backward_input<T>(T*, const T*, const T*, const T*, const T*, const T*, \
                                             const T*, const T*, bool, int64_t, int64_t, int64_t);
PRM_INSTANTIATE_BATCH_NORM(float)
PRM_INSTANTIATE_BATCH_NORM(double)

}  // namespace prm::cuda
