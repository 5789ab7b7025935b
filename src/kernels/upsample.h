// Bilinear upsampling (torch's F.interpolate(mode='bilinear')) over [N, C, H, W] ->
// [N, C, OH, OW], written once for both devices (kernels/dispatch.h) over the coefficient
// function bilinear_tap of upsample_math.h; registered in cpu/ and cuda/upsample.*.
//
// scale_h / scale_w map output to input coordinates (bilinear_coordinate_scale computes them,
// torch's rule): align_corners src = scale * o, else src = max(scale * (o + 0.5) - 0.5, 0).
//
//   UpsampleBilinearForward:  out[o] = sum of the 4 taps' weight * inp       (overwrites)
//   UpsampleBilinearBackward: dinp = sum over outputs of weight * dout, a scatter within each
//                             (n, c) plane: one thread per plane on the CPU, atomic adds on
//                             CUDA (Loop::RowAdd)                           (overwrites)
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/upsample_math.h"

namespace prm {

template <class Loop>
struct UpsampleBilinearForward {
  template <typename T>
  static void run(T* out, const T* inp, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                  int64_t OW, T scale_h, T scale_w, bool align_corners) {
    Loop::for_each(N * C * OH * OW, PRM_LAMBDA(int64_t i) {
      out[i] = upsample_bilinear_forward_one(i, inp, H, W, OH, OW, scale_h, scale_w,
                                             align_corners);
    });
  }
};

template <class Loop>
struct UpsampleBilinearBackward {
  template <typename T>
  static void run(T* dinp, const T* dout, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                  int64_t OW, T scale_h, T scale_w, bool align_corners) {
    Loop::for_each(N * C * H * W, PRM_LAMBDA(int64_t i) { dinp[i] = T(0); });
    // One run per plane: its outputs scatter only into the same plane of dinp.
    Loop::for_each_run(N * C, OH * OW, PRM_LAMBDA(int64_t plane, int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j)
        upsample_bilinear_backward_one(plane * OH * OW + j, dinp, dout, H, W, OH, OW, scale_h,
                                       scale_w, align_corners, typename Loop::RowAdd{});
    });
  }
};

}  // namespace prm
