// Elementwise kernels, written once for both devices (kernels/dispatch.h) over the math of
// elementwise_math.h; registered in cpu/elementwise.cpp and cuda/elementwise.cu. All of them
// WRITE (=) their output, gradients included (these are activation gradients; the ops reduce
// broadcast gradients).
//   Binary:            out[i] = a[off(i, sa)] op b[off(i, sb)]   (broadcasting through strides)
//   Unary:             out[i] = f(inp[i], scalar)    (add/mul/pow scalar, relu, sigmoid)
//   BroadcastCopy:     out[i] = inp[off(i, s)]                    (expand to a larger shape)
//   ReluBackward:      dinp[i] = dout[i] * [inp[i] > 0]
//   SigmoidBackward:   dinp[i] = dout[i] * out[i] * (1 - out[i])
//   PowScalarBackward: dinp[i] = dout[i] * p * inp[i]^(p-1)
//   CopyIntoSlice:     rows of inp [outer, inner_inp] into columns [offset, offset+inner_inp)
//                      of out [outer, inner_out]             (concat forward, narrow backward)
//   CopyFromSlice:     the reverse: out [outer, inner_out] from columns [offset, ...) of
//                      inp [outer, inner_inp]                 (concat backward, narrow)
//   (both with an optional scale, null for none: inp ⊙ scale copied in, scale shaped as inp,
//   or scale ⊙ the slice copied out, scale shaped as out; each product rounded as Binary's mul
//   rounds it. CopyIntoSlice also takes an optional row_scale [outer], applied first:
//   (inp[r][k] * row_scale[r]) * scale[r][k]. The fused excitation-backprop rule of
//   tensor/ops/conv2d.cpp uses them.)
// Strided walks first merge the dims they can walk as one (coalesce_walks), then go by runs of
// the innermost dim (Loop::for_each_run): strided_offset once per run, then a loop with the
// common steps (1 and 0) as constants, which the CPU compiler vectorises.
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/elementwise_math.h"

namespace prm {

template <class Loop>
struct Binary {
  template <typename T>
  static void run(BinaryOp op, T* out, const T* a, const Strides& sa, const T* b,
                  const Strides& sb, int64_t n) {
    switch (op) {
      case BinaryOp::add: return run_op<BinaryOp::add>(out, a, sa, b, sb, n);
      case BinaryOp::sub: return run_op<BinaryOp::sub>(out, a, sa, b, sb, n);
      case BinaryOp::mul: return run_op<BinaryOp::mul>(out, a, sa, b, sb, n);
      case BinaryOp::div: return run_op<BinaryOp::div>(out, a, sa, b, sb, n);
    }
  }
  // The op is a template argument so that each loop is compiled for one op (vectorisable).
  template <BinaryOp OP, typename T>
  static void run_op(T* out, const T* a, const Strides& sa, const T* b, const Strides& sb,
                     int64_t n) {
    if (n == 0) return;
    Strides walks[2] = {sa, sb};  // sa and sb share their sizes
    coalesce_walks(walks, 2);
    if (is_flat(walks[0]) && is_flat(walks[1])) {
      Loop::for_each(n, PRM_LAMBDA(int64_t i) { out[i] = binary_apply(OP, a[i], b[i]); });
      return;
    }
    const Strides ca = walks[0], cb = walks[1];
    const int64_t inner = ca.size[ca.ndim - 1];
    Loop::for_each_run(n / inner, inner, PRM_LAMBDA(int64_t r, int64_t begin, int64_t end) {
      const int last = ca.ndim - 1;
      const T* ra = a + strided_offset(r * inner, ca);
      const T* rb = b + strided_offset(r * inner, cb);
      T* ro = out + r * inner;
      const int64_t step_a = ca.stride[last], step_b = cb.stride[last];
      // The common runs get loops with constant steps (a run against a broadcast value, or two
      // contiguous runs), which vectorise; other steps take the general loop.
      if (step_a == 1 && step_b == 0) {
        const T vb = rb[0];
        for (int64_t k = begin; k < end; ++k) ro[k] = binary_apply(OP, ra[k], vb);
      } else if (step_a == 0 && step_b == 1) {
        const T va = ra[0];
        for (int64_t k = begin; k < end; ++k) ro[k] = binary_apply(OP, va, rb[k]);
      } else if (step_a == 1 && step_b == 1) {
        for (int64_t k = begin; k < end; ++k) ro[k] = binary_apply(OP, ra[k], rb[k]);
      } else {
        for (int64_t k = begin; k < end; ++k)
          ro[k] = binary_apply(OP, ra[k * step_a], rb[k * step_b]);
      }
    });
  }
};

template <class Loop>
struct Unary {
  template <typename T>
  static void run(UnaryOp op, T* out, const T* inp, T scalar, int64_t n) {
    switch (op) {
      case UnaryOp::add_scalar: return run_op<UnaryOp::add_scalar>(out, inp, scalar, n);
      case UnaryOp::mul_scalar: return run_op<UnaryOp::mul_scalar>(out, inp, scalar, n);
      case UnaryOp::pow_scalar: return run_op<UnaryOp::pow_scalar>(out, inp, scalar, n);
      case UnaryOp::relu: return run_op<UnaryOp::relu>(out, inp, scalar, n);
      case UnaryOp::sigmoid: return run_op<UnaryOp::sigmoid>(out, inp, scalar, n);
    }
  }
  template <UnaryOp OP, typename T>
  static void run_op(T* out, const T* inp, T scalar, int64_t n) {
    Loop::for_each(n, PRM_LAMBDA(int64_t i) { out[i] = unary_apply(OP, inp[i], scalar); });
  }
};

template <class Loop>
struct BroadcastCopy {
  template <typename T>
  static void run(T* out, const T* inp, const Strides& s, int64_t n) {
    if (n == 0) return;
    Strides walk = s;
    coalesce_walks(&walk, 1);
    if (is_flat(walk)) {
      Loop::for_each(n, PRM_LAMBDA(int64_t i) { out[i] = inp[i]; });
      return;
    }
    const Strides cs = walk;
    const int64_t inner = cs.size[cs.ndim - 1];
    Loop::for_each_run(n / inner, inner, PRM_LAMBDA(int64_t r, int64_t begin, int64_t end) {
      const T* ri = inp + strided_offset(r * inner, cs);
      const int64_t step = cs.stride[cs.ndim - 1];
      T* ro = out + r * inner;
      if (step == 0) {
        const T v = ri[0];
        for (int64_t k = begin; k < end; ++k) ro[k] = v;
      } else {
        for (int64_t k = begin; k < end; ++k) ro[k] = ri[k * step];
      }
    });
  }
};

template <class Loop>
struct ReluBackward {
  template <typename T>
  static void run(T* dinp, const T* dout, const T* inp, int64_t n) {
    Loop::for_each(n, PRM_LAMBDA(int64_t i) { dinp[i] = relu_grad(dout[i], inp[i]); });
  }
};

template <class Loop>
struct SigmoidBackward {
  template <typename T>
  static void run(T* dinp, const T* dout, const T* out, int64_t n) {
    Loop::for_each(n, PRM_LAMBDA(int64_t i) { dinp[i] = sigmoid_grad(dout[i], out[i]); });
  }
};

template <class Loop>
struct PowScalarBackward {
  template <typename T>
  static void run(T* dinp, const T* dout, const T* inp, T p, int64_t n) {
    Loop::for_each(n, PRM_LAMBDA(int64_t i) { dinp[i] = pow_scalar_grad(dout[i], inp[i], p); });
  }
};

template <class Loop>
struct CopyIntoSlice {
  template <typename T>
  static void run(T* out, const T* inp, const T* scale, int64_t outer, int64_t inner_inp,
                  int64_t inner_out, int64_t offset, const T* row_scale) {
    // Concatenation seen as [outer, inner] blocks: element k of row r of the slice sits at
    // column offset + k of row r of the whole. By runs of a row: contiguous on both sides, so
    // the CPU loop is a plain copy (or product).
    Loop::for_each_run(outer, inner_inp, PRM_LAMBDA(int64_t r, int64_t begin, int64_t end) {
      T* o = out + r * inner_out + offset;
      const T* in = inp + r * inner_inp;
      const T* s = scale == nullptr ? nullptr : scale + r * inner_inp;
      if (row_scale != nullptr) {
        const T f = row_scale[r];
        if (s == nullptr) {
          for (int64_t k = begin; k < end; ++k) o[k] = binary_apply(BinaryOp::mul, in[k], f);
        } else {
          for (int64_t k = begin; k < end; ++k)
            o[k] = binary_apply(BinaryOp::mul, binary_apply(BinaryOp::mul, in[k], f), s[k]);
        }
        return;
      }
      if (s == nullptr) {
        for (int64_t k = begin; k < end; ++k) o[k] = in[k];
        return;
      }
      for (int64_t k = begin; k < end; ++k) o[k] = binary_apply(BinaryOp::mul, in[k], s[k]);
    });
  }
};

template <class Loop>
struct CopyFromSlice {
  template <typename T>
  static void run(T* out, const T* inp, const T* scale, int64_t outer, int64_t inner_out,
                  int64_t inner_inp, int64_t offset) {
    Loop::for_each_run(outer, inner_out, PRM_LAMBDA(int64_t r, int64_t begin, int64_t end) {
      const T* in = inp + r * inner_inp + offset;
      T* o = out + r * inner_out;
      if (scale == nullptr) {
        for (int64_t k = begin; k < end; ++k) o[k] = in[k];
        return;
      }
      const T* s = scale + r * inner_out;
      for (int64_t k = begin; k < end; ++k) o[k] = binary_apply(BinaryOp::mul, s[k], in[k]);
    });
  }
};

}  // namespace prm
