// Per-element math of the binary cross-entropy with logits, shared by cpu/loss.cpp and
// cuda/loss.cu.
#pragma once
#include <cmath>

#include "kernels/common.h"
#include "kernels/elementwise_math.h"

namespace prm {

// -(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))) in the form that never overflows:
// max(x, 0) - x y + log1p(exp(-|x|)).
template <typename T>
PRM_HD T bce_with_logits_at(T x, T y) {
  return (x > T(0) ? x : T(0)) - x * y + std::log1p(std::exp(-std::abs(x)));
}

// d/dx of the above is sigmoid(x) - y; `scale` carries the upstream gradient and the 1/n of the
// mean.
template <typename T>
PRM_HD T bce_with_logits_grad(T x, T y, T scale) {
  return scale * (sigmoid_of(x) - y);
}

}  // namespace prm
