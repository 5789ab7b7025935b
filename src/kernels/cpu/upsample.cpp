#include "kernels/cpu/loop.h"
#include "kernels/upsample.h"
#include "kernels/register.h"

namespace prm {

// The CPU's backward: a scatter, each (n, c) plane owned by one thread, which adds every output's
// four taps in output order (the order the gathered body of upsample.h sums them in, so the same
// bits). A thread owns its plane, so the adds are plain.
template <>
struct UpsampleBilinearBackward<CpuLoop> {
  template <typename T>
  static void run(T* dinp, const T* dout, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                  int64_t OW, T scale_h, T scale_w, bool align_corners) {
    const auto add = [](T* p, T v) { *p += v; };
    CpuLoop::for_each(N * C * H * W, [=](int64_t i) { dinp[i] = T(0); });
    CpuLoop::for_each_run(N * C, OH * OW, [=](int64_t plane, int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j)
        upsample_bilinear_backward_one(plane * OH * OW + j, dinp, dout, H, W, OH, OW, scale_h,
                                       scale_w, align_corners, add);
    });
  }
};

}  // namespace prm

PRM_REGISTER_KERNELS(CpuLoop, UpsampleBilinearForward, UpsampleBilinearBackward)
