// CPU twins of the im2col kernels. The per-element math is im2col_math.h's; the loops walk one
// row of Wo (or W) contiguous elements per parallel_for index, so the index arithmetic of a row
// is done once and the inner loop vectorises (the CUDA twin spreads single elements instead).
#include "kernels/im2col.h"

#include "kernels/cpu/parallel.h"

namespace prm::cpu {

template <typename T>
void im2col(T* col, const T* x, int64_t N, int64_t C, int64_t H, int64_t W, ConvWindow win) {
  const int64_t Ho = win.out_h(H), Wo = win.out_w(W);
  // One index per (n, c, ki, kj, oy): a run of Wo columns of col.
  parallel_for(N * C * win.kh * win.kw * Ho, [=](int64_t row) {
    const int64_t oy = row % Ho;
    int64_t rest = row / Ho;
    const int64_t kj = rest % win.kw;
    rest /= win.kw;
    const int64_t ki = rest % win.kh;
    rest /= win.kh;
    const int64_t c = rest % C, n = rest / C;
    const T* xn = x + n * C * H * W;
    T* out = col + row * Wo;
    for (int64_t ox = 0; ox < Wo; ++ox) out[ox] = im2col_value(xn, H, W, win, c, ki, kj, oy, ox);
  });
}

template <typename T>
void col2im(T* dx, const T* dcol, int64_t N, int64_t C, int64_t H, int64_t W, ConvWindow win) {
  const int64_t col_image = C * win.kh * win.kw * win.out_h(H) * win.out_w(W);
  // One index per (n, c, iy): a run of W pixels of dx.
  parallel_for(N * C * H, [=](int64_t row) {
    const int64_t iy = row % H;
    const int64_t c = (row / H) % C, n = row / (H * C);
    const T* dcol_n = dcol + n * col_image;
    T* out = dx + row * W;
    for (int64_t ix = 0; ix < W; ++ix) out[ix] = col2im_value(dcol_n, H, W, win, c, iy, ix);
  });
}

template <typename T>
void add_channel_bias(T* out, const T* bias, int64_t N, int64_t C, int64_t HW) {
  parallel_for(N * C, [=](int64_t row) {
    const T b = bias[row % C];
    T* o = out + row * HW;
    for (int64_t i = 0; i < HW; ++i) o[i] += b;
  });
}

#define PRM_INSTANTIATE_IM2COL(T)                                                              \
  template void im2col<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, ConvWindow);       \
  template void col2im<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, ConvWindow);       \
  template void add_channel_bias<T>(T*, const T*, int64_t, int64_t, int64_t);
PRM_INSTANTIATE_IM2COL(float)
PRM_INSTANTIATE_IM2COL(double)
#undef PRM_INSTANTIATE_IM2COL

}  // namespace prm::cpu
