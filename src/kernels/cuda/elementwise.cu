// CUDA twins of the elementwise kernels (kernels/elementwise.h); the math is elementwise_math.h.
#include "kernels/elementwise.h"

#include "kernels/cuda/launch.cuh"

namespace prm::cuda {

// The op is a template argument so that each kernel is compiled for one op.
template <BinaryOp OP, typename T>
void binary_op(T* out, const T* a, const Strides& sa, const T* b, const Strides& sb, int64_t n) {
  if (is_flat(sa) && is_flat(sb)) {
    parallel_for(n, [=] __device__(int64_t i) { out[i] = binary_apply(OP, a[i], b[i]); });
    return;
  }
  const Strides ca = sa, cb = sb;
  parallel_for(n, [=] __device__(int64_t i) {
    out[i] = binary_apply(OP, a[strided_offset(i, ca)], b[strided_offset(i, cb)]);
  });
}

template <typename T>
void binary(BinaryOp op, T* out, const T* a, const Strides& sa, const T* b, const Strides& sb,
            int64_t n) {
  switch (op) {
    case BinaryOp::add: return binary_op<BinaryOp::add>(out, a, sa, b, sb, n);
    case BinaryOp::sub: return binary_op<BinaryOp::sub>(out, a, sa, b, sb, n);
    case BinaryOp::mul: return binary_op<BinaryOp::mul>(out, a, sa, b, sb, n);
    case BinaryOp::div: return binary_op<BinaryOp::div>(out, a, sa, b, sb, n);
  }
}

template <UnaryOp OP, typename T>
void unary_op(T* out, const T* inp, T scalar, int64_t n) {
  parallel_for(n, [=] __device__(int64_t i) { out[i] = unary_apply(OP, inp[i], scalar); });
}

template <typename T>
void unary(UnaryOp op, T* out, const T* inp, T scalar, int64_t n) {
  switch (op) {
    case UnaryOp::add_scalar: return unary_op<UnaryOp::add_scalar>(out, inp, scalar, n);
    case UnaryOp::mul_scalar: return unary_op<UnaryOp::mul_scalar>(out, inp, scalar, n);
    case UnaryOp::pow_scalar: return unary_op<UnaryOp::pow_scalar>(out, inp, scalar, n);
    case UnaryOp::relu: return unary_op<UnaryOp::relu>(out, inp, scalar, n);
    case UnaryOp::sigmoid: return unary_op<UnaryOp::sigmoid>(out, inp, scalar, n);
  }
}

template <typename T>
void broadcast_copy(T* out, const T* inp, const Strides& s, int64_t n) {
  const Strides cs = s;  // element by element, where the CPU twin goes row by row
  parallel_for(n, [=] __device__(int64_t i) { out[i] = inp[strided_offset(i, cs)]; });
}

template <typename T>
void relu_backward(T* dinp, const T* dout, const T* inp, int64_t n) {
  parallel_for(n, [=] __device__(int64_t i) { dinp[i] = relu_grad(dout[i], inp[i]); });
}

template <typename T>
void sigmoid_backward(T* dinp, const T* dout, const T* out, int64_t n) {
  parallel_for(n, [=] __device__(int64_t i) { dinp[i] = sigmoid_grad(dout[i], out[i]); });
}

template <typename T>
void pow_scalar_backward(T* dinp, const T* dout, const T* inp, T p, int64_t n) {
  parallel_for(n, [=] __device__(int64_t i) { dinp[i] = pow_scalar_grad(dout[i], inp[i], p); });
}

template <typename T>
void copy_into_slice(T* out, const T* inp, int64_t outer, int64_t inner_inp, int64_t inner_out,
                     int64_t offset) {
  parallel_for(outer * inner_inp, [=] __device__(int64_t i) {
    out[slice_to_full(i, inner_inp, inner_out, offset)] = inp[i];
  });
}

template <typename T>
void copy_from_slice(T* out, const T* inp, int64_t outer, int64_t inner_out, int64_t inner_inp,
                     int64_t offset) {
  parallel_for(outer * inner_out, [=] __device__(int64_t i) {
    out[i] = inp[slice_to_full(i, inner_out, inner_inp, offset)];
  });
}

#define PRM_INSTANTIATE(T)                                                                    \
  template void binary<T>(BinaryOp, T*, const T*, const Strides&, const T*, const Strides&,  \
                          int64_t);                                                           \
  template void unary<T>(UnaryOp, T*, const T*, T, int64_t);                                  \
  template void broadcast_copy<T>(T*, const T*, const Strides&, int64_t);                     \
  template void relu_backward<T>(T*, const T*, const T*, int64_t);                            \
  template void sigmoid_backward<T>(T*, const T*, const T*, int64_t);                         \
  template void pow_scalar_backward<T>(T*, const T*, const T*, T, int64_t);                   \
  template void copy_into_slice<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t);         \
  template void copy_from_slice<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t);
PRM_INSTANTIATE(float)
PRM_INSTANTIATE(double)
#undef PRM_INSTANTIATE

}  // namespace prm::cuda
