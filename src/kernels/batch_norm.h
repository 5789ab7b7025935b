// Batch normalisation kernels over [N, C, HW] (HW = 1 for [N, C] input); M = N * HW values per
// channel (kernels/dispatch.h), registered in cpu/batch_norm.cpp and cuda/batch_norm.cu.
//
//   BatchNormStats:       mean[c] = sum x / M, var[c] = sum (x - mean)^2 / M (biased)  (overwrites)
//                         in one pass over x (Moments in batch_norm_math.h)
//   BatchNormFinalize:    invstd[c] = 1 / sqrt(var[c] + eps); when running_mean is non-null also
//                         running = (1 - momentum) * running + momentum * batch, with the batch
//                         variance made unbiased (* M / (M - 1)) as torch does
//                         (overwrites invstd, updates the running buffers in place)
//   BatchNormApply:       out = act((x - mean[c]) * invstd[c] * weight[c] + bias[c] + res)
//                         (overwrites); weight / bias may be null (affine off: 1 and 0); the
//                         epilogue is fused: residual null adds nothing, relu false is no ReLU
//   BatchNormBackwardReduce:     sum_dout[c] = sum d, sum_dout_xhat[c] = sum d * xhat
//                         with xhat = (x - mean[c]) * invstd[c] and d = dout gated by the ReLU
//                         epilogue (d = relu_out > 0 ? dout : 0; relu_out null: d = dout)
//                         (overwrites). These are exactly dbias and dweight.
//   BatchNormBackwardInput:      dinp (overwrites; an activation gradient), with d as above
//                         training: dinp = weight * invstd * (d - sum_dout / M
//                                                             - xhat * sum_dout_xhat / M)
//                         where M is the number of values the sums were taken over (N * HW,
//                         or the group's with synchronised batch norm)
//                         eval:     dinp = weight * invstd * d      (statistics are constants)
//                         and, when dres is non-null, dres = d (the residual's gradient) in the
//                         same pass
//
// The epilogue is what the ResNet blocks end with (relu(bn(conv(x)) + shortcut)): fused, the
// forward reads x and the residual and writes y once, instead of three passes with two
// temporaries, and the backward reads (dout, y, x) twice instead of materialising the ReLU's
// and the add's gradients (docs/batch_norm.md, "Fused epilogue").
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
  static void run(T* sum_dout, T* sum_dout_xhat, const T* dout, const T* relu_out, const T* inp,
                  const T* mean, const T* invstd, int64_t N, int64_t C, int64_t HW);
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
                  const T* bias, const T* residual, bool relu, int64_t N, int64_t C,
                  int64_t HW) {
    Loop::for_each_run(N * C, HW, PRM_LAMBDA(int64_t plane, int64_t begin, int64_t end) {
      const int64_t c = plane % C, base = plane * HW;
      for (int64_t i = base + begin; i < base + end; ++i)
        out[i] = batch_norm_epilogue_one(
            batch_norm_apply_one(inp[i], mean[c], invstd[c], weight, bias, c), residual, relu, i);
    });
  }
};

template <class Loop>
struct BatchNormBackwardInput {
  template <typename T>
  static void run(T* dinp, T* dres, const T* dout, const T* relu_out, const T* inp,
                  const T* mean, const T* invstd, const T* weight, const T* sum_dout,
                  const T* sum_dout_xhat, bool training, int64_t N, int64_t C, int64_t HW,
                  int64_t M) {
    Loop::for_each_run(N * C, HW, PRM_LAMBDA(int64_t plane, int64_t begin, int64_t end) {
      const int64_t c = plane % C, base = plane * HW;
      for (int64_t i = base + begin; i < base + end; ++i) {
        const T d = batch_norm_gated_grad(dout[i], relu_out, i);
        if (dres != nullptr) dres[i] = d;
        dinp[i] = batch_norm_backward_input_one(d, inp[i], mean[c], invstd[c], weight,
                                                sum_dout[c], sum_dout_xhat[c], training, M, c);
      }
    });
  }
};

}  // namespace prm
