// Per-element batch-norm math shared by the CPU and CUDA twins (see batch_norm.h for the
// formulas). Layout [N, C, HW]: element i belongs to channel (i / HW) % C.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.h"
#include "kernels/elementwise_math.h"

namespace prm {

PRM_HD int64_t batch_norm_channel(int64_t i, int64_t C, int64_t HW) { return (i / HW) % C; }

// Running moments of a set of values: count, mean and M2 = sum (x - mean)^2, in double. Two sets
// merge exactly (Chan, Golub and LeVeque's pairwise update, which Welford's one-value update is
// the case n_b = 1 of):
//   delta = mean_b - mean_a,  n = n_a + n_b
//   mean  = mean_a + delta * n_b / n,   M2 = M2_a + M2_b + delta^2 * n_a * n_b / n
// No sum of squares is ever formed, so a large mean next to a small spread loses nothing to
// cancellation (E[x^2] - mean^2 would). The statistics kernels read x once: each small block of
// values gets its exact two-pass moments from registers or L1 (moments_of), and the blocks merge.
struct Moments {  // a plain aggregate (CUDA shared memory holds arrays of it): start at {0, 0, 0}
  double n, mean, m2;
};

PRM_HD Moments moments_merge(Moments a, Moments b) {
  const double n = a.n + b.n;
  if (n == 0) return a;
  const double delta = b.mean - a.mean, wb = b.n / n;
  return {n, a.mean + delta * wb, a.m2 + b.m2 + delta * delta * a.n * wb};
}

// The exact moments of v[0..count) (count > 0): the block's mean, then its squared deviations.
template <typename T>
PRM_HD Moments moments_of(const T* v, int count) {
  double sum = 0;
  for (int k = 0; k < count; ++k) sum += v[k];
  const double mean = sum / count;
  double m2 = 0;
  for (int k = 0; k < count; ++k) m2 += (v[k] - mean) * (v[k] - mean);
  return {static_cast<double>(count), mean, m2};
}

// Channel c: invstd from the variance; the running buffers move towards the batch statistics
// when they are given (training), with the unbiased variance as torch uses.
template <typename T>
PRM_HD void batch_norm_finalize_one(int64_t c, T* invstd, T* running_mean, T* running_var,
                                    const T* mean, const T* var, int64_t M, double momentum,
                                    double eps) {
  invstd[c] = static_cast<T>(1.0 / sqrt(static_cast<double>(var[c]) + eps));
  if (running_mean != nullptr) {
    const double unbiased = static_cast<double>(var[c]) * M / (M - 1);
    running_mean[c] = static_cast<T>((1 - momentum) * running_mean[c] + momentum * mean[c]);
    running_var[c] = static_cast<T>((1 - momentum) * running_var[c] + momentum * unbiased);
  }
}

// out[i] = xhat * weight + bias, xhat = (x - mean) * invstd.
template <typename T>
PRM_HD T batch_norm_apply_one(T x, T mean, T invstd, const T* weight, const T* bias, int64_t c) {
  const T xhat = (x - mean) * invstd;
  const T scaled = weight != nullptr ? xhat * weight[c] : xhat;
  return bias != nullptr ? scaled + bias[c] : scaled;
}

// The fused epilogue of BatchNormApply: out = relu(bn + residual[i]), each step optional
// (residual null: no add; relu false: no ReLU). The same roundings as bn, then add, then relu
// as three ops, so the fused and unfused networks compute the same numbers.
template <typename T>
PRM_HD T batch_norm_epilogue_one(T bn, const T* residual, bool relu, int64_t i) {
  const T z = residual != nullptr ? bn + residual[i] : bn;
  return relu ? unary_apply(UnaryOp::relu, z, T(0)) : z;
}

// The gradient reaching the batch norm (and the residual) from the epilogue: dout gated by the
// ReLU, read off its saved output (relu_out > 0 exactly when its input was > 0; NaN and -0 give
// 0 both ways). relu_out null: no ReLU, dout itself.
template <typename T>
PRM_HD T batch_norm_gated_grad(T dout, const T* relu_out, int64_t i) {
  return relu_out != nullptr ? relu_grad(dout, relu_out[i]) : dout;
}

// dinp[i]; in training the batch statistics depend on every x of the channel, which gives the
// two correction terms (docs/batch_norm.md walks through them).
template <typename T>
PRM_HD T batch_norm_backward_input_one(T dout, T x, T mean, T invstd, const T* weight, T sum_dout,
                                       T sum_dout_xhat, bool training, int64_t M, int64_t c) {
  const T scale = weight != nullptr ? weight[c] * invstd : invstd;
  if (!training) return scale * dout;
  const T xhat = (x - mean) * invstd;
  const T inv_m = T(1) / static_cast<T>(M);
  return scale * (dout - sum_dout * inv_m - xhat * sum_dout_xhat * inv_m);
}

}  // namespace prm
