// Bilinear interpolation math shared by the CPU and CUDA twins (see upsample.h), computed in the
// tensor's own type as torch does, so float32 results match torch's rounding closely.
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace prm {

// Output-to-input coordinate scale (torch's area_pixel_compute_scale). scale_factor <= 0 means
// none was given. With align_corners=False and a scale factor, torch uses 1 / scale_factor,
// not in / out (they differ when in * scale_factor is not an integer).
template <typename T>
PRM_HD T bilinear_coordinate_scale(int64_t in_size, int64_t out_size, bool align_corners,
                                   double scale_factor) {
  if (out_size <= 1) return T(0);
  if (align_corners) return static_cast<T>(in_size - 1) / static_cast<T>(out_size - 1);
  if (scale_factor > 0) return static_cast<T>(1.0 / scale_factor);
  return static_cast<T>(in_size) / static_cast<T>(out_size);
}

// The two input positions that output position o interpolates, with their weights.
template <typename T>
struct BilinearTap {
  int64_t i0, i1;
  T w0, w1;
};

template <typename T>
PRM_HD BilinearTap<T> bilinear_tap(int64_t o, int64_t in_size, T scale, bool align_corners) {
  T src = align_corners ? scale * static_cast<T>(o) : scale * (static_cast<T>(o) + T(0.5)) - T(0.5);
  if (src < T(0)) src = T(0);
  int64_t i0 = static_cast<int64_t>(src);  // floor, src >= 0
  if (i0 > in_size - 1) i0 = in_size - 1;
  T w1 = src - static_cast<T>(i0);
  if (w1 > T(1)) w1 = T(1);
  return {i0, i0 < in_size - 1 ? i0 + 1 : i0, T(1) - w1, w1};
}

// Output i of all N * C planes.
template <typename T>
PRM_HD T upsample_bilinear_forward_one(int64_t i, const T* inp, int64_t H, int64_t W, int64_t OH,
                                       int64_t OW, T scale_h, T scale_w, bool align_corners) {
  const int64_t ow = i % OW, oh = (i / OW) % OH, plane = i / (OW * OH);
  const T* x = inp + plane * H * W;
  const BilinearTap<T> th = bilinear_tap(oh, H, scale_h, align_corners);
  const BilinearTap<T> tw = bilinear_tap(ow, W, scale_w, align_corners);
  return th.w0 * (tw.w0 * x[th.i0 * W + tw.i0] + tw.w1 * x[th.i0 * W + tw.i1]) +
         th.w1 * (tw.w0 * x[th.i1 * W + tw.i0] + tw.w1 * x[th.i1 * W + tw.i1]);
}

// Output i's gradient spread onto its 4 taps; add(T* p, T v) does *p += v (plain on the CPU,
// where one thread owns a plane, atomic on CUDA).
template <typename T, typename Add>
PRM_HD void upsample_bilinear_backward_one(int64_t i, T* dinp, const T* dout, int64_t H, int64_t W,
                                           int64_t OH, int64_t OW, T scale_h, T scale_w,
                                           bool align_corners, Add add) {
  const int64_t ow = i % OW, oh = (i / OW) % OH, plane = i / (OW * OH);
  T* dx = dinp + plane * H * W;
  const T g = dout[i];
  const BilinearTap<T> th = bilinear_tap(oh, H, scale_h, align_corners);
  const BilinearTap<T> tw = bilinear_tap(ow, W, scale_w, align_corners);
  add(dx + th.i0 * W + tw.i0, th.w0 * tw.w0 * g);
  add(dx + th.i0 * W + tw.i1, th.w0 * tw.w1 * g);
  add(dx + th.i1 * W + tw.i0, th.w1 * tw.w0 * g);
  add(dx + th.i1 * W + tw.i1, th.w1 * tw.w1 * g);
}

}  // namespace prm
