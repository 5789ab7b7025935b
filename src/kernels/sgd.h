// The SGD update kernel (torch.optim.SGD's step for one parameter tensor of n elements); CPU twin
// in cpu/sgd.cpp, CUDA twin in cuda/sgd.cu, same signature; the math is sgd_math.h.
//   sgd_step: param and momentum_buf are updated IN PLACE (param -= lr * d; the buffer is
//   overwritten with its new value); dparam is read only. momentum_buf may be null when
//   h.momentum == 0.
#pragma once
#include <cstdint>

#include "kernels/sgd_math.h"

namespace prm::cpu {
template <typename T>
void sgd_step(T* param, T* momentum_buf, const T* dparam, int64_t n, SgdHyper<T> h);
}  // namespace prm::cpu

namespace prm::cuda {
template <typename T>
void sgd_step(T* param, T* momentum_buf, const T* dparam, int64_t n, SgdHyper<T> h);
}  // namespace prm::cuda
