// matmul: forward and backward (formulas in matmul.h), all three products by one strided-batched
// GEMM helper that reads either operand transposed in place.
#include "tensor/ops/matmul.h"

#include "kernels/gemm.h"
#include "tensor/autograd.h"

namespace prm {

namespace {

// The product op(a_i) · op(b_i) of every batch element i, as a fresh tensor. a and b are
// [B, rows, cols] (or [rows, cols], a batch of one); op transposes when asked. The result has
// a's rank.
Tensor batched_product(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b) {
  const bool batched = a.dim() == 3;
  const int64_t batch = batched ? a.size(0) : 1;
  const int64_t a_rows = a.size(-2), a_cols = a.size(-1);
  const int64_t b_rows = b.size(-2), b_cols = b.size(-1);
  const int64_t M = trans_a ? a_cols : a_rows, K = trans_a ? a_rows : a_cols;
  const int64_t N = trans_b ? b_rows : b_cols;
  Shape shape = batched ? Shape{batch, M, N} : Shape{M, N};
  Tensor c = Tensor::empty(shape, a.dtype(), a.device());
  if (c.numel() == 0) return c;
  const int64_t sa = a_rows * a_cols, sb = b_rows * b_cols, sc = M * N;
  PRM_DISPATCH_FLOAT(a.dtype(), "matmul", {
    launch<GemmStridedBatched, scalar_t>(a.device(), trans_a, trans_b, M, N, K, scalar_t(1),
                                         a.data<scalar_t>(), a_cols, sa, b.data<scalar_t>(),
                                         b_cols, sb, scalar_t(0), c.data<scalar_t>(), N, sc,
                                         batch);
  });
  return c;
}

}  // namespace

Tensor matmul_forward(const Tensor& a, const Tensor& b) {
  const char* op = "matmul";
  PRM_CHECK(a.defined() && b.defined(), op, ": undefined operand");
  check_float(op, a);
  check_same_dtype(op, a, b);
  check_same_device(op, a, b);
  PRM_CHECK((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && b.dim() == 3), op,
            ": expected [M, K] x [K, N] or [B, M, K] x [B, K, N], got ", a.shape_str(), " x ",
            b.shape_str());
  PRM_CHECK(a.size(-1) == b.size(-2), op, ": inner sizes differ: ", a.shape_str(), " x ",
            b.shape_str());
  PRM_CHECK(a.dim() == 2 || a.size(0) == b.size(0), op, ": batch sizes differ: ", a.shape_str(),
            " x ", b.shape_str());
  return batched_product(a, false, b, false);
}

MatmulGrads matmul_backward(const Tensor& g, const Tensor& a, const Tensor& b, bool need_a,
                            bool need_b) {
  return {need_a ? batched_product(g, false, b, true) : Tensor(),   // dc · bᵀ
          need_b ? batched_product(a, true, g, false) : Tensor()};  // aᵀ · dc
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  Tensor c = matmul_forward(a, b);
  attach_grad_fn(c, "matmul", "matmul_backward", {a, b},
                 [a = a.detach(), b = b.detach(), need_a = a.requires_grad(),
                  need_b = b.requires_grad()](const Tensor& g) {
                   MatmulGrads d = matmul_backward(g, a, b, need_a, need_b);
                   return std::vector<Tensor>{d.da, d.db};
                 });
  return c;
}

}  // namespace prm
