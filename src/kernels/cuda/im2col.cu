// CUDA twins of the im2col kernels: one thread per element over the math of im2col_math.h
// (adjacent threads write adjacent columns, so the stores coalesce).
#include "kernels/cuda/launch.cuh"
#include "kernels/im2col.h"

namespace prm::cuda {

template <typename T>
void im2col(T* col, const T* x, int64_t N, int64_t C, int64_t H, int64_t W, ConvWindow win) {
  const int64_t Ho = win.out_h(H), Wo = win.out_w(W);
  parallel_for(N * C * win.kh * win.kw * Ho * Wo, [=] __device__(int64_t i) {
    const int64_t ox = i % Wo;
    int64_t rest = i / Wo;
    const int64_t oy = rest % Ho;
    rest /= Ho;
    const int64_t kj = rest % win.kw;
    rest /= win.kw;
    const int64_t ki = rest % win.kh;
    rest /= win.kh;
    const int64_t c = rest % C, n = rest / C;
    col[i] = im2col_value(x + n * C * H * W, H, W, win, c, ki, kj, oy, ox);
  });
}

template <typename T>
void col2im(T* dx, const T* dcol, int64_t N, int64_t C, int64_t H, int64_t W, ConvWindow win) {
  const int64_t col_image = C * win.kh * win.kw * win.out_h(H) * win.out_w(W);
  parallel_for(N * C * H * W, [=] __device__(int64_t i) {
    const int64_t ix = i % W;
    const int64_t iy = (i / W) % H;
    const int64_t c = (i / (H * W)) % C, n = i / (C * H * W);
    dx[i] = col2im_value(dcol + n * col_image, H, W, win, c, iy, ix);
  });
}

template <typename T>
void add_channel_bias(T* out, const T* bias, int64_t N, int64_t C, int64_t HW) {
  parallel_for(N * C * HW, [=] __device__(int64_t i) { out[i] += bias[(i / HW) % C]; });
}

#define PRM_INSTANTIATE_IM2COL(T)                                                        \
  template void im2col<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, ConvWindow); \
  template void col2im<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, ConvWindow); \
  template void add_channel_bias<T>(T*, const T*, int64_t, int64_t, int64_t);
PRM_INSTANTIATE_IM2COL(float)
PRM_INSTANTIATE_IM2COL(double)
#undef PRM_INSTANTIATE_IM2COL

}  // namespace prm::cuda
