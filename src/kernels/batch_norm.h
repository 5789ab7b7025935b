// Batch normalisation kernels over [N, C, HW] (HW = 1 for [N, C] input); M = N * HW values per
// channel (kernels/dispatch.h), registered in cpu/batch_norm.cpp and cuda/batch_norm.cu.
//
//   BatchNormStats:       mean[c] = sum x / M, var[c] = sum (x - mean)^2 / M (biased)  (overwrites)
//   BatchNormFinalize:    invstd[c] = 1 / sqrt(var[c] + eps); when running_mean is non-null also
//                         running = (1 - momentum) * running + momentum * batch, with the batch
//                         variance made unbiased (* M / (M - 1)) as torch does
//                         (overwrites invstd, updates the running buffers in place)
//   BatchNormApply:       out = (x - mean[c]) * invstd[c] * weight[c] + bias[c]     (overwrites)
//                         weight / bias may be null (affine off: 1 and 0)
//   BatchNormBackwardReduce:     sum_dout[c] = sum dout, sum_dout_xhat[c] = sum dout * xhat
//                         with xhat = (x - mean[c]) * invstd[c]                     (overwrites)
//                         These are exactly dbias and dweight.
//   BatchNormBackwardInput:      dinp (overwrites; an activation gradient)
//                         training: dinp = weight * invstd * (dout - sum_dout / M
//                                                             - xhat * sum_dout_xhat / M)
//                         where M is the number of values the sums were taken over (N * HW,
//                         or the group's with synchronised batch norm)
//                         eval:     dinp = weight * invstd * dout    (statistics are constants)
//
// The statistics and the backward reductions are per-channel sums with a body per device: a plain
// loop on the CPU, a shared-memory block reduction per channel on CUDA. The per-element steps are
// written once over the PRM_HD functions of batch_norm_math.h, by (n, c) planes, so the channel
// is known without a division per element on the CPU.
#pragma once
#include <cstdint>

#include "kernels/batch_norm_math.h"
#include "kernels/dispatch.h"

namespace prm {

template <class Loop>
struct BatchNormStats {  // one body per device
  template <typename T>
  static void run(T* mean, T* var, const T* inp, int64_t N, int64_t C, int64_t HW);
};

template <class Loop>
struct BatchNormBackwardReduce {  // one body per device
  template <typename T>
  static void run(T* sum_dout, T* sum_dout_xhat, const T* dout, const T* inp, const T* mean,
                  const T* invstd, int64_t N, int64_t C, int64_t HW);
};

template <class Loop>
struct BatchNormFinalize {
  template <typename T>
  static void run(T* invstd, T* running_mean, T* running_var, const T* mean, const T* var,
                  int64_t C, int64_t M, double momentum, double eps) {
    Loop::for_each(C, PRM_LAMBDA(int64_t c) {
      batch_norm_finalize_one(c, invstd, running_mean, running_var, mean, var, M, momentum, eps);
    });
  }
};

template <class Loop>
struct BatchNormApply {
  template <typename T>
  static void run(T* out, const T* inp, const T* mean, const T* invstd, const T* weight,
                  const T* bias, int64_t N, int64_t C, int64_t HW) {
    Loop::for_each_run(N * C, HW, PRM_LAMBDA(int64_t plane, int64_t begin, int64_t end) {
      const int64_t c = plane % C, base = plane * HW;
      for (int64_t i = base + begin; i < base + end; ++i)
        out[i] = batch_norm_apply_one(inp[i], mean[c], invstd[c], weight, bias, c);
    });
  }
};

template <class Loop>
struct BatchNormBackwardInput {
  template <typename T>
  static void run(T* dinp, const T* dout, const T* inp, const T* mean, const T* invstd,
                  const T* weight, const T* sum_dout, const T* sum_dout_xhat, bool training,
                  int64_t N, int64_t C, int64_t HW, int64_t M) {
    Loop::for_each_run(N * C, HW, PRM_LAMBDA(int64_t plane, int64_t begin, int64_t end) {
      const int64_t c = plane % C, base = plane * HW;
      for (int64_t i = base + begin; i < base + end; ++i)
        dinp[i] = batch_norm_backward_input_one(dout[i], inp[i], mean[c], invstd[c], weight,
                                                sum_dout[c], sum_dout_xhat[c], training, M, c);
    });
  }
};

}  // namespace prm
