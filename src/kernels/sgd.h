// The SGD update kernel (torch.optim.SGD's step for one parameter tensor of n elements), written
// once for both devices (kernels/dispatch.h) over the math of sgd_math.h; registered in
// cpu/sgd.cpp and cuda/sgd.cu.
//   SgdStep: param and momentum_buf are updated IN PLACE (param -= lr * d; the buffer is
//   overwritten with its new value); dparam is read only. momentum_buf may be null when
//   h.momentum == 0.
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/sgd_math.h"

namespace prm {

template <class Loop>
struct SgdStep {
  template <typename T>
  static void run(T* param, T* momentum_buf, const T* dparam, int64_t n, SgdHyper<T> h) {
    Loop::for_each(n, PRM_LAMBDA(int64_t i) {
      sgd_update_element(param[i], momentum_buf ? momentum_buf + i : nullptr, dparam[i], h);
    });
  }
};

}  // namespace prm
