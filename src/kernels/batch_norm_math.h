// Per-element batch-norm math shared by the CPU and CUDA twins (see batch_norm.h for the
// formulas). Layout [N, C, HW]: element i belongs to channel (i / HW) % C.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.h"

namespace prm {

PRM_HD int64_t batch_norm_channel(int64_t i, int64_t C, int64_t HW) { return (i / HW) % C; }

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
