// Shape ops.
//   reshape(x, shape): a view of x with a new shape of the same numel (shares storage: writes
//     through one are seen through the other); one entry may be -1 and is inferred.
//     Gradient: dx = g reshaped back to x's shape (a fresh copy).
//   concat(xs, dim): the tensors joined along `dim` (negative counts from the end); all have the
//     same dtype, device, rank and sizes except along `dim`.
//     Gradient: dx_k = the slice of g that x_k filled.
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace prm {

Tensor reshape(const Tensor& x, const Shape& shape);
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);

}  // namespace prm
