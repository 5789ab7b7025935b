// CUDA GEMM through cuBLAS. cuBLAS is column-major; a row-major M x N matrix C is the
// column-major N x M matrix Cᵀ, and Cᵀ = op(B)ᵀ · op(A)ᵀ, so every call passes B before A and
// swaps M and N. The handle is created on first use and lives for the process (destroying it at
// exit could run after the CUDA runtime has shut down). All work goes to the default stream,
// like every other kernel of ours. Float32 products go through cublasGemmEx with a compute type
// that follows matmul_precision() (tensor/dtype.h), per call: fp32 is plain FP32, tf32 lets them
// use TF32 tensor cores; float64 ones through cublasDgemm.
// bf16 converts A and B of a float32 GEMM into compact bf16 workspaces (ToBf16Bits of
// kernels/bf16.h, the same rounding as the CPU's emulation) and calls cublasGemmEx /
// cublasGemmStridedBatchedEx with CUDA_R_16BF inputs, a CUDA_R_32F output and CUBLAS_COMPUTE_32F
// (bf16 tensor cores, float32 accumulation). float64 GEMMs are unaffected.
// NOT YET RUN: the bf16 path was written without a GPU at hand; tests/test_bf16.cpp compares it
// to the CPU emulation when one is.
#include <cublas_v2.h>
#include <library_types.h>

#include <algorithm>
#include <climits>
#include <type_traits>

#include "kernels/bf16.h"
#include "kernels/cuda/loop.cuh"
#include "kernels/gemm.h"
#include "kernels/register.h"
#include "tensor/allocator.h"

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

// The compute type of a float32 product under the current precision, given to each call
// (cublasGemmEx): CUBLAS_COMPUTE_32F is plain FP32, _FAST_TF32 lets the tensor cores take TF32
// inputs. The handle's math mode stays at its default and is never changed: as handle state, set
// before each call, a second host thread issuing GEMMs under the other precision (its precision
// scope is thread-local) could change it between another's setting and its call.
cublasComputeType_t float_compute() {
  return matmul_precision() == Precision::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

void gemm_call(cublasOperation_t tb, cublasOperation_t ta, int n, int m, int k, const float* alpha,
               const float* B, int ldb, const float* A, int lda, const float* beta, float* C,
               int ldc) {
  CUBLAS_CHECK(cublasGemmEx(cublas_handle(), tb, ta, n, m, k, alpha, B, CUDA_R_32F, ldb, A,
                            CUDA_R_32F, lda, beta, C, CUDA_R_32F, ldc, float_compute(),
                            CUBLAS_GEMM_DEFAULT));
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
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(cublas_handle(), tb, ta, n, m, k, alpha, B, CUDA_R_32F,
                                          ldb, sb, A, CUDA_R_32F, lda, sa, beta, C, CUDA_R_32F,
                                          ldc, sc, batch, float_compute(), CUBLAS_GEMM_DEFAULT));
}
void batched_call(cublasOperation_t tb, cublasOperation_t ta, int n, int m, int k,
                  const double* alpha, const double* B, int ldb, long long sb, const double* A,
                  int lda, long long sa, const double* beta, double* C, int ldc, long long sc,
                  int batch) {
  CUBLAS_CHECK(cublasDgemmStridedBatched(cublas_handle(), tb, ta, n, m, k, alpha, B, ldb, sb, A,
                                         lda, sa, beta, C, ldc, sc, batch));
}

// `batch` bf16 copies (one when stride is 0) of stored rows x cols float32 matrices, compact
// (leading dimension cols, stride rows * cols), in memory from our caching allocator. Freed
// while the GEMM may still be queued: the allocator hands the block out again only to later
// work on the same (default) stream, as cuDNN's workspaces are.
struct Bf16Copy {
  uint16_t* data = nullptr;
  size_t bytes = 0;
  int64_t ld = 0, stride = 0;
  Bf16Copy(const float* src, int64_t rows, int64_t cols, int64_t ld_src, int64_t stride_src,
           int64_t batch) {
    const int64_t copies = stride_src == 0 ? 1 : batch;
    bytes = static_cast<size_t>(copies * rows * cols) * sizeof(uint16_t);
    data = static_cast<uint16_t*>(device_alloc(Device::cuda, bytes));
    try {
      ToBf16Bits<CudaLoop>::run(data, src, copies, rows, cols, ld_src, stride_src);
    } catch (...) {
      device_free(Device::cuda, data, bytes);
      throw;
    }
    ld = cols;
    stride = stride_src == 0 ? 0 : rows * cols;
  }
  ~Bf16Copy() { device_free(Device::cuda, data, bytes); }
  Bf16Copy(const Bf16Copy&) = delete;
  Bf16Copy& operator=(const Bf16Copy&) = delete;
};

// C (row-major, float32) = alpha * op(A) op(B) + beta * C with A and B rounded to bf16,
// `batch` of them (M, N, K > 0). Column-major as above: B's copy goes first.
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
               int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c,
               int64_t batch) {
  const Bf16Copy a(A, trans_a ? K : M, trans_a ? M : K, lda, stride_a, batch);
  const Bf16Copy b(B, trans_b ? N : K, trans_b ? K : N, ldb, stride_b, batch);
  cublasHandle_t h = cublas_handle();
  const int n = as_int(N, "N"), m = as_int(M, "M"), k = as_int(K, "K");
  const int ldb16 = as_int(b.ld, "ldb"), lda16 = as_int(a.ld, "lda"), ldc32 = as_int(ldc, "ldc");
  if (batch == 1) {
    CUBLAS_CHECK(cublasGemmEx(h, op(trans_b), op(trans_a), n, m, k, &alpha, b.data, CUDA_R_16BF,
                              ldb16, a.data, CUDA_R_16BF, lda16, &beta, C, CUDA_R_32F, ldc32,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  } else {
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        h, op(trans_b), op(trans_a), n, m, k, &alpha, b.data, CUDA_R_16BF, ldb16, b.stride, a.data,
        CUDA_R_16BF, lda16, a.stride, &beta, C, CUDA_R_32F, ldc32, stride_c, as_int(batch, "batch"),
        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }
}

}  // namespace

template <>
template <typename T>
void Gemm<CudaLoop>::run(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                         const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                         int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if constexpr (std::is_same_v<T, float>) {
    if (gemm_bf16_inputs(K, alpha))
      return gemm_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
  }
  // cuBLAS handles K = 0 as C = beta * C; its leading dimensions must still be >= 1.
  gemm_call(op(trans_b), op(trans_a), as_int(N, "N"), as_int(M, "M"), as_int(K, "K"), &alpha, B,
            as_int(std::max<int64_t>(ldb, 1), "ldb"), A, as_int(std::max<int64_t>(lda, 1), "lda"),
            &beta, C, as_int(ldc, "ldc"));
}

template <>
template <typename T>
void GemmStridedBatched<CudaLoop>::run(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                                       T alpha, const T* A, int64_t lda, int64_t stride_a,
                                       const T* B, int64_t ldb, int64_t stride_b, T beta, T* C,
                                       int64_t ldc, int64_t stride_c, int64_t batch) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  if constexpr (std::is_same_v<T, float>) {
    if (gemm_bf16_inputs(K, alpha))
      return gemm_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta,
                       C, ldc, stride_c, batch);
  }
  batched_call(op(trans_b), op(trans_a), as_int(N, "N"), as_int(M, "M"), as_int(K, "K"), &alpha, B,
               as_int(std::max<int64_t>(ldb, 1), "ldb"), stride_b, A,
               as_int(std::max<int64_t>(lda, 1), "lda"), stride_a, &beta, C, as_int(ldc, "ldc"),
               stride_c, as_int(batch, "batch"));
}

}  // namespace prm

PRM_REGISTER_KERNELS(CudaLoop, Gemm, GemmStridedBatched)
