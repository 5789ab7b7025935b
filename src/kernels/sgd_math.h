// Per-element math of one torch.optim.SGD step, shared by the CPU and CUDA twins (cpu/sgd.cpp,
// cuda/sgd.cu), in the order torch 1.13's _single_tensor_sgd computes it:
//   d = g + weight_decay * p                          (when weight_decay != 0)
//   b = d                                             (first step: buffer starts as the gradient)
//   b = momentum * b + (1 - dampening) * d            (later steps)
//   d = nesterov ? d + momentum * b : b               (when momentum != 0)
//   p = p - lr * d
#pragma once
#include "kernels/common.h"

namespace prm {

template <typename T>
struct SgdHyper {
  T lr = 0;
  T momentum = 0;
  T dampening = 0;
  T weight_decay = 0;
  bool nesterov = false;
  bool first_step = true;  // the momentum buffer holds nothing yet
};

// Updates param and (when momentum != 0) momentum_buf in place from the gradient g.
template <typename T>
PRM_HD void sgd_update_element(T& param, T* momentum_buf, T g, const SgdHyper<T>& h) {
  T d = g;
  if (h.weight_decay != T(0)) d += h.weight_decay * param;
  if (h.momentum != T(0)) {
    const T b = h.first_step ? d : h.momentum * *momentum_buf + (T(1) - h.dampening) * d;
    *momentum_buf = b;
    d = h.nesterov ? d + h.momentum * b : b;
  }
  param -= h.lr * d;
}

}  // namespace prm
