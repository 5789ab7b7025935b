// Bilinear upsampling of x [N, C, H, W], exactly torch's F.interpolate(mode='bilinear').
//
// Each output position o maps to an input coordinate src (per axis):
//   align_corners=True:  src = o * (in - 1) / (out - 1)
//   align_corners=False: src = max((o + 0.5) * r - 0.5, 0), r = in / out for a given size,
//                        r = 1 / scale_factor for a given scale factor (torch's rule)
// i0 = floor(src), i1 = min(i0 + 1, in - 1), weights (1 - f, f) with f = src - i0, and
//   y[oh, ow] = sum over the 2 x 2 taps of wh * ww * x[h, w].
// The map is linear, so dx[h, w] = sum over the outputs tapping (h, w) of wh * ww * g[oh, ow].
//
// upsample_bilinear_scale: output size floor(H * scale) x floor(W * scale); PRM upsamples its
// class response maps with scale 8 and align_corners=True.
#pragma once
#include <cstdint>

#include "tensor/tensor.h"

namespace prm {

// The output size and coordinate rule the forward used; scale <= 0: none given (sizes only).
struct UpsampleSaved {
  int64_t out_h = 0, out_w = 0;
  bool align_corners = false;
  double scale = 0.0;
};
Tensor upsample_bilinear_forward(const Tensor& x, const UpsampleSaved& saved);
Tensor upsample_bilinear_backward(const Tensor& g, const Shape& x_shape,
                                  const UpsampleSaved& saved);

Tensor upsample_bilinear(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners);
Tensor upsample_bilinear_scale(const Tensor& x, double scale, bool align_corners);

}  // namespace prm
