// Elementwise kernels. CPU twins in cpu/elementwise.cpp, CUDA twins in cuda/elementwise.cu, same
// signatures; the per-element math is in elementwise_math.h. All of them WRITE (=) their output,
// gradients included (these are activation gradients; the ops reduce broadcast gradients).
//   binary:            out[i] = a[off(i, sa)] op b[off(i, sb)]   (broadcasting through strides)
//   unary:             out[i] = f(inp[i], scalar)    (add/mul/pow scalar, relu, sigmoid)
//   broadcast_copy:    out[i] = inp[off(i, s)]                    (expand to a larger shape)
//   relu_backward:     dinp[i] = dout[i] * [inp[i] > 0]
//   sigmoid_backward:  dinp[i] = dout[i] * out[i] * (1 - out[i])
//   pow_scalar_backward: dinp[i] = dout[i] * p * inp[i]^(p-1)
//   copy_into_slice:   rows of inp [outer, inner_inp] into columns [offset, offset+inner_inp)
//                      of out [outer, inner_out]             (concat forward)
//   copy_from_slice:   the reverse: out [outer, inner_out] from columns [offset, ...) of
//                      inp [outer, inner_inp]                 (concat backward)
#pragma once
#include <cstdint>

#include "kernels/common.h"
#include "kernels/elementwise_math.h"

namespace prm::cpu {
template <typename T>
void binary(BinaryOp op, T* out, const T* a, const Strides& sa, const T* b, const Strides& sb,
            int64_t n);
template <typename T> void unary(UnaryOp op, T* out, const T* inp, T scalar, int64_t n);
template <typename T> void broadcast_copy(T* out, const T* inp, const Strides& s, int64_t n);
template <typename T> void relu_backward(T* dinp, const T* dout, const T* inp, int64_t n);
template <typename T> void sigmoid_backward(T* dinp, const T* dout, const T* out, int64_t n);
template <typename T>
void pow_scalar_backward(T* dinp, const T* dout, const T* inp, T p, int64_t n);
template <typename T>
void copy_into_slice(T* out, const T* inp, int64_t outer, int64_t inner_inp, int64_t inner_out,
                     int64_t offset);
template <typename T>
void copy_from_slice(T* out, const T* inp, int64_t outer, int64_t inner_out, int64_t inner_inp,
                     int64_t offset);
}  // namespace prm::cpu

namespace prm::cuda {
template <typename T>
void binary(BinaryOp op, T* out, const T* a, const Strides& sa, const T* b, const Strides& sb,
            int64_t n);
template <typename T> void unary(UnaryOp op, T* out, const T* inp, T scalar, int64_t n);
template <typename T> void broadcast_copy(T* out, const T* inp, const Strides& s, int64_t n);
template <typename T> void relu_backward(T* dinp, const T* dout, const T* inp, int64_t n);
template <typename T> void sigmoid_backward(T* dinp, const T* dout, const T* out, int64_t n);
template <typename T>
void pow_scalar_backward(T* dinp, const T* dout, const T* inp, T p, int64_t n);
template <typename T>
void copy_into_slice(T* out, const T* inp, int64_t outer, int64_t inner_inp, int64_t inner_out,
                     int64_t offset);
template <typename T>
void copy_from_slice(T* out, const T* inp, int64_t outer, int64_t inner_out, int64_t inner_inp,
                     int64_t offset);
}  // namespace prm::cuda
