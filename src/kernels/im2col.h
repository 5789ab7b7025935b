// Convolution helpers with no autograd, written once for both devices (kernels/dispatch.h) over
// the math of im2col_math.h; registered in cpu/im2col.cpp and cuda/im2col.cu.
// All work on N images at once; col is [N][C*kh*kw][Ho*Wo], x and dx are [N][C][H][W].
//   Im2col:         col = im2col(x)                              (overwrites col)
//   Col2im:         dx = col2im(dcol), the adjoint of im2col     (overwrites dx: an
//                                                                 activation gradient);
//                   with a scale, dx = scale ⊙ col2im(dcol): each sum rounded, then
//                   multiplied (scale for image n at scale + n * scale_image; scale_image 0
//                   shares one [C][H][W] across the batch)
//   AddChannelBias: out[n][c][i] += bias[c], out is [N][C][HW]   (accumulates into out)
// The bias gradient is a GEMM against a vector of ones (see ops/conv2d.cpp).
//
// The loops go by runs of Wo (or W) contiguous elements (Loop::for_each_run), so on the CPU the
// index arithmetic of a run is done once and the inner loop vectorises. The common window
// shapes (stride 1 or 2, dilation 1) get their own instantiation, in which the compiler sees the
// stride as a constant and turns the per-element divisions by it into shifts, or drops them.
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/im2col_math.h"

namespace prm {

// fix(win) returns win with its stride and dilation replaced by compile-time constants
// (kStride > 0), or unchanged (kStride == 0).
template <int kStride>
struct FixedWindow {
  PRM_HD ConvWindow operator()(ConvWindow w) const {
    if (kStride > 0) {
      w.stride = kStride;
      w.dilation = 1;
    }
    return w;
  }
};

// Which FixedWindow a window may use: 1 or 2 for stride 1 or 2 with dilation 1, else 0.
inline int fixed_stride_of(const ConvWindow& win) {
  if (win.dilation != 1) return 0;
  return win.stride == 1 || win.stride == 2 ? static_cast<int>(win.stride) : 0;
}

template <class Loop>
struct Im2col {
  template <typename T>
  static void run(T* col, const T* x, int64_t N, int64_t C, int64_t H, int64_t W,
                  ConvWindow win) {
    switch (fixed_stride_of(win)) {
      case 1: return run_fixed<1>(col, x, N, C, H, W, win);
      case 2: return run_fixed<2>(col, x, N, C, H, W, win);
      default: return run_fixed<0>(col, x, N, C, H, W, win);
    }
  }
  // One run per (n, c, ki, kj, oy): Wo columns of col, the formula of im2col_math.h's header.
  template <int kStride, typename T>
  static void run_fixed(T* col, const T* x, int64_t N, int64_t C, int64_t H, int64_t W,
                        ConvWindow win) {
    const int64_t Ho = win.out_h(H), Wo = win.out_w(W);
    Loop::for_each_run(N * C * win.kh * win.kw * Ho, Wo,
                       PRM_LAMBDA(int64_t row, int64_t begin, int64_t end) {
      const ConvWindow w = FixedWindow<kStride>{}(win);
      const int64_t oy = row % Ho;
      int64_t rest = row / Ho;
      const int64_t kj = rest % w.kw;
      rest /= w.kw;
      const int64_t ki = rest % w.kh;
      rest /= w.kh;
      const int64_t c = rest % C, n = rest / C;
      T* out = col + row * Wo;
      // Padding, then the columns that read x (a plain strided copy), then padding again.
      const int64_t iy = oy * w.stride - w.pad + ki * w.dilation;
      int64_t lo = end, hi = end;  // a row iy in the padding reads nothing
      if (iy >= 0 && iy < H) {
        im2col_inside_columns(w, W, Wo, kj, &lo, &hi);
        lo = lo < begin ? begin : (lo > end ? end : lo);
        hi = hi < lo ? lo : (hi > end ? end : hi);
      }
      const T* x_row = x + ((n * C + c) * H + (iy >= 0 && iy < H ? iy : 0)) * W;
      const int64_t x0 = kj * w.dilation - w.pad;
      for (int64_t ox = begin; ox < lo; ++ox) out[ox] = T(0);
      for (int64_t ox = lo; ox < hi; ++ox) out[ox] = x_row[ox * w.stride + x0];
      for (int64_t ox = hi; ox < end; ++ox) out[ox] = T(0);
    });
  }
};

template <class Loop>
struct Col2im {
  template <typename T>
  static void run(T* dx, const T* dcol, int64_t N, int64_t C, int64_t H, int64_t W,
                  ConvWindow win, const T* scale, int64_t scale_image) {
    switch (fixed_stride_of(win)) {
      case 1: return run_fixed<1>(dx, dcol, N, C, H, W, win, scale, scale_image);
      case 2: return run_fixed<2>(dx, dcol, N, C, H, W, win, scale, scale_image);
      default: return run_fixed<0>(dx, dcol, N, C, H, W, win, scale, scale_image);
    }
  }
  // One run per (n, c, iy): W pixels of dx, summed tap by tap (the order of col2im_value's
  // sum) so that the loop over the run vectorises. Taps col2im_tap would return 0 for are
  // skipped (adding them would change nothing: a row starts at +0 and never becomes -0): a row
  // iy that this ki does not reach, the columns ix outside the tap's reach and, for stride s,
  // the columns not congruent to kj*d - p modulo s. The scale, if any, multiplies the finished
  // row.
  template <int kStride, typename T>
  static void run_fixed(T* dx, const T* dcol, int64_t N, int64_t C, int64_t H, int64_t W,
                        ConvWindow win, const T* scale, int64_t scale_image) {
    const int64_t Ho = win.out_h(H), Wo = win.out_w(W);
    const int64_t col_image = C * win.kh * win.kw * Ho * Wo;
    Loop::for_each_run(N * C * H, W, PRM_LAMBDA(int64_t row, int64_t begin, int64_t end) {
      const ConvWindow w = FixedWindow<kStride>{}(win);
      const int64_t iy = row % H;
      const int64_t c = (row / H) % C, n = row / (H * C);
      const T* dcol_n = dcol + n * col_image;
      T* out = dx + row * W;
      for (int64_t ix = begin; ix < end; ++ix) out[ix] = T(0);
      for (int64_t ki = 0; ki < w.kh; ++ki) {
        const int64_t ty = iy + w.pad - ki * w.dilation;
        if (ty < 0 || ty % w.stride != 0 || ty / w.stride >= Ho) continue;
        const int64_t oy = ty / w.stride;
        for (int64_t kj = 0; kj < w.kw; ++kj) {
          // The dcol row of this tap and output row: column ox feeds ix = x0 + ox * s, so the
          // run's ix in [lo, hi) on the tap's phase read drow[(ix - x0) / s], no test each.
          const T* drow = dcol_n + ((c * w.kh + ki) * w.kw + kj) * (Ho * Wo) + oy * Wo;
          const int64_t x0 = kj * w.dilation - w.pad;
          const int64_t lo = begin > x0 ? begin : x0;
          const int64_t last = x0 + (Wo - 1) * w.stride + 1;
          const int64_t hi = end < last ? end : last;
          const int64_t first = lo + ((x0 - lo) % w.stride + w.stride) % w.stride;
          for (int64_t ix = first; ix < hi; ix += w.stride) out[ix] += drow[(ix - x0) / w.stride];
        }
      }
      if (scale != nullptr) {
        const T* s = scale + n * scale_image + (c * H + iy) * W;
        for (int64_t ix = begin; ix < end; ++ix) out[ix] = s[ix] * out[ix];
      }
    });
  }
};

template <class Loop>
struct AddChannelBias {
  template <typename T>
  static void run(T* out, const T* bias, int64_t N, int64_t C, int64_t HW) {
    Loop::for_each_run(N * C, HW, PRM_LAMBDA(int64_t row, int64_t begin, int64_t end) {
      const T b = bias[row % C];
      T* o = out + row * HW;
      for (int64_t i = begin; i < end; ++i) o[i] += b;
    });
  }
};

}  // namespace prm
