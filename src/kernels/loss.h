// Loss kernels, written once for both devices (kernels/dispatch.h) over the math of loss_math.h;
// registered in cpu/loss.cpp and cuda/loss.cu. Both WRITE their output.
//   BceWithLogits:         out[i] = max(x,0) - x y + log1p(exp(-|x|)), x = logits[i],
//                          y = targets[i] (the op then takes the mean)
//   BceWithLogitsBackward: dlogits[i] = dloss[0] * scale * (sigmoid(x) - y); dloss points at
//                          the scalar upstream gradient on the same device (read in the
//                          kernel, so there is no host round trip), scale = 1/n of the mean.
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/loss_math.h"

namespace prm {

template <class Loop>
struct BceWithLogits {
  template <typename T>
  static void run(T* out, const T* logits, const T* targets, int64_t n) {
    Loop::for_each(n, PRM_LAMBDA(int64_t i) { out[i] = bce_with_logits_at(logits[i], targets[i]); });
  }
};

template <class Loop>
struct BceWithLogitsBackward {
  template <typename T>
  static void run(T* dlogits, const T* dloss, const T* logits, const T* targets, T scale,
                  int64_t n) {
    Loop::for_each(n, PRM_LAMBDA(int64_t i) {
      dlogits[i] = bce_with_logits_grad(logits[i], targets[i], dloss[0] * scale);
    });
  }
};

}  // namespace prm
