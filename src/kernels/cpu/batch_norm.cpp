#include "kernels/batch_norm.h"

#include "kernels/batch_norm_math.h"
#include "kernels/cpu/parallel.h"

namespace prm::cpu {

namespace {

// Calls f(value_index) for the M = N * HW elements of channel c, in memory order.
template <typename F>
void for_channel(int64_t c, int64_t N, int64_t C, int64_t HW, F f) {
  for (int64_t n = 0; n < N; ++n) {
    const int64_t base = (n * C + c) * HW;
    for (int64_t j = 0; j < HW; ++j) f(base + j);
  }
}

}  // namespace

// Two passes per channel (mean, then squared deviations) with double accumulators: stable
// for large M, and the same sums the CUDA reduction forms.
template <typename T>
void batch_norm_stats(T* mean, T* var, const T* inp, int64_t N, int64_t C, int64_t HW) {
  const int64_t M = N * HW;
#pragma omp parallel for schedule(static) if (N * C * HW > 32768)
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0;
    for_channel(c, N, C, HW, [&](int64_t i) { sum += inp[i]; });
    const double m = sum / M;
    double sq = 0;
    for_channel(c, N, C, HW, [&](int64_t i) { sq += (inp[i] - m) * (inp[i] - m); });
    mean[c] = static_cast<T>(m);
    var[c] = static_cast<T>(sq / M);
  }
}

template <typename T>
void batch_norm_finalize(T* invstd, T* running_mean, T* running_var, const T* mean, const T* var,
                         int64_t C, int64_t M, double momentum, double eps) {
  parallel_for(C, [=](int64_t c) {
    batch_norm_finalize_one(c, invstd, running_mean, running_var, mean, var, M, momentum, eps);
  });
}

// The per-element loops walk one (n, c) plane at a time, so the channel is known without a
// division per element and the inner loop vectorises; the math is the shared per-element one.
template <typename F>
void for_each_plane(int64_t N, int64_t C, int64_t HW, F f) {
#pragma omp parallel for schedule(static) if (N * C * HW > 32768)
  for (int64_t plane = 0; plane < N * C; ++plane) f(plane % C, plane * HW);
}

template <typename T>
void batch_norm_apply(T* out, const T* inp, const T* mean, const T* invstd, const T* weight,
                      const T* bias, int64_t N, int64_t C, int64_t HW) {
  for_each_plane(N, C, HW, [=](int64_t c, int64_t base) {
    for (int64_t i = base; i < base + HW; ++i)
      out[i] = batch_norm_apply_one(inp[i], mean[c], invstd[c], weight, bias, c);
  });
}

template <typename T>
void batch_norm_backward_reduce(T* sum_dout, T* sum_dout_xhat, const T* dout, const T* inp,
                                const T* mean, const T* invstd, int64_t N, int64_t C, int64_t HW) {
#pragma omp parallel for schedule(static) if (N * C * HW > 32768)
  for (int64_t c = 0; c < C; ++c) {
    double sum_dy = 0, sum_dy_xhat = 0;
    const double m = mean[c], s = invstd[c];
    for_channel(c, N, C, HW, [&](int64_t i) {
      sum_dy += dout[i];
      sum_dy_xhat += dout[i] * ((inp[i] - m) * s);
    });
    sum_dout[c] = static_cast<T>(sum_dy);
    sum_dout_xhat[c] = static_cast<T>(sum_dy_xhat);
  }
}

template <typename T>
void batch_norm_backward_input(T* dinp, const T* dout, const T* inp, const T* mean, const T* invstd,
                               const T* weight, const T* sum_dout, const T* sum_dout_xhat,
                               bool training, int64_t N, int64_t C, int64_t HW) {
  const int64_t M = N * HW;
  for_each_plane(N, C, HW, [=](int64_t c, int64_t base) {
    for (int64_t i = base; i < base + HW; ++i)
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

}  // namespace prm::cpu
