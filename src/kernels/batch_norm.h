// Batch normalisation kernels over [N, C, HW] (HW = 1 for [N, C] input); M = N * HW values per
// channel. CPU twins in cpu/batch_norm.cpp, CUDA twins in cuda/batch_norm.cu, same signatures.
//
//   batch_norm_stats:     mean[c] = sum x / M, var[c] = sum (x - mean)^2 / M (biased)  (overwrites)
//   batch_norm_finalize:  invstd[c] = 1 / sqrt(var[c] + eps); when running_mean is non-null also
//                         running = (1 - momentum) * running + momentum * batch, with the batch
//                         variance made unbiased (* M / (M - 1)) as torch does
//                         (overwrites invstd, updates the running buffers in place)
//   batch_norm_apply:     out = (x - mean[c]) * invstd[c] * weight[c] + bias[c]     (overwrites)
//                         weight / bias may be null (affine off: 1 and 0)
//   batch_norm_backward_reduce:  sum_dout[c] = sum dout, sum_dout_xhat[c] = sum dout * xhat
//                         with xhat = (x - mean[c]) * invstd[c]                     (overwrites)
//                         These are exactly dbias and dweight.
//   batch_norm_backward_input:   dinp (overwrites; an activation gradient)
//                         training: dinp = weight * invstd * (dout - sum_dout / M
//                                                             - xhat * sum_dout_xhat / M)
//                         eval:     dinp = weight * invstd * dout    (statistics are constants)
//
// The statistics and the backward reductions are per-channel sums: a plain loop on the CPU, a
// shared-memory block reduction per channel on CUDA. The per-element steps share the PRM_HD
// functions of batch_norm_math.h.
#pragma once
#include <cstdint>

namespace prm::cpu {
template <typename T>
void batch_norm_stats(T* mean, T* var, const T* inp, int64_t N, int64_t C, int64_t HW);
template <typename T>
void batch_norm_finalize(T* invstd, T* running_mean, T* running_var, const T* mean, const T* var,
                         int64_t C, int64_t M, double momentum, double eps);
template <typename T>
void batch_norm_apply(T* out, const T* inp, const T* mean, const T* invstd, const T* weight,
                      const T* bias, int64_t N, int64_t C, int64_t HW);
template <typename T>
void batch_norm_backward_reduce(T* sum_dout, T* sum_dout_xhat, const T* dout, const T* inp,
                                const T* mean, const T* invstd, int64_t N, int64_t C, int64_t HW);
template <typename T>
void batch_norm_backward_input(T* dinp, const T* dout, const T* inp, const T* mean, const T* invstd,
                               const T* weight, const T* sum_dout, const T* sum_dout_xhat,
                               bool training, int64_t N, int64_t C, int64_t HW);
}  // namespace prm::cpu

namespace prm::cuda {
template <typename T>
void batch_norm_stats(T* mean, T* var, const T* inp, int64_t N, int64_t C, int64_t HW);
template <typename T>
void batch_norm_finalize(T* invstd, T* running_mean, T* running_var, const T* mean, const T* var,
                         int64_t C, int64_t M, double momentum, double eps);
template <typename T>
void batch_norm_apply(T* out, const T* inp, const T* mean, const T* invstd, const T* weight,
                      const T* bias, int64_t N, int64_t C, int64_t HW);
template <typename T>
void batch_norm_backward_reduce(T* sum_dout, T* sum_dout_xhat, const T* dout, const T* inp,
                                const T* mean, const T* invstd, int64_t N, int64_t C, int64_t HW);
template <typename T>
void batch_norm_backward_input(T* dinp, const T* dout, const T* inp, const T* mean, const T* invstd,
                               const T* weight, const T* sum_dout, const T* sum_dout_xhat,
                               bool training, int64_t N, int64_t C, int64_t HW);
}  // namespace prm::cuda
