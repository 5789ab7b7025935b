// Shape ops: reshape (a view) and concat, with their backward as stated in shape.h.
#include "tensor/ops/shape.h"

#include "kernels/elementwise.h"
#include "tensor/autograd.h"

namespace prm {

Tensor reshape(const Tensor& x, const Shape& shape) {
  Shape target = shape;
  int64_t inferred = -1, known = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == -1) {
      PRM_CHECK(inferred < 0, "reshape: more than one -1 in ", shape_str(shape));
      inferred = static_cast<int64_t>(d);
    } else {
      PRM_CHECK(shape[d] >= 0, "reshape: invalid size ", shape[d], " in ", shape_str(shape));
      known *= shape[d];
    }
  }
  if (inferred >= 0 && known > 0) target[inferred] = x.numel() / known;
  PRM_CHECK(shape_numel(target) == x.numel() && (inferred < 0 || known > 0),
            "reshape: cannot view ", x.shape_str(), " (", x.numel(), " elements) as ",
            shape_str(shape));
  Tensor out = x.detach();  // same storage
  out.impl().shape = target;
  const Shape in_shape = x.shape();
  attach_grad_fn(out, "reshape", {x}, [in_shape](const Tensor& g) {
    return std::vector<Tensor>{reshape(g.clone(), in_shape)};
  });
  return out;
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  PRM_CHECK(!xs.empty(), "concat: no tensors given");
  const Tensor& first = xs[0];
  check_float("concat", first);
  const int64_t nd = first.dim();
  PRM_CHECK(nd > 0, "concat: cannot join 0-dim tensors");
  PRM_CHECK(dim >= -nd && dim < nd, "concat: dim ", dim, " out of range for shape ",
            first.shape_str());
  const int64_t d = dim < 0 ? dim + nd : dim;
  Shape out_shape = first.shape();
  out_shape[d] = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    const Tensor& x = xs[k];
    check_same_dtype("concat", first, x);
    check_same_device("concat", first, x);
    bool fits = x.dim() == nd;
    for (int64_t j = 0; j < nd && fits; ++j) fits = j == d || x.shape()[j] == first.shape()[j];
    PRM_CHECK(fits, "concat: tensor ", k, " of shape ", x.shape_str(), " does not match tensor 0 ",
              "of shape ", first.shape_str(), " outside dim ", d);
    out_shape[d] += x.shape()[d];
  }
  int64_t outer = 1, inner = 1;
  for (int64_t j = 0; j < d; ++j) outer *= out_shape[j];
  for (int64_t j = d + 1; j < nd; ++j) inner *= out_shape[j];
  const int64_t row = out_shape[d] * inner;  // one outer row of the output

  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
  int64_t offset = 0;
  std::vector<int64_t> offsets;
  for (const Tensor& x : xs) {
    const int64_t x_row = x.shape()[d] * inner;
    PRM_DISPATCH_FLOAT(x.dtype(), "concat", {
      scalar_t* o = out.data<scalar_t>();
      const scalar_t* i = x.data<scalar_t>();
      if (x.is_cuda()) {
        PRM_CUDA_ONLY(cuda::copy_into_slice(o, i, outer, x_row, row, offset));
      } else {
        cpu::copy_into_slice(o, i, outer, x_row, row, offset);
      }
    });
    offsets.push_back(offset);
    offset += x_row;
  }

  std::vector<Shape> shapes;
  std::vector<bool> wanted;
  for (const Tensor& x : xs) {
    shapes.push_back(x.shape());
    wanted.push_back(x.requires_grad());
  }
  auto backward = [shapes, wanted, offsets, outer, inner, row, d](const Tensor& g) {
    std::vector<Tensor> grads(shapes.size());
    for (size_t k = 0; k < shapes.size(); ++k) {
      if (!wanted[k]) continue;
      grads[k] = Tensor::empty(shapes[k], g.dtype(), g.device());
      const int64_t x_row = shapes[k][d] * inner;
      PRM_DISPATCH_FLOAT(g.dtype(), "concat", {
        scalar_t* o = grads[k].data<scalar_t>();
        const scalar_t* i = g.data<scalar_t>();
        if (g.is_cuda()) {
          PRM_CUDA_ONLY(cuda::copy_from_slice(o, i, outer, x_row, row, offsets[k]));
        } else {
          cpu::copy_from_slice(o, i, outer, x_row, row, offsets[k]);
        }
      });
    }
    return grads;
  };
  attach_grad_fn(out, "concat", xs, backward);
  return out;
}

}  // namespace prm
