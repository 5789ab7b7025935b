// The CPU GEMM's per-ISA pieces (internal to kernels/cpu/): a register-blocked microkernel per
// instruction set and element type, with the block sizes the driver (gemm.cpp) cuts the
// matrices into for it, and a peak-FLOP loop per instruction set for `prm bench --only peak`.
// docs/cpu_gemm.md derives the design and the sizes.
//
// A microkernel computes one MR x NR tile of C from a packed MR-row strip of A (kc steps of MR
// values: a[k * MR + i] = op(A)(i, k)) and a packed NR-column strip of B (b[k * NR + j] =
// op(B)(k, j)), both 64-byte aligned:
//
//   C[i * ldc + j] = alpha * sum_k a[k * MR + i] * b[k * NR + j] + beta * C[i * ldc + j]
//
// for i < rows, j < cols (rows <= MR, cols <= NR: the tiles at C's edges write only their part;
// the packed strips are zero-padded to whole tiles); beta == 0 never reads C. Each ISA file (gemm_avx512.cpp, gemm_avx2.cpp,
// gemm_scalar.cpp) compiles its functions with __attribute__((target(...))), so the binary runs
// on any x86-64 and only the path the CPU supports is ever called.
#pragma once
#include <cstddef>
#include <cstdint>

namespace prm::cpu {

template <typename T>
struct GemmMicroKernel {
  int MR = 0, NR = 0;              // register tile
  int64_t MC = 0, KC = 0, NC = 0;  // cache blocks: A block MC x KC, B panel KC x NC (MC a
                                   // multiple of MR, NC of NR)
  void (*run)(int64_t kc, const T* a, const T* b, T alpha, T beta, T* C, int64_t ldc, int rows,
              int cols) = nullptr;
  // Narrower kernels on the same packed strips (NR wide) for a last strip of C with few columns:
  // narrow_run[i] computes the first narrow_cols[i] columns (ascending; null where none).
  void (*narrow_run[2])(int64_t kc, const T* a, const T* b, T alpha, T beta, T* C, int64_t ldc,
                        int rows, int cols) = {nullptr, nullptr};
  int narrow_cols[2] = {0, 0};
  // Optional: a last strip of C with at most tail_cols columns, for up to tail_strips strips of
  // A at once (rows <= tail_strips * MR of them, the strips a_step apart in the packed block;
  // b the strip, NR wide as packed; 1 <= cols <= tail_cols): the same C as `run` on each strip
  // of A, to the bit, where `run` and the narrow kernels would fill vector lanes with padding.
  void (*tail_run)(int64_t kc, const T* a, int64_t a_step, const T* b, T alpha, T beta, T* C,
                   int64_t ldc, int rows, int cols) = nullptr;
  int tail_cols = 0, tail_strips = 0;
  // Optional: MR whole rows of A (row stride lda), kc columns, into one packed strip,
  // a[k * MR + i] = A[i * lda + k], with this instruction set's own transposes (null: the
  // driver's portable loop, which the compiler builds from baseline 4 x 4 transposes).
  void (*pack_a_rows)(T* dst, const T* A, int64_t lda, int64_t kc) = nullptr;
  // Optional: kc memory rows of B (row stride ldb), `width` values each, into NR-column strips,
  // b[k * NR + j] = B[k * ldb + s * NR + j] in strip s, zero past `width` (op(B) not transposed),
  // with this instruction set's own moves (null: the driver's portable copy).
  void (*pack_b_rows)(T* dst, const T* B, int64_t ldb, int64_t width, int64_t kc) = nullptr;
  // Optional: NR whole columns of op(B) = B transposed (B's rows j, stride ldb, read along k),
  // kc values each, into one strip, b[k * NR + j] = B[j * ldb + k] (null: the portable loop).
  void (*pack_b_columns)(T* dst, const T* B, int64_t ldb, int64_t kc) = nullptr;
  // Optional: op(A) = A transposed (A's memory row k holds op(A)'s column k), `rows` rows of
  // op(A), kc columns, into MR-row strips, zero past `rows` (null: the portable copy).
  void (*pack_a_columns)(T* dst, const T* A, int64_t lda, int64_t rows, int64_t kc) = nullptr;
};

const GemmMicroKernel<float>& gemm_kernel_scalar_f32();
const GemmMicroKernel<double>& gemm_kernel_scalar_f64();
#if defined(__x86_64__)
const GemmMicroKernel<float>& gemm_kernel_avx2_f32();
const GemmMicroKernel<double>& gemm_kernel_avx2_f64();
const GemmMicroKernel<float>& gemm_kernel_avx512_f32();
const GemmMicroKernel<double>& gemm_kernel_avx512_f64();
#endif

// Float32 FMA throughput loops: `iters` rounds of independent multiply-add chains held in
// registers; returns the floating-point operations done (2 per lane per FMA).
double peak_loop_scalar(int64_t iters);
#if defined(__x86_64__)
double peak_loop_avx2(int64_t iters);
double peak_loop_avx512(int64_t iters);
#endif

// A growable, 64-byte aligned buffer per calling thread and role (0, 1: packing; 2, 3: bf16-
// rounded copies of A and B; 4: a caller's operands around the GEMMs it calls, Winograd's V and
// M of a chunk in tensor/ops/conv2d.cpp), reused across calls so that a network's many GEMMs do
// not each page in fresh memory (nor zero it, as a std::vector would).
void* gemm_scratch(int role, size_t bytes);

}  // namespace prm::cpu
