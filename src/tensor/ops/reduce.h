// Sums and means. Accumulation is in double for float32 and float64 alike.
//   sum(x):                 all elements -> a 0-dim tensor (shape {}, one element)
//   sum(x, dims, keepdim):  over the listed dims (negative counts from the end; each at most
//                           once; an empty list means every dim, as torch); keepdim keeps them
//                           as size 1
//   mean(...):              the sum divided by the number of elements summed
//   sum_to(x, shape):       x summed down to `shape`, a shape x broadcasts from (reduces
//                           broadcast gradients: leading extra dims and dims where shape has 1)
// Gradients, with g = dL/dout: sum: dx = g broadcast back over the summed dims;
// mean: dx = g / count broadcast back; sum_to: dx = g broadcast back to x's shape.
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace prm {

// Named forward / backward pairs (tensor/autograd.h); sum and sum(dims) are forward + node.
Tensor sum_forward(const Tensor& x);
Tensor sum_backward(const Tensor& g, const Shape& x_shape);
Tensor sum_dims_forward(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
Tensor sum_dims_backward(const Tensor& g, const Shape& x_shape, const std::vector<int64_t>& dims);

Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor sum_to(const Tensor& x, const Shape& shape);

}  // namespace prm
