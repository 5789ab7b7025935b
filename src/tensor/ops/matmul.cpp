// matmul: forward and backward (formulas in matmul.h), all three products by one strided-batched
// GEMM helper that reads either operand transposed in place.
#include "tensor/ops/matmul.h"

#include "kernels/common.h"
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
  PRM_DISPATCH_FLOAT(a.dtype(), "matmul", {
    const scalar_t* ap = a.data<scalar_t>();
    const scalar_t* bp = b.data<scalar_t>();
    scalar_t* cp = c.data<scalar_t>();
    const int64_t sa = a_rows * a_cols, sb = b_rows * b_cols, sc = M * N;
    if (a.is_cuda()) {
      PRM_CUDA_ONLY(cuda::gemm_strided_batched(trans_a, trans_b, M, N, K, scalar_t(1), ap, a_cols,
                                               sa, bp, b_cols, sb, scalar_t(0), cp, N, sc, batch));
    } else {
      cpu::gemm_strided_batched(trans_a, trans_b, M, N, K, scalar_t(1), ap, a_cols, sa, bp, b_cols,
                                sb, scalar_t(0), cp, N, sc, batch);
    }
  });
  return c;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
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
  Tensor c = batched_product(a, false, b, false);
  attach_grad_fn(c, "matmul", {a, b},
                 [as = a.detach(), bs = b.detach(), need_a = a.requires_grad(),
                  need_b = b.requires_grad()](const Tensor& g) {
                   return std::vector<Tensor>{
                       need_a ? batched_product(g, false, bs, true) : Tensor(),   // dc · bᵀ
                       need_b ? batched_product(as, true, g, false) : Tensor()};  // aᵀ · dc
                 });
  return c;
}

}  // namespace prm
