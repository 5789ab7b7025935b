// CPU bodies of the per-channel reductions of kernels/batch_norm.h, and the registration of all
// its kernels.
#include <algorithm>

#include "kernels/batch_norm.h"
#include "kernels/cpu/loop.h"
#include "kernels/register.h"

namespace prm {

namespace {

constexpr int64_t kBlock = 256;
// The sweeps' first pass over a channel reads its planes from memory: each block asks for the
// lines kAhead values on (a prefetch past a plane's end is harmless), which the hardware's own
// prefetchers, stopping at each 4 KiB page, did not keep ahead of (training step -2.5 %).
constexpr int64_t kAhead = 4 * kBlock;

// The sums below go into kLanes partial sums in double (value k into partial k % kLanes), added
// together at the end of each block: independent chains instead of one chain of dependent adds,
// which held these loops to one value per add latency once the sweep had the data in cache
// (training step 0.617 -> 0.609 s from the backward's sums alone).
constexpr int kLanes = 8;

template <typename F>
double lane_sum(int64_t len, F term) {
  double part[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + kLanes <= len; k += kLanes)
    for (int l = 0; l < kLanes; ++l) part[l] += term(k + l);
  for (int l = 0; k < len; ++k, ++l) part[l] += term(k);
  double sum = 0;
  for (int l = 0; l < kLanes; ++l) sum += part[l];
  return sum;
}

// The exact two-pass moments of v[0..count): the mean, then the squared deviations from it
// (moments_of in batch_norm_math.h, with lane sums).
template <typename T>
Moments block_moments(const T* v, int64_t count) {
  const double mean = lane_sum(count, [&](int64_t k) { return static_cast<double>(v[k]); }) /
                      static_cast<double>(count);
  const double m2 = lane_sum(count, [&](int64_t k) {
    const double d = v[k] - mean;
    return d * d;
  });
  return {static_cast<double>(count), mean, m2};
}

// Channel c's moments in one pass: each run of up to kBlock values of a plane gets its exact
// two-pass moments while it sits in L1, and the runs merge (Moments): as stable as two passes
// over the channel, with x read from memory once.
template <typename T>
Moments channel_moments(const T* inp, int64_t c, int64_t N, int64_t C, int64_t HW) {
  Moments m{0, 0, 0};
  for (int64_t n = 0; n < N; ++n) {
    const T* plane = inp + (n * C + c) * HW;
    for (int64_t j = 0; j < HW; j += kBlock) {
      for (int64_t k = 0; k < kBlock; k += 64 / static_cast<int64_t>(sizeof(T)))
        __builtin_prefetch(plane + j + kAhead + k);
      m = moments_merge(m, block_moments(plane + j, std::min(kBlock, HW - j)));
    }
  }
  return m;
}

// Channel c's two backward sums: per plane, runs of up to kBlock values, the ReLU gate first,
// into a small buffer (a branch-free select the compiler vectorises; a branch per element
// mispredicts on a ReLU mask), then the two sums in double, each a lane sum per run.
template <typename T>
void channel_backward_sums(T* sum_dout, T* sum_dout_xhat, const T* dout, const T* relu_out,
                           const T* inp, const T* mean, const T* invstd, int64_t c, int64_t N,
                           int64_t C, int64_t HW) {
  double sum_dy = 0, sum_dy_xhat = 0;
  const double m = mean[c], s = invstd[c];
  T gated[kBlock];
  for (int64_t n = 0; n < N; ++n) {
    const int64_t base = (n * C + c) * HW;
    for (int64_t j0 = 0; j0 < HW; j0 += kBlock) {
      const int64_t len = std::min(kBlock, HW - j0);
      const T *g = dout + base + j0, *x = inp + base + j0, *d = g;
      for (int64_t k = 0; k < kBlock; k += 64 / static_cast<int64_t>(sizeof(T))) {
        __builtin_prefetch(g + kAhead + k);
        __builtin_prefetch(x + kAhead + k);
        if (relu_out != nullptr) __builtin_prefetch(relu_out + base + j0 + kAhead + k);
      }
      if (relu_out != nullptr) {
        const T* r = relu_out + base + j0;
        for (int64_t k = 0; k < len; ++k) gated[k] = relu_grad(g[k], r[k]);
        d = gated;
      }
      sum_dy += lane_sum(len, [&](int64_t k) { return static_cast<double>(d[k]); });
      sum_dy_xhat += lane_sum(len, [&](int64_t k) { return d[k] * ((x[k] - m) * s); });
    }
  }
  sum_dout[c] = static_cast<T>(sum_dy);
  sum_dout_xhat[c] = static_cast<T>(sum_dy_xhat);
}

}  // namespace

template <>
template <typename T>
void BatchNormStats<CpuLoop>::run(T* mean, T* var, const T* inp, int64_t N, int64_t C,
                                  int64_t HW) {
#pragma omp parallel for schedule(static) if (N * C * HW > 32768)
  for (int64_t c = 0; c < C; ++c) {
    const Moments m = channel_moments(inp, c, N, C, HW);
    mean[c] = static_cast<T>(m.mean);
    var[c] = static_cast<T>(m.m2 / m.n);
  }
}

template <>
template <typename T>
void BatchNormBackwardReduce<CpuLoop>::run(T* sum_dout, T* sum_dout_xhat, const T* dout,
                                           const T* relu_out, const T* inp, const T* mean,
                                           const T* invstd, int64_t N, int64_t C, int64_t HW) {
#pragma omp parallel for schedule(static) if (N * C * HW > 32768)
  for (int64_t c = 0; c < C; ++c)
    channel_backward_sums(sum_dout, sum_dout_xhat, dout, relu_out, inp, mean, invstd, c, N, C,
                          HW);
}

namespace cpu {

template <typename T>
void batch_norm_train_forward(T* out, T* mean, T* var, T* invstd, T* running_mean,
                              T* running_var, const T* inp, const T* weight, const T* bias,
                              const T* residual, bool relu, int64_t N, int64_t C, int64_t HW,
                              double momentum, double eps) {
#pragma omp parallel for schedule(static) if (N * C * HW > 32768)
  for (int64_t c = 0; c < C; ++c) {
    const Moments m = channel_moments(inp, c, N, C, HW);
    mean[c] = static_cast<T>(m.mean);
    var[c] = static_cast<T>(m.m2 / m.n);
    batch_norm_finalize_one(c, invstd, running_mean, running_var, mean, var, N * HW, momentum,
                            eps);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t base = (n * C + c) * HW;
      batch_norm_apply_run(out, inp, mean, invstd, weight, bias, residual, relu, c, base,
                           base + HW);
    }
  }
}

template <typename T>
void batch_norm_train_backward(T* dinp, T* dres, T* sum_dout, T* sum_dout_xhat, const T* dout,
                               const T* relu_out, const T* inp, const T* mean, const T* invstd,
                               const T* weight, int64_t N, int64_t C, int64_t HW) {
#pragma omp parallel for schedule(static) if (N * C * HW > 32768)
  for (int64_t c = 0; c < C; ++c) {
    channel_backward_sums(sum_dout, sum_dout_xhat, dout, relu_out, inp, mean, invstd, c, N, C,
                          HW);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t base = (n * C + c) * HW;
      batch_norm_backward_input_run(dinp, dres, dout, relu_out, inp, mean, invstd, weight,
                                    sum_dout, sum_dout_xhat, true, N * HW, c, base, base + HW);
    }
  }
}

template void batch_norm_train_forward<float>(float*, float*, float*, float*, float*, float*,
                                              const float*, const float*, const float*,
                                              const float*, bool, int64_t, int64_t, int64_t,
                                              double, double);
template void batch_norm_train_forward<double>(double*, double*, double*, double*, double*,
                                               double*, const double*, const double*,
                                               const double*, const double*, bool, int64_t,
                                               int64_t, int64_t, double, double);
template void batch_norm_train_backward<float>(float*, float*, float*, float*, const float*,
                                               const float*, const float*, const float*,
                                               const float*, const float*, int64_t, int64_t,
                                               int64_t);
template void batch_norm_train_backward<double>(double*, double*, double*, double*,
                                                const double*, const double*, const double*,
                                                const double*, const double*, const double*,
                                                int64_t, int64_t, int64_t);

}  // namespace cpu

}  // namespace prm

PRM_REGISTER_KERNELS(CpuLoop, BatchNormStats, BatchNormBackwardReduce, BatchNormFinalize,
                     BatchNormApply, BatchNormBackwardInput)
