// CPU GEMM entry points (Gemm, GemmStridedBatched): our own packed, cache-blocked GEMM with a
// microkernel per instruction set (cpu::gemm_blocked, kernels/cpu/gemm_blocked.cpp, chosen at
// run time: kernels/cpu_isa.h), or OpenBLAS when the build asked for it (USE_OPENBLAS=1:
// single-threaded calls on panels of C, one per OpenMP thread; see blas_gemm_split).
//
// Under --precision bf16 (tensor/dtype.h) a float32 GEMM is the exact emulation of bf16 inputs
// with float32 accumulation: A and B are copied into compact scratch rounded to bf16 values
// (RoundToBf16, kernels/bf16.h), and the same float32 GEMM runs on the copies. A product of two
// bf16 values is exact in float32, so this differs from cuBLAS's bf16 GEMM only in the order of
// the float32 additions. float64 GEMMs are unaffected.
#include "kernels/gemm.h"

#include <omp.h>

#include <algorithm>
#include <type_traits>

#include "kernels/bf16.h"
#include "kernels/cpu/gemm_kernels.h"
#include "kernels/cpu/loop.h"
#include "kernels/register.h"
#include "tensor/error.h"

#if PRM_USE_OPENBLAS
#include <cblas.h>
#endif

namespace prm::cpu {

#if PRM_USE_OPENBLAS
namespace {

void blas_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A,
              static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}
void blas_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
               int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A,
              static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

// OpenBLAS (the pthreads build Debian ships) keeps its own thread pool, and the rest of our CPU
// kernels run on OpenMP's. Alternating between the two pools, each pool's idle threads spin on
// the cores the other pool is computing on: a 3x3 conv (OpenMP im2col, then an OpenBLAS GEMM)
// measured no faster on 2 threads than on 1. So OpenBLAS is set to one thread, and the GEMM is
// split over OpenMP threads instead: C into one panel of columns (or of rows, when it has more
// rows than columns) per thread, each panel a single-threaded OpenBLAS call.
void use_single_threaded_blas() {
  static const bool once = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)once;
}

template <typename T>
void blas_gemm_split(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                     int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  use_single_threaded_blas();
  const bool threaded = static_cast<double>(M) * N * K > 64.0 * 64 * 64 && !omp_in_parallel();
  const bool by_columns = N >= M;
  const int64_t extent = by_columns ? N : M;
#pragma omp parallel if (threaded)
  {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t align = by_columns ? 16 : 8;  // whole cache lines of C per column panel
    const int64_t chunk = ((extent + threads - 1) / threads + align - 1) / align * align;
    const int64_t begin = std::min(extent, t * chunk), end = std::min(extent, begin + chunk);
    if (begin < end && by_columns) {
      const T* b_panel = tb ? B + begin * ldb : B + begin;
      blas_gemm(ta, tb, M, end - begin, K, alpha, A, lda, b_panel, ldb, beta, C + begin, ldc);
    } else if (begin < end) {
      const T* a_panel = ta ? A + begin : A + begin * lda;
      blas_gemm(ta, tb, end - begin, N, K, alpha, a_panel, lda, B, ldb, beta, C + begin * ldc, ldc);
    }
  }
}

}  // namespace
#endif

}  // namespace prm::cpu

namespace prm {

namespace {

// One float32 or float64 GEMM at the precision of the inputs given (no bf16 rounding here).
template <typename T>
void gemm_plain(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  using namespace cpu;
  if (M <= 0 || N <= 0) return;
#if PRM_USE_OPENBLAS
  if (K <= 0) {  // BLAS wants lda >= 1 even for an empty product: ours scales C
    gemm_blocked(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  blas_gemm_split(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
  gemm_blocked(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

// `batch` matrices of op-storage rows x cols (matrix b at src + b * stride, rows ld apart; one
// matrix when stride is 0) copied compact and rounded to bf16 values, into this thread's scratch
// buffer `role` (2 for A, 3 for B; reused by the next GEMM, so fresh pages are not faulted in
// on every call).
struct RoundedCopy {
  const float* data = nullptr;
  int64_t ld = 0, stride = 0;
  RoundedCopy(int role, const float* src, int64_t rows, int64_t cols, int64_t ld_src,
              int64_t stride_src, int64_t batch) {
    const int64_t copies = stride_src == 0 ? 1 : batch;
    float* dst = static_cast<float*>(
        cpu::gemm_scratch(role, sizeof(float) * static_cast<size_t>(copies * rows * cols)));
    RoundToBf16<CpuLoop>::run(dst, src, copies, rows, cols, ld_src, stride_src);
    data = dst;
    ld = cols;
    stride = stride_src == 0 ? 0 : rows * cols;
  }
};

template <typename T>
void gemm_batched_plain(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                        const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                        int64_t stride_b, T beta, T* C, int64_t ldc, int64_t stride_c,
                        int64_t batch) {
  // One threaded GEMM after another: the GEMMs themselves use every core.
  for (int64_t b = 0; b < batch; ++b)
    gemm_plain(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
               C + b * stride_c, ldc);
}

template <typename T>
void gemm_batched_any(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                      const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                      int64_t stride_b, T beta, T* C, int64_t ldc, int64_t stride_c,
                      int64_t batch) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  if constexpr (std::is_same_v<T, float>) {
    if (gemm_bf16_inputs(K, alpha)) {
      // Stored shapes: A is M x K (K x M when transposed), B is K x N (N x K).
      const RoundedCopy a(2, A, trans_a ? K : M, trans_a ? M : K, lda, stride_a, batch);
      const RoundedCopy b(3, B, trans_b ? N : K, trans_b ? K : N, ldb, stride_b, batch);
      gemm_batched_plain(trans_a, trans_b, M, N, K, alpha, a.data, a.ld, a.stride, b.data, b.ld,
                         b.stride, beta, C, ldc, stride_c, batch);
      return;
    }
  }
  gemm_batched_plain(trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C,
                     ldc, stride_c, batch);
}

}  // namespace

template <>
template <typename T>
void Gemm<CpuLoop>::run(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                        const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                        int64_t ldc) {
  gemm_batched_any(trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

template <>
template <typename T>
void GemmStridedBatched<CpuLoop>::run(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                                      T alpha, const T* A, int64_t lda, int64_t stride_a,
                                      const T* B, int64_t ldb, int64_t stride_b, T beta, T* C,
                                      int64_t ldc, int64_t stride_c, int64_t batch) {
  gemm_batched_any(trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C,
                   ldc, stride_c, batch);
}

}  // namespace prm

PRM_REGISTER_KERNELS(CpuLoop, Gemm, GemmStridedBatched)
