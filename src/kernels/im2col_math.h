// The per-element math of im2col and col2im, shared by the CPU and CUDA twins (PRM_HD is
// __host__ __device__ under nvcc), so the loops in cpu/im2col.cpp and cuda/im2col.cu are the only
// code that differs between the devices.
//
// For one image of C x H x W and a kh x kw window with stride s, zero padding p and dilation d,
// the output is Ho x Wo with Ho = (H + 2p - d(kh-1) - 1) / s + 1 (likewise Wo), and the column
// matrix col has C*kh*kw rows and Ho*Wo columns:
//
//   col[(c*kh + ki)*kw + kj][oy*Wo + ox] = x[c][oy*s - p + ki*d][ox*s - p + kj*d]  (0 outside)
//
// so the convolution is the GEMM  y[Cout][Ho*Wo] = w[Cout][C*kh*kw] · col.
// col2im is the adjoint of im2col: dx[c][iy][ix] = the sum of every dcol entry that im2col filled
// from x[c][iy][ix]. It is written as a gather (one output pixel sums its own entries), so each
// element is computed independently and no atomics are needed.
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace prm {

// The sliding window of a 2-D convolution (square stride, padding and dilation).
struct ConvWindow {
  int64_t kh = 1, kw = 1;
  int64_t stride = 1, pad = 0, dilation = 1;

  PRM_HD int64_t out_size(int64_t in, int64_t k) const {
    return (in + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
  }
  PRM_HD int64_t out_h(int64_t H) const { return out_size(H, kh); }
  PRM_HD int64_t out_w(int64_t W) const { return out_size(W, kw); }
  // A 1x1, stride-1, unpadded window: col is the image itself, im2col can be skipped.
  PRM_HD bool is_pointwise() const { return kh == 1 && kw == 1 && stride == 1 && pad == 0; }
};

// The columns ox of an im2col row of tap kj whose input column ix = ox*s - p + kj*d lies in
// [0, W), as [*first, *last) within [0, Wo): ix >= 0 from ox >= ceil((p - kj*d) / s), ix <= W - 1
// up to ox <= floor((W - 1 + p - kj*d) / s). The entries of the row outside them are padding (0),
// the ones inside read x[c][iy][ox*s + kj*d - p] with no test per element.
PRM_HD void im2col_inside_columns(const ConvWindow& win, int64_t W, int64_t Wo, int64_t kj,
                                  int64_t* first, int64_t* last) {
  const int64_t x0 = kj * win.dilation - win.pad;  // ix of ox = 0
  const int64_t lo = x0 >= 0 ? 0 : (-x0 + win.stride - 1) / win.stride;
  const int64_t hi = W - 1 - x0 < 0 ? 0 : (W - 1 - x0) / win.stride + 1;
  *first = lo < Wo ? lo : Wo;
  *last = hi < *first ? *first : (hi < Wo ? hi : Wo);
}

PRM_HD int64_t div_by(int64_t a, int64_t b) { return b == 1 ? a : a / b; }  // no idiv for 1

// What window tap (ki, kj) contributes to dx[c][iy][ix]: the dcol entry of the output position
// (oy, ox) with oy*s - p + ki*d == iy (likewise x), or 0 when no such position is on the grid.
template <typename T>
PRM_HD T col2im_tap(const T* dcol, int64_t Ho, int64_t Wo, const ConvWindow& win, int64_t c,
                    int64_t ki, int64_t kj, int64_t iy, int64_t ix) {
  const int64_t ty = iy + win.pad - ki * win.dilation;  // = oy * stride
  const int64_t tx = ix + win.pad - kj * win.dilation;  // = ox * stride
  const int64_t oy = div_by(ty, win.stride), ox = div_by(tx, win.stride);
  const bool hit =
      ty >= 0 && tx >= 0 && oy < Ho && ox < Wo && oy * win.stride == ty && ox * win.stride == tx;
  return hit ? dcol[((c * win.kh + ki) * win.kw + kj) * (Ho * Wo) + oy * Wo + ox] : T(0);
}

// dx[c][iy][ix] of one image: the sum over all window taps of col2im_tap.
template <typename T>
PRM_HD T col2im_value(const T* dcol, int64_t H, int64_t W, const ConvWindow& win, int64_t c,
                      int64_t iy, int64_t ix) {
  const int64_t Ho = win.out_h(H), Wo = win.out_w(W);
  T sum = T(0);
  for (int64_t ki = 0; ki < win.kh; ++ki)
    for (int64_t kj = 0; kj < win.kw; ++kj) sum += col2im_tap(dcol, Ho, Wo, win, c, ki, kj, iy, ix);
  return sum;
}

}  // namespace prm
