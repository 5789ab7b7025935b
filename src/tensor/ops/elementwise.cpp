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

// out = f(x, s) elementwise, no autograd.
Tensor unary_forward(UnaryOp op, const char* name, const Tensor& x, double s) {
  check_float(name, x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  PRM_DISPATCH_FLOAT(x.dtype(), name, {
    launch<Unary, scalar_t>(x.device(), op, out.data<scalar_t>(), x.data<scalar_t>(),
                            static_cast<scalar_t>(s), x.numel());
  });
  return out;
}

// dx[i] = K(g[i], saved[i], scalar) through one of the elementwise backward kernels. With
// batched cotangents (g [K, ...], saved [1, ...]) the local derivative is formed once and
// broadcast: dx = g * K(1, saved).
template <template <class> class K, typename... Scalar>
Tensor pointwise_backward(const char* name, const Tensor& g, const Tensor& saved,
                          Scalar... scalar) {
  if (g.shape() != saved.shape()) {
    const Tensor ones = Tensor::full(saved.shape(), 1.0, saved.dtype(), saved.device());
    return mul(g, pointwise_backward<K>(name, ones, saved, scalar...));
  }
  Tensor dx = Tensor::empty(saved.shape(), saved.dtype(), saved.device());
  PRM_DISPATCH_FLOAT(saved.dtype(), name, {
    launch<K, scalar_t>(saved.device(), dx.data<scalar_t>(), g.data<scalar_t>(),
                        saved.data<scalar_t>(), static_cast<scalar_t>(scalar)..., saved.numel());
  });
  return dx;
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

Tensor binary_forward(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_binary(name, a, b);
  const Shape shape = broadcast_shapes(name, a.shape(), b.shape());
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  const std::vector<Strides> s =
      coalesce(shape, {broadcast_strides(a.shape(), shape), broadcast_strides(b.shape(), shape)});
  PRM_DISPATCH_FLOAT(a.dtype(), name, {
    launch<Binary, scalar_t>(a.device(), op, out.data<scalar_t>(), a.data<scalar_t>(), s[0],
                             b.data<scalar_t>(), s[1], out.numel());
  });
  return out;
}

BinaryGrads add_backward(const Tensor& g, const Shape& a_shape, const Shape& b_shape, bool need_a,
                         bool need_b) {
  return {need_a ? sum_to(g, grad_shape(a_shape)) : Tensor(),
          need_b ? sum_to(g, grad_shape(b_shape)) : Tensor()};
}

BinaryGrads sub_backward(const Tensor& g, const Shape& a_shape, const Shape& b_shape, bool need_a,
                         bool need_b) {
  return {need_a ? sum_to(g, grad_shape(a_shape)) : Tensor(),
          need_b ? sum_to(mul_scalar(g, -1.0), grad_shape(b_shape)) : Tensor()};
}

BinaryGrads mul_backward(const Tensor& g, const Tensor& a, const Tensor& b, bool need_a,
                         bool need_b) {
  return {need_a ? sum_to(mul(g, b), grad_shape(a.shape())) : Tensor(),
          need_b ? sum_to(mul(g, a), grad_shape(b.shape())) : Tensor()};
}

BinaryGrads div_backward(const Tensor& g, const Tensor& a, const Tensor& b, bool need_a,
                         bool need_b) {
  return {need_a ? sum_to(div(g, b), grad_shape(a.shape())) : Tensor(),
          need_b ? sum_to(mul_scalar(div(mul(g, a), mul(b, b)), -1.0), grad_shape(b.shape()))
                 : Tensor()};
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::add, "add", a, b);
  const Shape sa = a.shape(), sb = b.shape();
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  attach_grad_fn(out, "add", "add_backward", {a, b}, [sa, sb, ga, gb](const Tensor& g) {
    BinaryGrads d = add_backward(g, sa, sb, ga, gb);
    return std::vector<Tensor>{d.da, d.db};
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::sub, "sub", a, b);
  const Shape sa = a.shape(), sb = b.shape();
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  attach_grad_fn(out, "sub", "sub_backward", {a, b}, [sa, sb, ga, gb](const Tensor& g) {
    BinaryGrads d = sub_backward(g, sa, sb, ga, gb);
    return std::vector<Tensor>{d.da, d.db};
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::mul, "mul", a, b);
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  attach_grad_fn(out, "mul", "mul_backward", {a, b},
                 [a = a.detach(), b = b.detach(), ga, gb](const Tensor& g) {
                   BinaryGrads d = mul_backward(g, a, b, ga, gb);
                   return std::vector<Tensor>{d.da, d.db};
                 });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::div, "div", a, b);
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  attach_grad_fn(out, "div", "div_backward", {a, b},
                 [a = a.detach(), b = b.detach(), ga, gb](const Tensor& g) {
                   BinaryGrads d = div_backward(g, a, b, ga, gb);
                   return std::vector<Tensor>{d.da, d.db};
                 });
  return out;
}

Tensor add_scalar_forward(const Tensor& a, double s) {
  return unary_forward(UnaryOp::add_scalar, "add_scalar", a, s);
}
Tensor add_scalar_backward(const Tensor& g) { return g; }
Tensor add_scalar(const Tensor& a, double s) {
  Tensor out = add_scalar_forward(a, s);
  attach_grad_fn(out, "add_scalar", "add_scalar_backward", {a},
                 [](const Tensor& g) { return std::vector<Tensor>{add_scalar_backward(g)}; });
  return out;
}

Tensor mul_scalar_forward(const Tensor& a, double s) {
  return unary_forward(UnaryOp::mul_scalar, "mul_scalar", a, s);
}
Tensor mul_scalar_backward(const Tensor& g, double s) { return mul_scalar_forward(g, s); }
Tensor mul_scalar(const Tensor& a, double s) {
  Tensor out = mul_scalar_forward(a, s);
  attach_grad_fn(out, "mul_scalar", "mul_scalar_backward", {a},
                 [s](const Tensor& g) { return std::vector<Tensor>{mul_scalar_backward(g, s)}; });
  return out;
}

Tensor pow_scalar_forward(const Tensor& a, double p) {
  return unary_forward(UnaryOp::pow_scalar, "pow_scalar", a, p);
}
Tensor pow_scalar_backward(const Tensor& g, const Tensor& a, double p) {
  return pointwise_backward<PowScalarBackward>("pow_scalar_backward", g, a, p);
}
Tensor pow_scalar(const Tensor& a, double p) {
  Tensor out = pow_scalar_forward(a, p);
  attach_grad_fn(out, "pow_scalar", "pow_scalar_backward", {a},
                 [a = a.detach(), p](const Tensor& g) {
                   return std::vector<Tensor>{pow_scalar_backward(g, a, p)};
                 });
  return out;
}

Tensor relu_forward(const Tensor& x) { return unary_forward(UnaryOp::relu, "relu", x, 0.0); }
Tensor relu_backward(const Tensor& g, const Tensor& x) {
  return pointwise_backward<ReluBackward>("relu_backward", g, x);
}
Tensor relu(const Tensor& x) {
  Tensor out = relu_forward(x);
  attach_grad_fn(out, "relu", "relu_backward", {x}, [x = x.detach()](const Tensor& g) {
    return std::vector<Tensor>{relu_backward(g, x)};
  });
  return out;
}

Tensor sigmoid_forward(const Tensor& x) {
  return unary_forward(UnaryOp::sigmoid, "sigmoid", x, 0.0);
}
Tensor sigmoid_backward(const Tensor& g, const Tensor& y) {
  return pointwise_backward<SigmoidBackward>("sigmoid_backward", g, y);
}
Tensor sigmoid(const Tensor& x) {
  Tensor out = sigmoid_forward(x);
  attach_grad_fn(out, "sigmoid", "sigmoid_backward", {x}, [y = out.detach()](const Tensor& g) {
    return std::vector<Tensor>{sigmoid_backward(g, y)};
  });
  return out;
}

Tensor expand_forward(const Tensor& x, const Shape& shape) {
  check_float("expand", x);
  bool fits = x.dim() <= static_cast<int64_t>(shape.size());
  const size_t lead = fits ? shape.size() - x.shape().size() : 0;
  for (size_t d = 0; d < x.shape().size() && fits; ++d)
    fits = x.shape()[d] == 1 || x.shape()[d] == shape[lead + d];
  PRM_CHECK(fits, "expand: cannot expand shape ", x.shape_str(), " to ", shape_str(shape));
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  const Strides s = coalesce(shape, {broadcast_strides(x.shape(), shape)})[0];
  PRM_DISPATCH_FLOAT(x.dtype(), "expand", {
    launch<BroadcastCopy, scalar_t>(x.device(), out.data<scalar_t>(), x.data<scalar_t>(), s,
                                    out.numel());
  });
  return out;
}
Tensor expand_backward(const Tensor& g, const Shape& x_shape) {
  return sum_to(g, grad_shape(x_shape));
}
Tensor expand(const Tensor& x, const Shape& shape) {
  Tensor out = expand_forward(x, shape);
  attach_grad_fn(out, "expand", "expand_backward", {x}, [x_shape = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{expand_backward(g, x_shape)};
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
