// Matrix product, plain or batched:
//   a [M, K] · b [K, N] -> c [M, N],   or   a [B, M, K] · b [B, K, N] -> c [B, M, N]
// (no broadcasting of the batch dimension). With dc the gradient of c, per batch element:
//   da = dc · bᵀ      db = aᵀ · dc
// Computed by GEMM (OpenBLAS or our blocked GEMM on the CPU, cuBLAS on CUDA).
#pragma once
#include "tensor/tensor.h"

namespace prm {

Tensor matmul_forward(const Tensor& a, const Tensor& b);
struct MatmulGrads {
  Tensor da, db;  // undefined where not needed
};
MatmulGrads matmul_backward(const Tensor& g, const Tensor& a, const Tensor& b, bool need_a,
                            bool need_b);
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace prm
