// General matrix multiply, row-major, in the BLAS convention:
//
//   C = alpha * op(A) · op(B) + beta * C,   op(X) = X or Xᵀ,
//
// with op(A) of M×K, op(B) of K×N and C of M×N. A is stored M×K (K×M when trans_a) with row
// stride lda, B is K×N (N×K when trans_b) with row stride ldb, C has row stride ldc.
// beta = 0 OVERWRITES C (its old contents are never read, so it may be uninitialised);
// beta = 1 ACCUMULATES into C (how parameter gradients are summed over images).
//
// Two kernels (kernels/dispatch.h) with a body per device: on the CPU (cpu/gemm.cpp) Gemm calls
// our own packed, cache-blocked GEMM (cpu::gemm_blocked: a register-blocked microkernel per
// instruction set, AVX-512 / AVX2+FMA / scalar, chosen at run time, kernels/cpu_isa.h;
// docs/cpu_gemm.md), or OpenBLAS (cblas) in a build with PRM_USE_OPENBLAS=1; gemm_blocked is
// exported so that the tests check it against a naive triple loop even then. float64 runs the
// same scheme with its own tiles. On CUDA (cuda/gemm.cu) both call cuBLAS.
// The strided-batched forms run `batch` independent GEMMs, matrix b of each operand starting at
// pointer + b * stride (a stride of 0 shares one matrix across the batch).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <type_traits>

#include "kernels/cpu_isa.h"
#include "kernels/dispatch.h"

namespace prm {

template <class Loop>
struct Gemm {
  template <typename T>
  static void run(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                  const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);
};

template <class Loop>
struct GemmStridedBatched {
  template <typename T>
  static void run(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                  const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                  int64_t stride_b, T beta, T* C, int64_t ldc, int64_t stride_c, int64_t batch);
};

// Whether a GEMM of T takes bf16-rounded inputs (both devices): float32 under --precision bf16,
// with something to multiply (K = 0 or alpha = 0 only scale C, which bf16 does not touch).
template <typename T>
bool gemm_bf16_inputs(int64_t K, T alpha) {
  return std::is_same_v<T, float> && matmul_precision() == Precision::bf16 && K > 0 &&
         alpha != T(0);
}

namespace cpu {
// Our own GEMM (what Gemm<CpuLoop> uses without OpenBLAS), same arguments, on the instruction
// set cpu_isa_active() names.
template <typename T>
void gemm_blocked(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// op(B) supplied block by block instead of as a matrix: pack(dst, k0, kc, j0, nc, NR) writes
// rows [k0, k0 + kc) and columns [j0, j0 + nc) of op(B) as NR-column strips,
// dst[s * kc * NR + kk * NR + jj] = op(B)(k0 + kk, j0 + s * NR + jj), zero past column nc (what
// the GEMM's own packing writes; kernels/cpu/conv_pack.h packs an image's im2col matrix so).
// Called from the GEMM's threads, concurrently, each with its own dst.
template <typename T>
using GemmPackB = std::function<void(T* dst, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
                                     int NR)>;
// gemm_blocked with op(B) from `pack`: the same blocking, threads and sums, so the same result
// bit for bit as gemm_blocked on the matrix `pack` describes.
template <typename T>
void gemm_blocked_packed_b(bool trans_a, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                           int64_t lda, const GemmPackB<T>& pack, T beta, T* C, int64_t ldc);

// Called on each finished block of C, while it is still in cache: rows [i0, i0 + rows) and
// columns [j0, j0 + cols) of C, the block's first element at c (row stride ldc), after its last
// K slice. Blocks do not overlap and together cover C once; they are called from the GEMM's
// threads, concurrently. An element-wise function of C (a batch norm, a ReLU) applied here gives
// the same numbers as the same function in a pass of its own over C afterwards.
template <typename T>
using GemmEpilogue =
    std::function<void(T* c, int64_t ldc, int64_t i0, int64_t j0, int64_t rows, int64_t cols)>;
// gemm_blocked and gemm_blocked_packed_b with an epilogue on C (the same products, then it; an
// empty epilogue is none).
template <typename T>
void gemm_blocked_epilogue(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                           const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                           int64_t ldc, const GemmEpilogue<T>& epilogue);
template <typename T>
void gemm_blocked_packed_b_epilogue(bool trans_a, int64_t M, int64_t N, int64_t K, T alpha,
                                    const T* A, int64_t lda, const GemmPackB<T>& pack, T beta,
                                    T* C, int64_t ldc, const GemmEpilogue<T>& epilogue);

// op(A) packed once, whole, into the strips the GEMM's microkernel reads, for many products
// with it (a convolution's weights against each image, or against each image of a run while
// they stay the same): the GEMMs below then read A's strips from here instead of packing them
// into a per-thread buffer in each call (where every thread whose region of C spans all of A's
// rows packs all of A). Laid out K slice by K slice (the driver's KC), each slice the MR-row
// strips of all the rows, zero-padded to whole strips. It fits the instruction set active when
// it is made: the products refuse it under another.
template <typename T>
class GemmPackedA {
 public:
  // Packs op(A) (M x K; A stored M x K, K x M when trans_a, row stride lda), threaded.
  GemmPackedA(bool trans_a, int64_t M, int64_t K, const T* A, int64_t lda);
  int64_t rows() const { return M_; }
  int64_t depth() const { return K_; }
  CpuIsa isa() const { return isa_; }
  size_t bytes() const { return sizeof(T) * static_cast<size_t>(size_); }
  // The strips of K slice [k0, ...) from row i0 on (k0 a multiple of the driver's KC, i0 of MR).
  const T* strips(int64_t k0, int64_t i0) const;

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  int64_t M_ = 0, K_ = 0, padded_rows_ = 0, size_ = 0;
  int64_t KC_ = 0;
  CpuIsa isa_ = CpuIsa::scalar;
  std::unique_ptr<T, Free> data_;
};

// gemm_blocked (trans_b false) and gemm_blocked_packed_b (when pack_b is given) on a packed
// op(A), with an optional epilogue: the same blocking, threads and sums, so the same result bit
// for bit as those with A as a matrix.
template <typename T>
void gemm_blocked_prepacked(const GemmPackedA<T>& A, int64_t N, T alpha, const T* B, int64_t ldb,
                            const GemmPackB<T>* pack_b, T beta, T* C, int64_t ldc,
                            const GemmEpilogue<T>* epilogue);
}  // namespace cpu

}  // namespace prm
