// CPU twins of the im2col kernels. The per-element math is im2col_math.h's; the loops walk one
// row of Wo (or W) contiguous elements per parallel index, so the index arithmetic of a row
// is done once and the inner loop vectorises (the CUDA twin spreads single elements instead).
// The common window shapes (stride 1 or 2, dilation 1) get their own instantiation of each loop,
// in which the compiler sees the stride as a constant and turns the per-element divisions by it
// into shifts, or drops them.
#include "kernels/im2col.h"

namespace prm::cpu {

namespace {

// parallel_for over rows of row_len elements each, threaded when the elements are many.
template <typename F>
void parallel_rows(int64_t rows, int64_t row_len, F f) {
#pragma omp parallel for schedule(static) if (rows * row_len > 32768 && rows > 1)
  for (int64_t r = 0; r < rows; ++r) f(r);
}

// Calls body(fix) where fix(win) returns win with its stride and dilation replaced by
// compile-time constants in the common cases. Called inside the loop body (after OpenMP has
// outlined it), so that the math inlined there folds the constants.
template <int kStride>
struct FixedWindow {
  ConvWindow operator()(ConvWindow w) const {
    if constexpr (kStride > 0) {
      w.stride = kStride;
      w.dilation = 1;
    }
    return w;
  }
};

template <typename Body>
void with_constant_window(const ConvWindow& win, Body body) {
  if (win.dilation == 1 && win.stride == 1) {
    body(FixedWindow<1>{});
  } else if (win.dilation == 1 && win.stride == 2) {
    body(FixedWindow<2>{});
  } else {
    body(FixedWindow<0>{});
  }
}

}  // namespace

template <typename T>
void im2col(T* col, const T* x, int64_t N, int64_t C, int64_t H, int64_t W, ConvWindow win) {
  const int64_t Ho = win.out_h(H), Wo = win.out_w(W);
  with_constant_window(win, [&](auto fix) {
    // One index per (n, c, ki, kj, oy): a run of Wo columns of col.
    parallel_rows(N * C * win.kh * win.kw * Ho, Wo, [=](int64_t row) {
      const ConvWindow w = fix(win);
      const int64_t oy = row % Ho;
      int64_t rest = row / Ho;
      const int64_t kj = rest % w.kw;
      rest /= w.kw;
      const int64_t ki = rest % w.kh;
      rest /= w.kh;
      const int64_t c = rest % C, n = rest / C;
      const T* xn = x + n * C * H * W;
      T* out = col + row * Wo;
      for (int64_t ox = 0; ox < Wo; ++ox) out[ox] = im2col_value(xn, H, W, w, c, ki, kj, oy, ox);
    });
  });
}

template <typename T>
void col2im(T* dx, const T* dcol, int64_t N, int64_t C, int64_t H, int64_t W, ConvWindow win) {
  const int64_t Ho = win.out_h(H), Wo = win.out_w(W);
  const int64_t col_image = C * win.kh * win.kw * Ho * Wo;
  with_constant_window(win, [&](auto fix) {
    // One index per (n, c, iy): a run of W pixels of dx, summed tap by tap (the order of
    // col2im_value's sum) so that the loop over the run vectorises.
    parallel_rows(N * C * H, W * win.kh * win.kw, [=](int64_t row) {
      const ConvWindow w = fix(win);
      const int64_t iy = row % H;
      const int64_t c = (row / H) % C, n = row / (H * C);
      const T* dcol_n = dcol + n * col_image;
      T* out = dx + row * W;
      for (int64_t ix = 0; ix < W; ++ix) out[ix] = T(0);
      for (int64_t ki = 0; ki < w.kh; ++ki) {
        // Skip the taps col2im_tap would return 0 for: a row iy that this ki does not reach,
        // and (for stride s) the columns ix not congruent to kj*d - p modulo s.
        const int64_t ty = iy + w.pad - ki * w.dilation;
        if (ty < 0 || ty % w.stride != 0 || ty / w.stride >= Ho) continue;
        for (int64_t kj = 0; kj < w.kw; ++kj) {
          const int64_t first = ((kj * w.dilation - w.pad) % w.stride + w.stride) % w.stride;
          for (int64_t ix = first; ix < W; ix += w.stride)
            out[ix] += col2im_tap(dcol_n, Ho, Wo, w, c, ki, kj, iy, ix);
        }
      }
    });
  });
}

template <typename T>
void add_channel_bias(T* out, const T* bias, int64_t N, int64_t C, int64_t HW) {
  parallel_rows(N * C, HW, [=](int64_t row) {
    const T b = bias[row % C];
    T* o = out + row * HW;
    for (int64_t i = 0; i < HW; ++i) o[i] += b;
  });
}

#define PRM_INSTANTIATE_IM2COL(T)                                                        \
  template void im2col<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, ConvWindow); \
  template void col2im<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, ConvWindow); \
  template void add_channel_bias<T>(T*, const T*, int64_t, int64_t, int64_t);
PRM_INSTANTIATE_IM2COL(float)
PRM_INSTANTIATE_IM2COL(double)
#undef PRM_INSTANTIATE_IM2COL

}  // namespace prm::cpu
