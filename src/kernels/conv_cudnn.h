// The cuDNN convolution engine: the same three computations as the native im2col + GEMM path
// (see tensor/ops/conv2d.h), by cuDNN 9's legacy cudnnConvolution* API, NCHW, cross-correlation.
// Only compiled in builds with USE_CUDNN=1 (cuda/conv_cudnn.cu); include under #if PRM_USE_CUDNN.
// Algorithms come from cuDNN's heuristics (cached per shape), restricted to plain FMA math (no
// TF32) so that results agree with the native engine to float32 rounding; workspace comes from
// our caching allocator. x is [N][C][H][W], w is [O][C][kh][kw], y is [N][O][Ho][Wo].
//   cudnn_conv2d_forward:         y  = conv(x, w)                      (overwrites y)
//   cudnn_conv2d_backward_data:   dx = conv_transpose(dy, w)           (overwrites dx)
//   cudnn_conv2d_backward_filter: dw = Σ_n dy_n · im2col(x_n)ᵀ         (overwrites dw)
#pragma once
#include <cstdint>

#include "kernels/im2col_math.h"

namespace prm::cuda {

template <typename T>
void cudnn_conv2d_forward(T* y, const T* x, const T* w, int64_t N, int64_t C, int64_t H, int64_t W,
                          int64_t O, ConvWindow win);
template <typename T>
void cudnn_conv2d_backward_data(T* dx, const T* dy, const T* w, int64_t N, int64_t C, int64_t H,
                                int64_t W, int64_t O, ConvWindow win);
template <typename T>
void cudnn_conv2d_backward_filter(T* dw, const T* dy, const T* x, int64_t N, int64_t C, int64_t H,
                                  int64_t W, int64_t O, ConvWindow win);

}  // namespace prm::cuda
