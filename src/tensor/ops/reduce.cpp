// Sums and means: forward through kernels/reduce.h, backward by broadcasting the gradient back
// (expand), as stated in reduce.h.
#include "tensor/ops/reduce.h"

#include "kernels/elementwise_layout.h"
#include "kernels/reduce.h"
#include "tensor/autograd.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/shape.h"

namespace prm {

namespace {

// Which dims of x are summed; validates `dims` (range, repeats).
std::vector<bool> reduced_dims(const char* op, const Tensor& x, const std::vector<int64_t>& dims) {
  const int64_t nd = x.dim();
  std::vector<bool> reduced(nd, dims.empty());
  for (int64_t d : dims) {
    PRM_CHECK(d >= -nd && d < nd, op, ": dim ", d, " out of range for shape ", x.shape_str());
    const int64_t k = d < 0 ? d + nd : d;
    PRM_CHECK(!reduced[k], op, ": dim ", d, " given twice for shape ", x.shape_str());
    reduced[k] = true;
  }
  return reduced;
}

// The output shape with the summed dims kept as size 1.
Shape keepdim_shape(const Shape& shape, const std::vector<bool>& reduced) {
  Shape out = shape;
  for (size_t d = 0; d < shape.size(); ++d)
    if (reduced[d]) out[d] = 1;
  return out;
}

// Sum over the flagged dims, no autograd.
Tensor sum_flagged(const Tensor& x, const std::vector<bool>& reduced, bool keepdim) {
  const std::vector<int64_t> strides = contiguous_strides(x.shape());
  Shape out_shape, kept_sizes, kept_strides, red_sizes, red_strides;
  for (size_t d = 0; d < x.shape().size(); ++d) {
    if (reduced[d]) {
      red_sizes.push_back(x.shape()[d]);
      red_strides.push_back(strides[d]);
      if (keepdim) out_shape.push_back(1);
    } else {
      kept_sizes.push_back(x.shape()[d]);
      kept_strides.push_back(strides[d]);
      out_shape.push_back(x.shape()[d]);
    }
  }
  const Strides kept = coalesce(kept_sizes, {kept_strides})[0];
  const Strides red = coalesce(red_sizes, {red_strides})[0];
  const int64_t n_out = shape_numel(kept_sizes), n_red = shape_numel(red_sizes);
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  PRM_DISPATCH_FLOAT(x.dtype(), "sum", {
    launch<SumDims, scalar_t>(x.device(), out.data<scalar_t>(), x.data<scalar_t>(), kept, red,
                              n_out, n_red);
  });
  return out;
}

}  // namespace

Tensor sum_forward(const Tensor& x) {
  check_float("sum", x);
  Tensor out = Tensor::empty({}, x.dtype(), x.device());
  PRM_DISPATCH_FLOAT(x.dtype(), "sum", {
    launch<SumAll, scalar_t>(x.device(), out.data<scalar_t>(), x.data<scalar_t>(), x.numel());
  });
  return out;
}

Tensor sum_backward(const Tensor& g, const Shape& x_shape) { return expand(g, x_shape); }

Tensor sum(const Tensor& x) {
  Tensor out = sum_forward(x);
  attach_grad_fn(out, "sum", "sum_backward", {x}, [x_shape = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{sum_backward(g, x_shape)};
  });
  return out;
}

Tensor sum_dims_forward(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_float("sum", x);
  return sum_flagged(x, reduced_dims("sum", x, dims), keepdim);
}

Tensor sum_dims_backward(const Tensor& g, const Shape& x_shape, const std::vector<int64_t>& dims) {
  std::vector<bool> reduced(x_shape.size(), dims.empty());
  const int64_t nd = static_cast<int64_t>(x_shape.size());
  for (int64_t d : dims) reduced[d < 0 ? d + nd : d] = true;
  return expand(reshape(g, keepdim_shape(x_shape, reduced)), x_shape);
}

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor out = sum_dims_forward(x, dims, keepdim);
  attach_grad_fn(out, "sum", "sum_dims_backward", {x},
                 [x_shape = x.shape(), dims](const Tensor& g) {
                   return std::vector<Tensor>{sum_dims_backward(g, x_shape, dims)};
                 });
  return out;
}

Tensor mean(const Tensor& x) {
  check_float("mean", x);
  return mul_scalar(sum(x), 1.0 / static_cast<double>(x.numel()));
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_float("mean", x);
  const std::vector<bool> reduced = reduced_dims("mean", x, dims);
  int64_t count = 1;
  for (size_t d = 0; d < reduced.size(); ++d)
    if (reduced[d]) count *= x.shape()[d];
  return mul_scalar(sum(x, dims, keepdim), 1.0 / static_cast<double>(count));
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  PRM_CHECK(lead >= 0 && broadcast_shapes("sum_to", shape, x.shape()) == x.shape(),
            "sum_to: shape ", shape_str(shape), " does not broadcast to ", x.shape_str());
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && x.shape()[d] != 1)) dims.push_back(d);
  if (dims.empty()) return x;  // shapes equal (gradients may alias: tensor/autograd.h)
  return reshape(sum(x, dims, /*keepdim=*/true), shape);
}

}  // namespace prm
