// Shape ops: reshape (a view), concat and narrow, with their backward as stated in shape.h.
#include "tensor/ops/shape.h"

#include "kernels/elementwise.h"
#include "tensor/autograd.h"

namespace prm {

Tensor reshape_forward(const Tensor& x, const Shape& shape) {
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
  return out;
}

Tensor reshape_backward(const Tensor& g, const Shape& x_shape) {
  return reshape_forward(g, grad_shape(x_shape));  // a view of g (gradients may alias: tensor/autograd.h)
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  Tensor out = reshape_forward(x, shape);
  attach_grad_fn(out, "reshape", "reshape_backward", {x}, [x_shape = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{reshape_backward(g, x_shape)};
  });
  return out;
}

ConcatSaved concat_layout(const std::vector<Tensor>& xs, int64_t dim) {
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
  ConcatSaved saved;
  saved.dim = d;
  saved.out_shape = out_shape;
  for (int64_t j = 0; j < d; ++j) saved.outer *= out_shape[j];
  for (int64_t j = d + 1; j < nd; ++j) saved.inner *= out_shape[j];
  int64_t offset = 0;
  for (const Tensor& x : xs) {
    saved.shapes.push_back(x.shape());
    saved.offsets.push_back(offset);
    saved.wanted.push_back(x.requires_grad());
    offset += x.shape()[d] * saved.inner;
  }
  return saved;
}

Tensor concat_forward(const std::vector<Tensor>& xs, const ConcatSaved& s) {
  Tensor out = Tensor::empty(s.out_shape, xs[0].dtype(), xs[0].device());
  const int64_t row = s.out_shape[s.dim] * s.inner;  // one outer row of the output
  for (size_t k = 0; k < xs.size(); ++k) {
    const Tensor& x = xs[k];
    PRM_DISPATCH_FLOAT(x.dtype(), "concat", {
      launch<CopyIntoSlice, scalar_t>(x.device(), out.data<scalar_t>(), x.data<scalar_t>(),
                                      nullptr, s.outer, s.shapes[k][s.dim] * s.inner, row,
                                      s.offsets[k], nullptr);
    });
  }
  return out;
}

std::vector<Tensor> concat_backward(const Tensor& g, const ConcatSaved& s) {
  std::vector<Tensor> grads(s.shapes.size());
  const int64_t row = s.out_shape[s.dim] * s.inner;
  for (size_t k = 0; k < s.shapes.size(); ++k) {
    if (!s.wanted[k]) continue;
    grads[k] = Tensor::empty(s.shapes[k], g.dtype(), g.device());
    PRM_DISPATCH_FLOAT(g.dtype(), "concat_backward", {
      launch<CopyFromSlice, scalar_t>(g.device(), grads[k].data<scalar_t>(), g.data<scalar_t>(),
                                      nullptr, s.outer, s.shapes[k][s.dim] * s.inner, row,
                                      s.offsets[k]);
    });
  }
  return grads;
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  const ConcatSaved saved = concat_layout(xs, dim);
  Tensor out = concat_forward(xs, saved);
  attach_grad_fn(out, "concat", "concat_backward", xs,
                 [saved](const Tensor& g) { return concat_backward(g, saved); });
  return out;
}

NarrowSaved narrow_layout(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  check_float("narrow", x);
  const int64_t nd = x.dim();
  PRM_CHECK(nd > 0, "narrow: cannot slice a 0-dim tensor");
  PRM_CHECK(dim >= -nd && dim < nd, "narrow: dim ", dim, " out of range for shape ",
            x.shape_str());
  NarrowSaved s;
  s.dim = dim < 0 ? dim + nd : dim;
  s.start = start;
  s.length = length;
  s.x_shape = x.shape();
  PRM_CHECK(start >= 0 && length >= 0 && start + length <= x.shape()[s.dim], "narrow: [", start,
            ", ", start + length, ") is not inside dim ", s.dim, " of shape ", x.shape_str());
  for (int64_t j = s.dim + 1; j < nd; ++j) s.inner *= x.shape()[j];
  return s;
}

Tensor narrow_forward(const Tensor& x, const NarrowSaved& s) {
  Shape shape = s.x_shape;
  shape[s.dim] = s.length;
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  const int64_t row = s.x_shape[s.dim] * s.inner;  // one outer row of x
  const int64_t outer = row > 0 ? x.numel() / row : 0;
  PRM_DISPATCH_FLOAT(x.dtype(), "narrow", {
    launch<CopyFromSlice, scalar_t>(x.device(), out.data<scalar_t>(), x.data<scalar_t>(),
                                    nullptr, outer, s.length * s.inner, row, s.start * s.inner);
  });
  return out;
}

Tensor narrow_backward(const Tensor& g, const NarrowSaved& s) {
  // Batched cotangents: g and dx carry K in front when x's leading size is 1 (grad_shape); the
  // K copies are just more outer rows.
  Tensor dx = Tensor::zeros(grad_shape(s.x_shape), g.dtype(), g.device());
  const int64_t row = s.x_shape[s.dim] * s.inner;
  const int64_t outer = row > 0 ? dx.numel() / row : 0;
  PRM_DISPATCH_FLOAT(g.dtype(), "narrow_backward", {
    launch<CopyIntoSlice, scalar_t>(g.device(), dx.data<scalar_t>(), g.data<scalar_t>(),
                                    nullptr, outer, s.length * s.inner, row, s.start * s.inner,
                                    nullptr);
  });
  return dx;
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  const NarrowSaved saved = narrow_layout(x, dim, start, length);
  Tensor out = narrow_forward(x, saved);
  attach_grad_fn(out, "narrow", "narrow_backward", {x}, [saved](const Tensor& g) {
    return std::vector<Tensor>{narrow_backward(g, saved)};
  });
  return out;
}

}  // namespace prm
