// Convolution helpers with no autograd: im2col / col2im (the math is in im2col_math.h) and the
// per-channel bias of a conv output. CPU twins in cpu/im2col.cpp, CUDA twins in cuda/im2col.cu.
// All work on N images at once; col is [N][C*kh*kw][Ho*Wo], x and dx are [N][C][H][W].
//   im2col:           col = im2col(x)                              (overwrites col)
//   col2im:           dx = col2im(dcol), the adjoint of im2col     (overwrites dx: an
//                                                                   activation gradient)
//   add_channel_bias: out[n][c][i] += bias[c], out is [N][C][HW]   (accumulates into out)
// The bias gradient is a GEMM against a vector of ones (see ops/conv2d.cpp).
#pragma once
#include <cstdint>

#include "kernels/im2col_math.h"

namespace prm::cpu {
template <typename T>
void im2col(T* col, const T* x, int64_t N, int64_t C, int64_t H, int64_t W, ConvWindow win);
template <typename T>
void col2im(T* dx, const T* dcol, int64_t N, int64_t C, int64_t H, int64_t W, ConvWindow win);
template <typename T>
void add_channel_bias(T* out, const T* bias, int64_t N, int64_t C, int64_t HW);
}  // namespace prm::cpu

namespace prm::cuda {
template <typename T>
void im2col(T* col, const T* x, int64_t N, int64_t C, int64_t H, int64_t W, ConvWindow win);
template <typename T>
void col2im(T* dx, const T* dcol, int64_t N, int64_t C, int64_t H, int64_t W, ConvWindow win);
template <typename T>
void add_channel_bias(T* out, const T* bias, int64_t N, int64_t C, int64_t HW);
}  // namespace prm::cuda
