// CPU GEMM: OpenBLAS when the build has it (single-threaded calls on panels of C, one per OpenMP
// thread; see blas_gemm_split), and our own cache-blocked GEMM otherwise (the GPU machines have
// no OpenBLAS, and the CPU twins still need to be reasonably quick there).
//
// gemm_blocked follows the Goto/BLIS scheme. The K dimension is cut into KC-deep slices and N
// into NC-wide panels; for each (panel, slice) B is packed into NR-wide column strips, and then
// A, MC rows at a time, into MR-tall row strips (both zero-padded to whole strips). A
// micro-kernel multiplies one MR x KC strip of A by one KC x NR strip of B, keeping the MR x NR
// block of C in vector registers: packed B strip in L1, packed A block in L2, B panel in L3.
// The (row strip, column strip) tiles of a block are shared among the OpenMP threads.
//
// Under --precision bf16 (tensor/dtype.h) a float32 GEMM is the exact emulation of bf16 inputs
// with float32 accumulation: A and B are copied into compact scratch rounded to bf16 values
// (RoundToBf16, kernels/bf16.h), and the same float32 GEMM runs on the copies. A product of two
// bf16 values is exact in float32, so this differs from cuBLAS's bf16 GEMM only in the order of
// the float32 additions. float64 GEMMs are unaffected.
#include "kernels/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>

#include "kernels/bf16.h"
#include "kernels/cpu/loop.h"
#include "kernels/register.h"
#include "tensor/error.h"

#if PRM_USE_OPENBLAS
#include <cblas.h>
#endif

namespace prm::cpu {

namespace {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#else
constexpr int kVectorBytes = 32;
#endif

// Register tile: MR rows of C, each two vectors wide (12 vector accumulators).
template <typename T>
struct Tiling {
  using Vec __attribute__((vector_size(kVectorBytes))) = T;
  static constexpr int kLanes = kVectorBytes / static_cast<int>(sizeof(T));
  static constexpr int MR = 6;
  static constexpr int NR = 2 * kLanes;
  static constexpr int64_t KC = 256;
  static constexpr int64_t MC = 16 * MR;
  static constexpr int64_t NC = 4096;
};

// One growable, 64-byte aligned scratch buffer per calling thread and role, reused across calls
// so that a network's many GEMMs do not each page in fresh memory.
template <typename T>
T* scratch(int role, size_t count) {
  struct Buffer {
    void* ptr = nullptr;
    size_t bytes = 0;
    ~Buffer() { std::free(ptr); }
  };
  thread_local Buffer buffers[4];  // 0, 1: packing; 2, 3: bf16-rounded copies of A and B
  Buffer& b = buffers[role];
  const size_t bytes = (count * sizeof(T) + 63) / 64 * 64;
  if (b.bytes < bytes) {
    std::free(b.ptr);
    b.ptr = std::aligned_alloc(64, bytes);
    PRM_CHECK(b.ptr != nullptr, "gemm: out of memory for a ", bytes, "-byte packing buffer");
    b.bytes = bytes;
  }
  return static_cast<T*>(b.ptr);
}

// Packs rows [0, mc) x columns [0, kc) of op(A) (already offset to the block) into MR-row
// strips: strip p holds, for each k, the MR values op(A)(p*MR + i, k), zero past row mc.
template <typename T>
void pack_a_strip(T* dst, const T* A, int64_t lda, bool trans_a, int64_t rows, int64_t kc) {
  constexpr int MR = Tiling<T>::MR;
  for (int64_t k = 0; k < kc; ++k) {
    T* d = dst + k * MR;
    for (int i = 0; i < MR; ++i)
      d[i] = i < rows ? (trans_a ? A[k * lda + i] : A[i * lda + k]) : T(0);
  }
}

// Packs columns [0, cols) of a KC-deep slice of op(B) into one NR-wide strip, zero past cols.
template <typename T>
void pack_b_strip(T* dst, const T* B, int64_t ldb, bool trans_b, int64_t cols, int64_t kc) {
  constexpr int NR = Tiling<T>::NR;
  for (int64_t k = 0; k < kc; ++k) {
    T* d = dst + k * NR;
    if (!trans_b && cols == NR) {
      std::memcpy(d, B + k * ldb, NR * sizeof(T));
      continue;
    }
    for (int j = 0; j < NR; ++j)
      d[j] = j < cols ? (trans_b ? B[j * ldb + k] : B[k * ldb + j]) : T(0);
  }
}

// acc (MR x NR, row-major) = packed A strip (kc x MR) times packed B strip (kc x NR).
template <typename T>
void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict acc) {
  using Vec = typename Tiling<T>::Vec;
  constexpr int MR = Tiling<T>::MR;
  constexpr int L = Tiling<T>::kLanes;
  Vec c[MR][2];
  for (int i = 0; i < MR; ++i) c[i][0] = c[i][1] = Vec{};
  for (int64_t k = 0; k < kc; ++k) {
    Vec b0, b1;
    std::memcpy(&b0, b + k * 2 * L, sizeof(Vec));
    std::memcpy(&b1, b + k * 2 * L + L, sizeof(Vec));
    const T* ak = a + k * MR;
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      c[i][0] += ak[i] * b0;
      c[i][1] += ak[i] * b1;
    }
  }
  for (int i = 0; i < MR; ++i) {
    std::memcpy(acc + i * 2 * L, &c[i][0], sizeof(Vec));
    std::memcpy(acc + i * 2 * L + L, &c[i][1], sizeof(Vec));
  }
}

// C block (rows x cols) = alpha * acc + beta * C, where beta = 0 never reads C.
template <typename T>
void store_tile(T* C, int64_t ldc, const T* acc, int64_t rows, int64_t cols, T alpha, T beta) {
  constexpr int NR = Tiling<T>::NR;
  for (int64_t i = 0; i < rows; ++i) {
    T* c = C + i * ldc;
    const T* a = acc + i * NR;
    if (beta == T(0)) {
      for (int64_t j = 0; j < cols; ++j) c[j] = alpha * a[j];
    } else {
      for (int64_t j = 0; j < cols; ++j) c[j] = alpha * a[j] + beta * c[j];
    }
  }
}

template <typename T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
}

}  // namespace

template <typename T>
void gemm_blocked(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  using Tl = Tiling<T>;
  constexpr int MR = Tl::MR, NR = Tl::NR;
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  const int64_t kc_max = std::min(K, Tl::KC);
  const int64_t nc_max = std::min((N + NR - 1) / NR * NR, Tl::NC);
  const int64_t mc_max = std::min((M + MR - 1) / MR * MR, Tl::MC);
  T* packed_b = scratch<T>(0, static_cast<size_t>(kc_max * nc_max));
  T* packed_a = scratch<T>(1, static_cast<size_t>(kc_max * mc_max));
  const bool threaded = static_cast<double>(M) * N * K > 64.0 * 64 * 64;

#pragma omp parallel if (threaded)
  {
    alignas(64) T acc[MR * NR];
    for (int64_t jc = 0; jc < N; jc += Tl::NC) {
      const int64_t nc = std::min(Tl::NC, N - jc);
      const int64_t n_strips = (nc + NR - 1) / NR;
      for (int64_t pc = 0; pc < K; pc += Tl::KC) {
        const int64_t kc = std::min(Tl::KC, K - pc);
        const T beta_here = pc == 0 ? beta : T(1);  // later K slices add to the first
#pragma omp for schedule(static)
        for (int64_t q = 0; q < n_strips; ++q) {
          const int64_t j0 = jc + q * NR;
          const T* src = trans_b ? B + j0 * ldb + pc : B + pc * ldb + j0;
          pack_b_strip(packed_b + q * kc * NR, src, ldb, trans_b, std::min<int64_t>(NR, N - j0),
                       kc);
        }
        for (int64_t ic = 0; ic < M; ic += Tl::MC) {
          const int64_t mc = std::min(Tl::MC, M - ic);
          const int64_t m_strips = (mc + MR - 1) / MR;
#pragma omp for schedule(static)
          for (int64_t p = 0; p < m_strips; ++p) {
            const int64_t i0 = ic + p * MR;
            const T* src = trans_a ? A + pc * lda + i0 : A + i0 * lda + pc;
            pack_a_strip(packed_a + p * kc * MR, src, lda, trans_a, std::min<int64_t>(MR, M - i0),
                         kc);
          }
#pragma omp for collapse(2) schedule(static)
          for (int64_t q = 0; q < n_strips; ++q) {
            for (int64_t p = 0; p < m_strips; ++p) {
              micro_kernel(kc, packed_a + p * kc * MR, packed_b + q * kc * NR, acc);
              const int64_t i0 = ic + p * MR, j0 = jc + q * NR;
              store_tile(C + i0 * ldc + j0, ldc, acc, std::min<int64_t>(MR, M - i0),
                         std::min<int64_t>(NR, N - j0), alpha, beta_here);
            }
          }
        }
      }
    }
  }
}

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
  if (K <= 0) {  // BLAS wants lda >= 1 even for an empty product
    scale_c(M, N, beta, C, ldc);
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
    float* dst = cpu::scratch<float>(role, static_cast<size_t>(copies * rows * cols));
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

template void cpu::gemm_blocked<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*,
                                       int64_t, const float*, int64_t, float, float*, int64_t);
template void cpu::gemm_blocked<double>(bool, bool, int64_t, int64_t, int64_t, double,
                                        const double*, int64_t, const double*, int64_t, double,
                                        double*, int64_t);

}  // namespace prm

PRM_REGISTER_KERNELS(CpuLoop, Gemm, GemmStridedBatched)
