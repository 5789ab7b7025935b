#include "kernels/upsample.h"

#include "kernels/cpu/parallel.h"
#include "kernels/upsample_math.h"

namespace prm::cpu {

template <typename T>
void upsample_bilinear_forward(T* out, const T* inp, int64_t N, int64_t C, int64_t H, int64_t W,
                               int64_t OH, int64_t OW, T scale_h, T scale_w, bool align_corners) {
  parallel_for(N * C * OH * OW, [=](int64_t i) {
    out[i] = upsample_bilinear_forward_one(i, inp, H, W, OH, OW, scale_h, scale_w, align_corners);
  });
}

// One thread per plane: the scatter within a plane is serial, so plain += is safe.
template <typename T>
void upsample_bilinear_backward(T* dinp, const T* dout, int64_t N, int64_t C, int64_t H, int64_t W,
                                int64_t OH, int64_t OW, T scale_h, T scale_w, bool align_corners) {
  const auto add = [](T* p, T v) { *p += v; };
#pragma omp parallel for schedule(static) if (N * C * OH * OW > 32768)
  for (int64_t plane = 0; plane < N * C; ++plane) {
    for (int64_t j = 0; j < H * W; ++j) dinp[plane * H * W + j] = T(0);
    for (int64_t j = 0; j < OH * OW; ++j)
      upsample_bilinear_backward_one(plane * OH * OW + j, dinp, dout, H, W, OH, OW, scale_h,
                                     scale_w, align_corners, add);
  }
}

#define PRM_INSTANTIATE_UPSAMPLE(T)                                                             \
  template void upsample_bilinear_forward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t,  \
                                             int64_t, int64_t, T, T, bool);                     \
  template void upsample_bilinear_backward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, \
                                              int64_t, int64_t, T, T, bool);
PRM_INSTANTIATE_UPSAMPLE(float)
PRM_INSTANTIATE_UPSAMPLE(double)

}  // namespace prm::cpu
