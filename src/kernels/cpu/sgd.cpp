// The CPU body of SgdStep (kernels/sgd.h): the same sgd_update_element per element, in blocks
// over the threads, with the hyperparameters a local copy and the three arrays declared
// unaliased. The generic body read them through the captured reference on every element (a
// store to param might have changed them) and so stayed scalar, with a branch per setting per
// element; here the compiler hoists the settings' tests out of the loop and vectorises it. The
// per-element arithmetic and its order are the same, so the same bits (tests/test_sgd.cpp checks
// the update against torch's rule in a plain loop, bit for bit, and against hand computations).
#include <algorithm>

#include "kernels/cpu/loop.h"
#include "kernels/register.h"
#include "kernels/sgd.h"

namespace prm {

namespace {

template <typename T, bool kMomentum>
void sgd_block(T* __restrict param, T* __restrict momentum_buf, const T* __restrict dparam,
               int64_t n, const SgdHyper<T> h) {
  for (int64_t i = 0; i < n; ++i)
    sgd_update_element(param[i], kMomentum ? momentum_buf + i : nullptr, dparam[i], h);
}

}  // namespace

template <>
struct SgdStep<CpuLoop> {
  template <typename T>
  static void run(T* param, T* momentum_buf, const T* dparam, int64_t n, SgdHyper<T> h) {
    constexpr int64_t kBlock = 4096;
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    CpuLoop::for_each(
        blocks,
        [=](int64_t b) {
          const int64_t i0 = b * kBlock, len = std::min(kBlock, n - i0);
          if (h.momentum != T(0))
            sgd_block<T, true>(param + i0, momentum_buf + i0, dparam + i0, len, h);
          else
            sgd_block<T, false>(param + i0, nullptr, dparam + i0, len, h);
        },
        kBlock);
  }
};

}  // namespace prm

PRM_REGISTER_KERNELS(CpuLoop, SgdStep)
