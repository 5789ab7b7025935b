// Per-element math shared by the CPU and CUDA elementwise kernels (cpu/elementwise.cpp,
// cuda/elementwise.cu): each twin loops over these functions and differs only in how it loops.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.h"

namespace prm {

enum class BinaryOp { add, sub, mul, div };
enum class UnaryOp { add_scalar, mul_scalar, pow_scalar, relu, sigmoid };

// Offset of the i-th element (row-major over s.size) in a tensor walked with strides s.stride.
// A stride of 0 re-reads the same element: that is how broadcasting is expressed.
PRM_HD int64_t strided_offset(int64_t i, const Strides& s) {
  int64_t offset = 0;
  for (int d = s.ndim - 1; d >= 0; --d) {
    const int64_t index = i % s.size[d];
    i /= s.size[d];
    offset += index * s.stride[d];
  }
  return offset;
}

// True when walking s is the plain 0, 1, 2, ... sequence (lets kernels skip the index math).
PRM_HD bool is_flat(const Strides& s) {
  return s.ndim == 0 || (s.ndim == 1 && s.stride[0] == 1);
}

// Merges neighbouring dims that every walk in `walks` (all of one shape) steps through as one
// (stride[d] == stride[d + 1] * size[d + 1] in each) and drops dims of size 1, so that runs get
// as long as the layouts allow: [K, C, H, W] against a per-channel [1, C, 1, 1] becomes
// [K, C, H*W] with the channel operand's last stride 0. The walks visit the same offsets in the
// same order as before.
inline void coalesce_walks(Strides* walks, int count) {
  Strides out[4];
  for (int w = 0; w < count; ++w) out[w].ndim = 0;
  const Strides& shape = walks[0];
  for (int d = 0; d < shape.ndim; ++d) {
    if (shape.size[d] == 1) continue;
    const int last = out[0].ndim - 1;
    bool merge = last >= 0;
    for (int w = 0; w < count && merge; ++w)
      merge = out[w].stride[last] == walks[w].stride[d] * walks[w].size[d];
    for (int w = 0; w < count; ++w) {
      if (merge) {
        out[w].size[last] *= walks[w].size[d];
        out[w].stride[last] = walks[w].stride[d];
      } else {
        out[w].size[out[w].ndim] = walks[w].size[d];
        out[w].stride[out[w].ndim] = walks[w].stride[d];
        ++out[w].ndim;
      }
    }
  }
  for (int w = 0; w < count; ++w) {
    if (out[w].ndim == 0) {  // a single element
      out[w].ndim = 1;
      out[w].size[0] = 1;
      out[w].stride[0] = 1;
    }
    walks[w] = out[w];
  }
}

template <typename T>
PRM_HD T binary_apply(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
  }
  return T(0);
}

// 1 / (1 + exp(-x)) without overflow for large |x|.
template <typename T>
PRM_HD T sigmoid_of(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

// `s` is the op's scalar (unused by relu and sigmoid). relu keeps NaN (x < 0 is false for NaN).
template <typename T>
PRM_HD T unary_apply(UnaryOp op, T x, T s) {
  switch (op) {
    case UnaryOp::add_scalar: return x + s;
    case UnaryOp::mul_scalar: return x * s;
    case UnaryOp::pow_scalar: return std::pow(x, s);
    case UnaryOp::relu: return x < T(0) ? T(0) : x;
    case UnaryOp::sigmoid: return sigmoid_of(x);
  }
  return T(0);
}

// d relu(x) / dx = [x > 0] (0 at the kink, as torch).
template <typename T>
PRM_HD T relu_grad(T dout, T inp) { return inp > T(0) ? dout : T(0); }

// d sigmoid(x) / dx = y (1 - y), from the saved output y.
template <typename T>
PRM_HD T sigmoid_grad(T dout, T out) { return dout * out * (T(1) - out); }

// d x^p / dx = p x^(p-1); exactly 0 for p = 0 (avoids 0 * inf at x = 0).
template <typename T>
PRM_HD T pow_scalar_grad(T dout, T inp, T p) {
  return p == T(0) ? T(0) : dout * p * std::pow(inp, p - T(1));
}


}  // namespace prm
