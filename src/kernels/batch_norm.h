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

// BatchNormApply's and BatchNormBackwardInput's step on the elements [i0, i1) of one plane of
// channel c (shared with the CPU's one-sweep training kernels below, and the apply with the
// fused inference convolution's tiles, tensor/ops/conv2d.cpp).
// Channel c's values are read into locals first (weight[c] and bias[c] as one-element arrays
// at index 0, null where the tensor is): the same arithmetic, but the stores of the loop cannot
// change them, so the compiler keeps them in registers and vectorises the loop (read through
// the pointers, they were reloaded after every store and the loop ran scalar).
template <typename T>
PRM_HD void batch_norm_apply_run(T* out, const T* inp, const T* mean, const T* invstd,
                                 const T* weight, const T* bias, const T* residual, bool relu,
                                 int64_t c, int64_t i0, int64_t i1) {
  const T m = mean[c], s = invstd[c];
  const T w[1] = {weight != nullptr ? weight[c] : T(0)}, b[1] = {bias != nullptr ? bias[c] : T(0)};
  const T* wc = weight != nullptr ? w : nullptr;
  const T* bc = bias != nullptr ? b : nullptr;
  for (int64_t i = i0; i < i1; ++i)
    out[i] = batch_norm_epilogue_one(batch_norm_apply_one(inp[i], m, s, wc, bc, 0), residual,
                                     relu, i);
}

template <typename T>
PRM_HD void batch_norm_backward_input_run(T* dinp, T* dres, const T* dout, const T* relu_out,
                                          const T* inp, const T* mean, const T* invstd,
                                          const T* weight, const T* sum_dout,
                                          const T* sum_dout_xhat, bool training, int64_t M,
                                          int64_t c, int64_t i0, int64_t i1) {
  // Eval mode needs neither sum (they may be null or unset then: not read).
  const T m = mean[c], s = invstd[c], sd = training ? sum_dout[c] : T(0),
          sdx = training ? sum_dout_xhat[c] : T(0);
  const T w[1] = {weight != nullptr ? weight[c] : T(0)};
  const T* wc = weight != nullptr ? w : nullptr;
  for (int64_t i = i0; i < i1; ++i) {
    const T d = batch_norm_gated_grad(dout[i], relu_out, i);
    if (dres != nullptr) dres[i] = d;
    dinp[i] = batch_norm_backward_input_one(d, inp[i], m, s, wc, sd, sdx, training, M, 0);
  }
}

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
      batch_norm_apply_run(out, inp, mean, invstd, weight, bias, residual, relu, plane % C,
                           plane * HW + begin, plane * HW + end);
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
      batch_norm_backward_input_run(dinp, dres, dout, relu_out, inp, mean, invstd, weight,
                                    sum_dout, sum_dout_xhat, training, M, plane % C,
                                    plane * HW + begin, plane * HW + end);
    });
  }
};

// The CPU's training-mode batch norm, one channel at a time (each thread takes whole channels):
// the forward takes the channel's statistics, finalizes them and applies them while its planes
// are still in the core's caches; the backward takes the channel's two sums, then its dinp.
// The same per-element steps and the same per-channel sums as the kernels above in turn (so the
// same bits), with the activations read from memory once instead of twice.
namespace cpu {
template <typename T>
void batch_norm_train_forward(T* out, T* mean, T* var, T* invstd, T* running_mean,
                              T* running_var, const T* inp, const T* weight, const T* bias,
                              const T* residual, bool relu, int64_t N, int64_t C, int64_t HW,
                              double momentum, double eps);
template <typename T>
void batch_norm_train_backward(T* dinp, T* dres, T* sum_dout, T* sum_dout_xhat, const T* dout,
                               const T* relu_out, const T* inp, const T* mean, const T* invstd,
                               const T* weight, int64_t N, int64_t C, int64_t HW);
}  // namespace cpu

}  // namespace prm
