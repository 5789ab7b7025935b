// Elementwise ops. Binary ops broadcast as NumPy does: shapes are aligned at their last dim and a
// dim of size 1 (or a missing leading dim) is repeated to match the other, e.g. [N,C,H,W] op
// [C,1,1] or [2,1,4] op [3,1] -> [2,3,4]. Both inputs must have the same float dtype and device.
//
// Gradients, with g = dL/dout and sum_to(t, shape) = t summed over the dims that were broadcast
// to reach the output (reduce.h), so every input gets a gradient of its own shape:
//   add:  da = sum_to(g, a)            db = sum_to(g, b)
//   sub:  da = sum_to(g, a)            db = sum_to(-g, b)
//   mul:  da = sum_to(g * b, a)        db = sum_to(g * a, b)
//   div:  da = sum_to(g / b, a)        db = sum_to(-g * a / b^2, b)
//   add_scalar(x, s) = x + s:          dx = g
//   mul_scalar(x, s) = x * s:          dx = g * s
//   pow_scalar(x, p) = x^p:            dx = g * p * x^(p-1)   (0 when p = 0)
//   relu(x) = max(x, 0):               dx = g * [x > 0]       (0 at the kink x = 0, as torch)
//   sigmoid(x) = 1 / (1 + exp(-x)):    dx = g * y * (1 - y), y = sigmoid(x)
//   expand(x, shape): x broadcast to `shape` (a copy):  dx = sum_to(g, x)
// Each op X is X_forward (no graph), X_backward (named, callable directly; returns the input
// gradients from g and what the forward saved, explicitly) and X = forward + autograd node
// (tensor/autograd.h states what a node keeps). The binary backwards return both gradients;
// one that is not needed (need_a / need_b false) is left undefined.
// The operators are the obvious compositions (a - s = add_scalar(a, -s), s / a =
// mul_scalar(pow_scalar(a, -1), s), -a = mul_scalar(a, -1)).
#pragma once
#include "tensor/tensor.h"

namespace prm {

// The broadcast shape of a and b, or prm::Error naming `op` and both shapes.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

enum class BinaryOp;  // kernels/elementwise_math.h
// out = a op b over the broadcast shape (the forward of add, sub, mul and div).
Tensor binary_forward(BinaryOp op, const char* name, const Tensor& a, const Tensor& b);

struct BinaryGrads {
  Tensor da, db;
};
BinaryGrads add_backward(const Tensor& g, const Shape& a_shape, const Shape& b_shape, bool need_a,
                         bool need_b);
BinaryGrads sub_backward(const Tensor& g, const Shape& a_shape, const Shape& b_shape, bool need_a,
                         bool need_b);
BinaryGrads mul_backward(const Tensor& g, const Tensor& a, const Tensor& b, bool need_a,
                         bool need_b);
BinaryGrads div_backward(const Tensor& g, const Tensor& a, const Tensor& b, bool need_a,
                         bool need_b);
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);

Tensor add_scalar_forward(const Tensor& a, double s);
Tensor add_scalar_backward(const Tensor& g);  // g itself
Tensor add_scalar(const Tensor& a, double s);
Tensor mul_scalar_forward(const Tensor& a, double s);
Tensor mul_scalar_backward(const Tensor& g, double s);
Tensor mul_scalar(const Tensor& a, double s);
Tensor pow_scalar_forward(const Tensor& a, double p);
Tensor pow_scalar_backward(const Tensor& g, const Tensor& a, double p);
Tensor pow_scalar(const Tensor& a, double p);

Tensor relu_forward(const Tensor& x);
Tensor relu_backward(const Tensor& g, const Tensor& x);
Tensor relu(const Tensor& x);
Tensor sigmoid_forward(const Tensor& x);
Tensor sigmoid_backward(const Tensor& g, const Tensor& y);  // y = sigmoid(x), the saved output
Tensor sigmoid(const Tensor& x);

Tensor expand_forward(const Tensor& x, const Shape& shape);
Tensor expand_backward(const Tensor& g, const Shape& x_shape);  // sum_to(g, x_shape)
Tensor expand(const Tensor& x, const Shape& shape);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(double s, const Tensor& a);
Tensor operator-(const Tensor& a);

}  // namespace prm
