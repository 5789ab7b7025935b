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

// Output i's gradient spread onto its 4 taps; add(T* p, T v) does *p += v (the CPU's scatter,
// where one thread owns a plane).
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

// The outputs [first, past) of an axis of `out_size` whose taps reach input position `x`: those
// whose first tap i0 is x - 1 or x (the second tap is i0 + 1, or i0 itself at the last
// position). i0 never decreases with the output position (the source coordinate is a monotone
// function rounded monotonically), so they are one run, found by two binary searches over the
// very bilinear_tap the forward uses (no closed-form inverse that could round differently).
struct OutputRun {
  int64_t first, past;
};

template <typename T>
PRM_HD int64_t first_output_with_tap_at_least(int64_t target, int64_t in_size, int64_t out_size,
                                              T scale, bool align_corners) {
  int64_t lo = 0, hi = out_size;  // the answer lies in [lo, hi]
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (bilinear_tap(mid, in_size, scale, align_corners).i0 >= target) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

template <typename T>
PRM_HD OutputRun outputs_reaching(int64_t x, int64_t in_size, int64_t out_size, T scale,
                                  bool align_corners) {
  return {first_output_with_tap_at_least(x - 1, in_size, out_size, scale, align_corners),
          first_output_with_tap_at_least(x + 1, in_size, out_size, scale, align_corners)};
}

// dinp[i] of all N * C planes, gathered: the sum over the outputs whose taps reach input i of
// tap weight * dout, taken in the outputs' row-major order and, within an output, in the order of
// upsample_bilinear_backward_one's four adds. That is the order in which a serial scatter adds
// them into dinp[i] starting from zero, so the result has the scatter's bits (where the compiler
// does not contract a product and a sum into one FMA: the CPU build does not) and is the same on
// every run and thread count: no atomic adds in an order that changes between runs.
template <typename T>
PRM_HD T upsample_bilinear_backward_gather_one(int64_t i, const T* dout, int64_t H, int64_t W,
                                               int64_t OH, int64_t OW, T scale_h, T scale_w,
                                               bool align_corners) {
  const int64_t w = i % W, h = (i / W) % H, plane = i / (W * H);
  const T* g = dout + plane * OH * OW;
  const OutputRun rows = outputs_reaching(h, H, OH, scale_h, align_corners);
  const OutputRun cols = outputs_reaching(w, W, OW, scale_w, align_corners);
  T acc = T(0);
  for (int64_t oh = rows.first; oh < rows.past; ++oh) {
    const BilinearTap<T> th = bilinear_tap(oh, H, scale_h, align_corners);
    const bool h0 = th.i0 == h, h1 = th.i1 == h;
    for (int64_t ow = cols.first; ow < cols.past; ++ow) {
      const BilinearTap<T> tw = bilinear_tap(ow, W, scale_w, align_corners);
      const bool w0 = tw.i0 == w, w1 = tw.i1 == w;
      const T gv = g[oh * OW + ow];
      if (h0 && w0) acc += th.w0 * tw.w0 * gv;
      if (h0 && w1) acc += th.w0 * tw.w1 * gv;
      if (h1 && w0) acc += th.w1 * tw.w0 * gv;
      if (h1 && w1) acc += th.w1 * tw.w1 * gv;
    }
  }
  return acc;
}

}  // namespace prm
