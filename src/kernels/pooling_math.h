// Per-element pooling math shared by the CPU and CUDA twins (see pooling.h). Index i runs over
// the outputs (forward) or the inputs (backward) of all N * C planes in row-major order; the max
// pool's forward takes its output's (row, column) in a plane instead.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.h"

namespace prm {

PRM_HD int64_t pool_min(int64_t a, int64_t b) { return a < b ? a : b; }
PRM_HD int64_t pool_max(int64_t a, int64_t b) { return a > b ? a : b; }

// ---- max pooling ----

// Output (oh, ow) of the plane x [H, W]: the window's maximum, into *out, and its plane index,
// into *argmax. Padding is -inf, so it never wins; a NaN wins and propagates, as in torch.
template <typename T>
PRM_HD void max_pool2d_window(int64_t oh, int64_t ow, T* out, int64_t* argmax, const T* x,
                              int64_t H, int64_t W, int64_t kernel, int64_t stride,
                              int64_t padding) {
  const int64_t h0 = oh * stride - padding, w0 = ow * stride - padding;
  const int64_t h_begin = pool_max(h0, 0), h_end = pool_min(h0 + kernel, H);
  const int64_t w_begin = pool_max(w0, 0), w_end = pool_min(w0 + kernel, W);
  T best = -INFINITY;
  int64_t best_index = h_begin * W + w_begin;
  for (int64_t h = h_begin; h < h_end; ++h)
    for (int64_t w = w_begin; w < w_end; ++w) {
      // Strict: the first maximum wins ties. Selects rather than a branch, which would
      // mispredict: which element wins depends on the data.
      const T v = x[h * W + w];
      const bool take = v > best || v != v;
      best = take ? v : best;
      best_index = take ? h * W + w : best_index;
    }
  *out = best;
  *argmax = best_index;
}

// The outputs o whose window [o * stride - padding, + kernel) contains input position x.
PRM_HD int64_t max_pool_first_window(int64_t x, int64_t kernel, int64_t stride, int64_t padding) {
  return x + padding < kernel ? 0 : (x + padding - kernel) / stride + 1;
}
PRM_HD int64_t max_pool_last_window(int64_t x, int64_t stride, int64_t padding, int64_t out_size) {
  return pool_min((x + padding) / stride, out_size - 1);
}

// Input i: the gradients of the windows that picked it.
template <typename T>
PRM_HD T max_pool2d_backward_one(int64_t i, const T* dout, const int64_t* argmax, int64_t H,
                                 int64_t W, int64_t OH, int64_t OW, int64_t kernel, int64_t stride,
                                 int64_t padding) {
  const int64_t w = i % W, h = (i / W) % H, plane = i / (W * H);
  const T* g = dout + plane * OH * OW;
  const int64_t* picked = argmax + plane * OH * OW;
  const int64_t oh_last = max_pool_last_window(h, stride, padding, OH);
  const int64_t ow_last = max_pool_last_window(w, stride, padding, OW);
  T sum = 0;
  for (int64_t oh = max_pool_first_window(h, kernel, stride, padding); oh <= oh_last; ++oh)
    for (int64_t ow = max_pool_first_window(w, kernel, stride, padding); ow <= ow_last; ++ow)
      if (picked[oh * OW + ow] == h * W + w) sum += g[oh * OW + ow];
  return sum;
}

// ---- adaptive average pooling ----

// Window o of `out_size` over `in_size`: [floor(o * in / out), ceil((o + 1) * in / out)).
PRM_HD int64_t adaptive_start(int64_t o, int64_t in_size, int64_t out_size) {
  return o * in_size / out_size;
}
PRM_HD int64_t adaptive_end(int64_t o, int64_t in_size, int64_t out_size) {
  return ((o + 1) * in_size + out_size - 1) / out_size;
}
// The windows containing input x: start(o) <= x  <=>  o <= ((x + 1) * out - 1) / in, and
// end(o) > x  <=>  o >= floor(x * out / in).
PRM_HD int64_t adaptive_first_window(int64_t x, int64_t in_size, int64_t out_size) {
  return x * out_size / in_size;
}
PRM_HD int64_t adaptive_last_window(int64_t x, int64_t in_size, int64_t out_size) {
  return pool_min(((x + 1) * out_size - 1) / in_size, out_size - 1);
}

template <typename T>
PRM_HD T adaptive_avg_pool2d_forward_one(int64_t i, const T* inp, int64_t H, int64_t W, int64_t OH,
                                         int64_t OW) {
  const int64_t ow = i % OW, oh = (i / OW) % OH, plane = i / (OW * OH);
  const T* x = inp + plane * H * W;
  const int64_t h_begin = adaptive_start(oh, H, OH), h_end = adaptive_end(oh, H, OH);
  const int64_t w_begin = adaptive_start(ow, W, OW), w_end = adaptive_end(ow, W, OW);
  T sum = 0;
  for (int64_t h = h_begin; h < h_end; ++h)
    for (int64_t w = w_begin; w < w_end; ++w) sum += x[h * W + w];
  return sum / static_cast<T>((h_end - h_begin) * (w_end - w_begin));
}

template <typename T>
PRM_HD T adaptive_avg_pool2d_backward_one(int64_t i, const T* dout, int64_t H, int64_t W,
                                          int64_t OH, int64_t OW) {
  const int64_t w = i % W, h = (i / W) % H, plane = i / (W * H);
  const T* g = dout + plane * OH * OW;
  const int64_t oh_last = adaptive_last_window(h, H, OH), ow_last = adaptive_last_window(w, W, OW);
  T sum = 0;
  for (int64_t oh = adaptive_first_window(h, H, OH); oh <= oh_last; ++oh) {
    const int64_t rows = adaptive_end(oh, H, OH) - adaptive_start(oh, H, OH);
    for (int64_t ow = adaptive_first_window(w, W, OW); ow <= ow_last; ++ow) {
      const int64_t cols = adaptive_end(ow, W, OW) - adaptive_start(ow, W, OW);
      sum += g[oh * OW + ow] / static_cast<T>(rows * cols);
    }
  }
  return sum;
}

}  // namespace prm
