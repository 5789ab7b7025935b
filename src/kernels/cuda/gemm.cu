// CUDA GEMM through cuBLAS. cuBLAS is column-major; a row-major M x N matrix C is the
// column-major N x M matrix Cᵀ, and Cᵀ = op(B)ᵀ · op(A)ᵀ, so every call passes B before A and
// swaps M and N. The handle is created on first use and lives for the process (destroying it at
// exit could run after the CUDA runtime has shut down). All work goes to the default stream,
// like every other kernel of ours. Math mode follows matmul_precision() (tensor/dtype.h): fp32 is
// cuBLAS's default (plain FP32/FP64), tf32 lets single-precision products use TF32 tensor cores.
#include <cublas_v2.h>

#include <algorithm>
#include <climits>

#include "kernels/cuda/loop.cuh"
#include "kernels/gemm.h"
#include "kernels/register.h"

namespace prm {

namespace {

cublasHandle_t cublas_handle() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    CUBLAS_CHECK(cublasCreate(&h));
    return h;
  }();
  return handle;
}

cublasOperation_t op(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

int as_int(int64_t v, const char* what) {
  PRM_CHECK(v >= 0 && v <= INT_MAX, "cuBLAS gemm: ", what, " = ", v, " exceeds cuBLAS's int range");
  return static_cast<int>(v);
}

// The handle's math mode for a float32 product under the current precision (a host-side setting,
// cheap enough to make before every call).
cublasHandle_t float_handle() {
  cublasHandle_t h = cublas_handle();
  CUBLAS_CHECK(cublasSetMathMode(h, matmul_precision() == Precision::tf32
                                        ? CUBLAS_TF32_TENSOR_OP_MATH
                                        : CUBLAS_DEFAULT_MATH));
  return h;
}

void gemm_call(cublasOperation_t tb, cublasOperation_t ta, int n, int m, int k, const float* alpha,
               const float* B, int ldb, const float* A, int lda, const float* beta, float* C,
               int ldc) {
  CUBLAS_CHECK(cublasSgemm(float_handle(), tb, ta, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc));
}
void gemm_call(cublasOperation_t tb, cublasOperation_t ta, int n, int m, int k, const double* alpha,
               const double* B, int ldb, const double* A, int lda, const double* beta, double* C,
               int ldc) {
  CUBLAS_CHECK(cublasDgemm(cublas_handle(), tb, ta, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc));
}

void batched_call(cublasOperation_t tb, cublasOperation_t ta, int n, int m, int k,
                  const float* alpha, const float* B, int ldb, long long sb, const float* A,
                  int lda, long long sa, const float* beta, float* C, int ldc, long long sc,
                  int batch) {
  CUBLAS_CHECK(cublasSgemmStridedBatched(float_handle(), tb, ta, n, m, k, alpha, B, ldb, sb, A,
                                         lda, sa, beta, C, ldc, sc, batch));
}
void batched_call(cublasOperation_t tb, cublasOperation_t ta, int n, int m, int k,
                  const double* alpha, const double* B, int ldb, long long sb, const double* A,
                  int lda, long long sa, const double* beta, double* C, int ldc, long long sc,
                  int batch) {
  CUBLAS_CHECK(cublasDgemmStridedBatched(cublas_handle(), tb, ta, n, m, k, alpha, B, ldb, sb, A,
                                         lda, sa, beta, C, ldc, sc, batch));
}

}  // namespace

template <>
template <typename T>
void Gemm<CudaLoop>::run(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                         const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                         int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  // cuBLAS handles K = 0 as C = beta * C; its leading dimensions must still be >= 1.
  gemm_call(op(trans_b), op(trans_a), as_int(N, "N"), as_int(M, "M"), as_int(K, "K"), &alpha, B,
            as_int(std::max<int64_t>(ldb, 1), "ldb"), A, as_int(std::max<int64_t>(lda, 1), "lda"),
            &beta, C, as_int(ldc, "ldc"));
}

template <>
template <typename T>
void GemmStridedBatched<CudaLoop>::run(bool trans_a, bool trans_b, int64_t M, int64_t N,
                                       int64_t K, T alpha, const T* A, int64_t lda,
                                       int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b,
                                       T beta, T* C, int64_t ldc, int64_t stride_c,
                                       int64_t batch) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  batched_call(op(trans_b), op(trans_a), as_int(N, "N"), as_int(M, "M"), as_int(K, "K"), &alpha, B,
               as_int(std::max<int64_t>(ldb, 1), "ldb"), stride_b, A,
               as_int(std::max<int64_t>(lda, 1), "lda"), stride_a, &beta, C, as_int(ldc, "ldc"),
               stride_c, as_int(batch, "batch"));
}

}  // namespace prm

PRM_REGISTER_KERNELS(CudaLoop, Gemm, GemmStridedBatched)
