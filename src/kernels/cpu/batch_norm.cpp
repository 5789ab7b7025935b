// CPU bodies of the per-channel reductions of kernels/batch_norm.h, and the registration of all
// its kernels.
#include <algorithm>

#include "kernels/batch_norm.h"
#include "kernels/cpu/loop.h"
#include "kernels/register.h"

namespace prm {

// One pass per channel: each run of up to kBlock values of a plane gets its exact two-pass
// moments while it sits in L1, and the runs merge (Moments): as stable as two passes over the
// channel, with x read from memory once.
template <>
template <typename T>
void BatchNormStats<CpuLoop>::run(T* mean, T* var, const T* inp, int64_t N, int64_t C,
                                  int64_t HW) {
  constexpr int64_t kBlock = 256;
#pragma omp parallel for schedule(static) if (N * C * HW > 32768)
  for (int64_t c = 0; c < C; ++c) {
    Moments m{0, 0, 0};
    for (int64_t n = 0; n < N; ++n) {
      const T* plane = inp + (n * C + c) * HW;
      for (int64_t j = 0; j < HW; j += kBlock)
        m = moments_merge(m, moments_of(plane + j, static_cast<int>(std::min(kBlock, HW - j))));
    }
    mean[c] = static_cast<T>(m.mean);
    var[c] = static_cast<T>(m.m2 / m.n);
  }
}

// Per plane, runs of up to kBlock values: the ReLU gate first, into a small buffer (a
// branch-free select the compiler vectorises; a branch per element mispredicts on a ReLU mask),
// then the two sums in double in memory order, the order in which the unfused kernels sum.
template <>
template <typename T>
void BatchNormBackwardReduce<CpuLoop>::run(T* sum_dout, T* sum_dout_xhat, const T* dout,
                                           const T* relu_out, const T* inp, const T* mean,
                                           const T* invstd, int64_t N, int64_t C, int64_t HW) {
  constexpr int64_t kBlock = 256;
#pragma omp parallel for schedule(static) if (N * C * HW > 32768)
  for (int64_t c = 0; c < C; ++c) {
    double sum_dy = 0, sum_dy_xhat = 0;
    const double m = mean[c], s = invstd[c];
    T gated[kBlock];
    for (int64_t n = 0; n < N; ++n) {
      const int64_t base = (n * C + c) * HW;
      for (int64_t j0 = 0; j0 < HW; j0 += kBlock) {
        const int64_t len = std::min(kBlock, HW - j0);
        const T *g = dout + base + j0, *x = inp + base + j0, *d = g;
        if (relu_out != nullptr) {
          const T* r = relu_out + base + j0;
          for (int64_t k = 0; k < len; ++k) gated[k] = relu_grad(g[k], r[k]);
          d = gated;
        }
        for (int64_t k = 0; k < len; ++k) {
          sum_dy += d[k];
          sum_dy_xhat += d[k] * ((x[k] - m) * s);
        }
      }
    }
    sum_dout[c] = static_cast<T>(sum_dy);
    sum_dout_xhat[c] = static_cast<T>(sum_dy_xhat);
  }
}

}  // namespace prm

PRM_REGISTER_KERNELS(CpuLoop, BatchNormStats, BatchNormBackwardReduce, BatchNormFinalize,
                     BatchNormApply, BatchNormBackwardInput)
