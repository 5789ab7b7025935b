// Elementwise ops: forward through the strided kernels of kernels/elementwise.h, backward as
// stated in elementwise.h (broadcast gradients are summed back by sum_to).
#include "tensor/ops/elementwise.h"

#include <algorithm>

#include "kernels/elementwise.h"
#include "kernels/elementwise_layout.h"
#include "tensor/autograd.h"
#include "tensor/ops/reduce.h"

namespace prm {

namespace {

void check_binary(const char* op, const Tensor& a, const Tensor& b) {
  check_float(op, a);
  check_float(op, b);
  check_same_dtype(op, a, b);
  check_same_device(op, a, b);
}

// out = a op b over the broadcast shape, no autograd.
Tensor binary_forward(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_binary(name, a, b);
  const Shape shape = broadcast_shapes(name, a.shape(), b.shape());
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  const std::vector<Strides> s =
      coalesce(shape, {broadcast_strides(a.shape(), shape), broadcast_strides(b.shape(), shape)});
  const int64_t n = out.numel();
  PRM_DISPATCH_FLOAT(a.dtype(), name, {
    scalar_t* o = out.data<scalar_t>();
    const scalar_t* pa = a.data<scalar_t>();
    const scalar_t* pb = b.data<scalar_t>();
    if (out.is_cuda()) {
      PRM_CUDA_ONLY(cuda::binary(op, o, pa, s[0], pb, s[1], n));
    } else {
      cpu::binary(op, o, pa, s[0], pb, s[1], n);
    }
  });
  return out;
}

// out = f(x, s) elementwise, no autograd.
Tensor unary_forward(UnaryOp op, const char* name, const Tensor& x, double s) {
  check_float(name, x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  const int64_t n = x.numel();
  PRM_DISPATCH_FLOAT(x.dtype(), name, {
    scalar_t* o = out.data<scalar_t>();
    const scalar_t* i = x.data<scalar_t>();
    const scalar_t scalar = static_cast<scalar_t>(s);
    if (x.is_cuda()) {
      PRM_CUDA_ONLY(cuda::unary(op, o, i, scalar, n));
    } else {
      cpu::unary(op, o, i, scalar, n);
    }
  });
  return out;
}

}  // namespace

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t d = 0; d < n; ++d) {
    const int64_t da = d < n - a.size() ? 1 : a[d - (n - a.size())];
    const int64_t db = d < n - b.size() ? 1 : b[d - (n - b.size())];
    PRM_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ",
              shape_str(b), " cannot be broadcast together (", da, " vs ", db,
              " in dim ", d, " of the result)");
    out[d] = da == 1 ? db : da;
  }
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::add, "add", a, b);
  const Shape sa = a.shape(), sb = b.shape();
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  attach_grad_fn(out, "add", {a, b}, [sa, sb, ga, gb](const Tensor& g) {
    return std::vector<Tensor>{ga ? sum_to(g, sa) : Tensor(), gb ? sum_to(g, sb) : Tensor()};
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::sub, "sub", a, b);
  const Shape sa = a.shape(), sb = b.shape();
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  attach_grad_fn(out, "sub", {a, b}, [sa, sb, ga, gb](const Tensor& g) {
    return std::vector<Tensor>{ga ? sum_to(g, sa) : Tensor(),
                               gb ? sum_to(mul_scalar(g, -1.0), sb) : Tensor()};
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::mul, "mul", a, b);
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  attach_grad_fn(out, "mul", {a, b}, [a, b, ga, gb](const Tensor& g) {
    return std::vector<Tensor>{ga ? sum_to(mul(g, b), a.shape()) : Tensor(),
                               gb ? sum_to(mul(g, a), b.shape()) : Tensor()};
  });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::div, "div", a, b);
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  attach_grad_fn(out, "div", {a, b}, [a, b, ga, gb](const Tensor& g) {
    Tensor da = ga ? sum_to(div(g, b), a.shape()) : Tensor();
    Tensor db = gb ? sum_to(mul_scalar(div(mul(g, a), mul(b, b)), -1.0), b.shape()) : Tensor();
    return std::vector<Tensor>{da, db};
  });
  return out;
}

Tensor add_scalar(const Tensor& a, double s) {
  Tensor out = unary_forward(UnaryOp::add_scalar, "add_scalar", a, s);
  attach_grad_fn(out, "add_scalar", {a},
                 [](const Tensor& g) { return std::vector<Tensor>{g.clone()}; });
  return out;
}

Tensor mul_scalar(const Tensor& a, double s) {
  Tensor out = unary_forward(UnaryOp::mul_scalar, "mul_scalar", a, s);
  attach_grad_fn(out, "mul_scalar", {a},
                 [s](const Tensor& g) { return std::vector<Tensor>{mul_scalar(g, s)}; });
  return out;
}

Tensor pow_scalar(const Tensor& a, double p) {
  Tensor out = unary_forward(UnaryOp::pow_scalar, "pow_scalar", a, p);
  attach_grad_fn(out, "pow_scalar", {a}, [a, p](const Tensor& g) {
    Tensor da = Tensor::empty(a.shape(), a.dtype(), a.device());
    const int64_t n = a.numel();
    PRM_DISPATCH_FLOAT(a.dtype(), "pow_scalar", {
      scalar_t* d = da.data<scalar_t>();
      const scalar_t* dout = g.data<scalar_t>();
      const scalar_t* x = a.data<scalar_t>();
      const scalar_t exponent = static_cast<scalar_t>(p);
      if (a.is_cuda()) {
        PRM_CUDA_ONLY(cuda::pow_scalar_backward(d, dout, x, exponent, n));
      } else {
        cpu::pow_scalar_backward(d, dout, x, exponent, n);
      }
    });
    return std::vector<Tensor>{da};
  });
  return out;
}

Tensor relu(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::relu, "relu", x, 0.0);
  attach_grad_fn(out, "relu", {x}, [x](const Tensor& g) {
    Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
    const int64_t n = x.numel();
    PRM_DISPATCH_FLOAT(x.dtype(), "relu", {
      scalar_t* d = dx.data<scalar_t>();
      const scalar_t* dout = g.data<scalar_t>();
      const scalar_t* inp = x.data<scalar_t>();
      if (x.is_cuda()) {
        PRM_CUDA_ONLY(cuda::relu_backward(d, dout, inp, n));
      } else {
        cpu::relu_backward(d, dout, inp, n);
      }
    });
    return std::vector<Tensor>{dx};
  });
  return out;
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::sigmoid, "sigmoid", x, 0.0);
  const Tensor y = out.detach();  // the output itself would be a reference cycle
  attach_grad_fn(out, "sigmoid", {x}, [y](const Tensor& g) {
    Tensor dx = Tensor::empty(y.shape(), y.dtype(), y.device());
    const int64_t n = y.numel();
    PRM_DISPATCH_FLOAT(y.dtype(), "sigmoid", {
      scalar_t* d = dx.data<scalar_t>();
      const scalar_t* dout = g.data<scalar_t>();
      const scalar_t* o = y.data<scalar_t>();
      if (y.is_cuda()) {
        PRM_CUDA_ONLY(cuda::sigmoid_backward(d, dout, o, n));
      } else {
        cpu::sigmoid_backward(d, dout, o, n);
      }
    });
    return std::vector<Tensor>{dx};
  });
  return out;
}

Tensor expand(const Tensor& x, const Shape& shape) {
  check_float("expand", x);
  bool fits = x.dim() <= static_cast<int64_t>(shape.size());
  const size_t lead = fits ? shape.size() - x.shape().size() : 0;
  for (size_t d = 0; d < x.shape().size() && fits; ++d)
    fits = x.shape()[d] == 1 || x.shape()[d] == shape[lead + d];
  PRM_CHECK(fits, "expand: cannot expand shape ", x.shape_str(), " to ", shape_str(shape));
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  const Strides s = coalesce(shape, {broadcast_strides(x.shape(), shape)})[0];
  const int64_t n = out.numel();
  PRM_DISPATCH_FLOAT(x.dtype(), "expand", {
    scalar_t* o = out.data<scalar_t>();
    const scalar_t* i = x.data<scalar_t>();
    if (x.is_cuda()) {
      PRM_CUDA_ONLY(cuda::broadcast_copy(o, i, s, n));
    } else {
      cpu::broadcast_copy(o, i, s, n);
    }
  });
  const Shape in_shape = x.shape();
  attach_grad_fn(out, "expand", {x}, [in_shape](const Tensor& g) {
    return std::vector<Tensor>{sum_to(g, in_shape)};
  });
  return out;
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double s) { return add_scalar(a, s); }
Tensor operator-(const Tensor& a, double s) { return add_scalar(a, -s); }
Tensor operator*(const Tensor& a, double s) { return mul_scalar(a, s); }
Tensor operator/(const Tensor& a, double s) { return mul_scalar(a, 1.0 / s); }
Tensor operator+(double s, const Tensor& a) { return add_scalar(a, s); }
Tensor operator-(double s, const Tensor& a) { return add_scalar(mul_scalar(a, -1.0), s); }
Tensor operator*(double s, const Tensor& a) { return mul_scalar(a, s); }
Tensor operator/(double s, const Tensor& a) { return mul_scalar(pow_scalar(a, -1.0), s); }
Tensor operator-(const Tensor& a) { return mul_scalar(a, -1.0); }

}  // namespace prm
