// Shape ops.
//   reshape(x, shape): a view of x with a new shape of the same numel (shares storage: writes
//     through one are seen through the other); one entry may be -1 and is inferred.
//     Gradient: dx = g reshaped back to x's shape (a view of g).
//   concat(xs, dim): the tensors joined along `dim` (negative counts from the end); all have the
//     same dtype, device, rank and sizes except along `dim`.
//     Gradient: dx_k = the slice of g that x_k filled.
//   narrow(x, dim, start, length): the `length` entries of x from `start` along `dim` (a copy;
//     rows of a batch, a channel range).
//     Gradient: dx = zeros of x's shape with g written into the slice [start, start + length).
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace prm {

Tensor reshape_forward(const Tensor& x, const Shape& shape);  // a view, no graph
Tensor reshape_backward(const Tensor& g, const Shape& x_shape);
Tensor reshape(const Tensor& x, const Shape& shape);

// What concat's forward and backward share: where each input lies in the output.
struct ConcatSaved {
  int64_t dim = 0, outer = 1, inner = 1;  // output = [outer, out_shape[dim] * inner] rows
  Shape out_shape;
  std::vector<Shape> shapes;      // each input's shape
  std::vector<int64_t> offsets;   // each input's first column in an output row
  std::vector<bool> wanted;       // each input's requires_grad
};
ConcatSaved concat_layout(const std::vector<Tensor>& xs, int64_t dim);  // validates
Tensor concat_forward(const std::vector<Tensor>& xs, const ConcatSaved& saved);
std::vector<Tensor> concat_backward(const Tensor& g, const ConcatSaved& saved);
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);

// What narrow's forward and backward share: the slice within x's rows.
struct NarrowSaved {
  int64_t dim = 0, start = 0, length = 0, inner = 1;  // x = [outer, x_shape[dim] * inner] rows
  Shape x_shape;
};
NarrowSaved narrow_layout(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor narrow_forward(const Tensor& x, const NarrowSaved& saved);
Tensor narrow_backward(const Tensor& g, const NarrowSaved& saved);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);

}  // namespace prm
