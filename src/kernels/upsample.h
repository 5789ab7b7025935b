// Bilinear upsampling (torch's F.interpolate(mode='bilinear')) over [N, C, H, W] ->
// [N, C, OH, OW], written once for both devices (kernels/dispatch.h) over the coefficient
// function bilinear_tap of upsample_math.h; registered in cpu/ and cuda/upsample.*.
//
// scale_h / scale_w map output to input coordinates (bilinear_coordinate_scale computes them,
// torch's rule): align_corners src = scale * o, else src = max(scale * (o + 0.5) - 0.5, 0).
//
//   UpsampleBilinearForward:  out[o] = sum of the 4 taps' weight * inp       (overwrites)
//   UpsampleBilinearBackward: dinp = sum over outputs of weight * dout    (overwrites)
//     Gathered (the body here, CUDA's): one thread per input element sums the outputs its taps
//     reach, in a fixed order, so a GPU gives the same bits on every run (atomic adds would sum
//     in whatever order the threads arrive, and a bitwise comparison of two training runs would
//     flake). The CPU specialises it (cpu/upsample.cpp) as a scatter, one thread per (n, c) plane,
//     2.5x faster there; both add the same terms in the same order, so the same bits (tested).
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
    Loop::for_each(N * C * H * W, PRM_LAMBDA(int64_t i) {
      dinp[i] = upsample_bilinear_backward_gather_one(i, dout, H, W, OH, OW, scale_h, scale_w,
                                                      align_corners);
    });
  }
};

}  // namespace prm
