// Pooling over the spatial dimensions of x [N, C, H, W].
//
// max_pool2d: y[oh, ow] = max of the k x k window at (oh * s - p, ow * s - p), padding -inf,
//   floor mode: OH = (H + 2p - k) / s + 1. The forward saves the argmax of each window (the
//   first maximum in row-major scan order on ties, as torch); backward routes each gradient to
//   its window's argmax: dx[h, w] = sum of g over the windows whose argmax is (h, w).
//   Requires padding <= kernel / 2 (as torch), so no window lies entirely in the padding.
//
// adaptive_avg_pool2d: y[oh, ow] = mean of x over rows [floor(oh * H / OH), ceil((oh+1) * H / OH))
//   and the same rule for columns (torch's). Windows may overlap when H % OH != 0.
//   dx[h, w] = sum over the windows containing (h, w) of g / (window area).
//
// global_avg_pool2d: adaptive_avg_pool2d(x, 1, 1), [N, C, H, W] -> [N, C, 1, 1].
#pragma once
#include <cstdint>

#include "tensor/tensor.h"

namespace prm {

// What max_pool2d's forward saved: each window's argmax (h * W + w in its input plane).
struct MaxPool2dSaved {
  Tensor argmax;  // int64 [N, C, OH, OW]
  Shape x_shape;
  int64_t kernel = 1, stride = 1, padding = 0;
};
// saved null: nothing kept for a backward (on the CPU the maxima alone are computed; max_pool2d
// calls it so when no graph is recorded).
Tensor max_pool2d_forward(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding,
                          MaxPool2dSaved* saved);
Tensor max_pool2d_backward(const Tensor& g, const MaxPool2dSaved& saved);
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding);

Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor adaptive_avg_pool2d_backward(const Tensor& g, const Shape& x_shape);
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor global_avg_pool2d(const Tensor& x);

}  // namespace prm
