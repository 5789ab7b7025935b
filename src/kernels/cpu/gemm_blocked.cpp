// Our CPU GEMM (cpu::gemm_blocked, kernels/gemm.h): packing, cache blocking and a register-
// blocked microkernel per instruction set (kernels/cpu/gemm_kernels.h), after Goto and van de
// Geijn's layering (as in BLIS). docs/cpu_gemm.md derives it; in short, for one thread:
//
//   for jc in N by NC:                         B panel  KC x NC   (packed, in L3)
//     for pc in K by KC:
//       pack op(B)[pc:pc+KC, jc:jc+NC] into NR-column strips
//       for ic in M by MC:                     A block  MC x KC   (packed, in L2)
//         pack op(A)[ic:ic+MC, pc:pc+KC] into MR-row strips
//         for jr in NC by NR:                  B strip  KC x NR   (in L1)
//           for ir in MC by MR:                C tile   MR x NR   (in registers)
//             microkernel: C tile (+)= A strip · B strip
//
// (A thread's region of at most MC rows, the common case, runs a variant: B packed a panel of
// about 1 MiB at a time, and each strip of A's rows run along the whole panel; gemm_region.)
//
// The first K slice applies the caller's beta, later slices add (beta = 1); beta = 0 therefore
// never reads C. An epilogue (gemm_blocked_epilogue, GemmEpilogue in kernels/gemm.h), when
// given, runs on each tile of C right after its last K slice, while the tile is in L1. Strips
// are zero-padded to whole MR / NR, and the tiles at the right and bottom edges of C store only
// their part (masked vector stores, or a narrower kernel for a last strip with few columns), so
// nothing outside op(C)'s M x N is read or written.
//
// Threads: C is cut into a Tr x Tc grid of regions (Tr * Tc = threads), one region per thread,
// each computed by the loops above with the thread's own packing buffers, no barrier inside.
// Tr and Tc are chosen by a small cost model: the longest thread's multiply-adds plus its packing
// (a thread packs the A rows and the B columns of its region), whole strips only.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "kernels/cpu/gemm_kernels.h"
#include "kernels/cpu_isa.h"
#include "kernels/gemm.h"
#include "tensor/error.h"

namespace prm::cpu {

void* gemm_scratch(int role, size_t bytes) {
  struct Buffer {
    void* ptr = nullptr;
    size_t bytes = 0;
    ~Buffer() { std::free(ptr); }
  };
  thread_local Buffer buffers[5];  // the roles in gemm_kernels.h
  Buffer& b = buffers[role];
  bytes = (bytes + 63) / 64 * 64;
  if (b.bytes < bytes) {
    std::free(b.ptr);
    b.ptr = std::aligned_alloc(64, bytes);
    PRM_CHECK(b.ptr != nullptr, "gemm: out of memory for a ", bytes, "-byte buffer");
    b.bytes = bytes;
  }
  return b.ptr;
}

namespace {

template <typename T>
const GemmMicroKernel<T>& kernel_for(CpuIsa isa) {
  if constexpr (std::is_same_v<T, float>) {
#if defined(__x86_64__)
    if (isa == CpuIsa::avx512) return gemm_kernel_avx512_f32();
    if (isa == CpuIsa::avx2) return gemm_kernel_avx2_f32();
#endif
    (void)isa;
    return gemm_kernel_scalar_f32();
  } else {
#if defined(__x86_64__)
    if (isa == CpuIsa::avx512) return gemm_kernel_avx512_f64();
    if (isa == CpuIsa::avx2) return gemm_kernel_avx2_f64();
#endif
    (void)isa;
    return gemm_kernel_scalar_f64();
  }
}

// Packing reads its source along memory rows where it can, and has the strip width as a
// compile-time constant (kMR / kNR: each kernel's width is one of a few), so that copying one
// k of a strip is a few vector moves rather than a loop or a call.

// rows x kc of op(A) (A already offset to the block's first row and k) into MR-row strips:
// strip s holds a[k * MR + i] = op(A)(s * MR + i, k), zero for rows past `rows`.
// kc memory rows of src (row stride ld), `width` elements of each, into kW-wide strips: strip s
// holds dst[k * kW + j] = src[k * ld + s * kW + j], zero past `width`. Each memory row is walked
// across all strips (op(A) transposed into MR-row strips, op(B) as it lies into NR-column ones).
template <int kW, typename T>
void pack_rows_into_strips(T* dst, const T* src, int64_t ld, int64_t width, int64_t kc) {
  const int64_t full = width / kW;  // whole strips
  for (int64_t k = 0; k < kc; ++k) {
    const T* from = src + k * ld;
    T* d = dst + k * kW;
    for (int64_t s = 0; s < full; ++s, from += kW, d += kc * kW)
      std::memcpy(d, from, sizeof(T) * kW);  // a few vector moves (a per-element loop of the
                                             // transposed-A packing had stayed scalar)
    const int64_t n = width - full * kW;
    if (n > 0)
      for (int j = 0; j < kW; ++j) d[j] = j < n ? from[j] : T(0);
  }
}

template <int kMR, typename T>
void pack_a_fixed(T* dst, const T* A, int64_t lda, bool trans_a, int64_t rows, int64_t kc,
                  void (*pack_rows)(T*, const T*, int64_t, int64_t),
                  void (*pack_columns)(T*, const T*, int64_t, int64_t, int64_t)) {
  if (trans_a) {  // op(A)(i, k) = A[k * lda + i]: memory row k is the strips' k-th column
    if (pack_columns != nullptr) return pack_columns(dst, A, lda, rows, kc);
    pack_rows_into_strips<kMR>(dst, A, lda, rows, kc);
    return;
  }
  for (int64_t r0 = 0; r0 < rows; r0 += kMR, dst += kc * kMR) {
    const int64_t n = std::min<int64_t>(kMR, rows - r0);
    if (n == kMR && pack_rows != nullptr) {  // the instruction set's own transposes
      pack_rows(dst, A + r0 * lda, lda, kc);
    } else if (n == kMR) {  // op(A)(i, k) = A[i * lda + k]: kMR rows read side by side
      const T* src = A + r0 * lda;
      for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < kMR; ++i) dst[k * kMR + i] = src[i * lda + k];
    } else {
      for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < kMR; ++i) dst[k * kMR + i] = i < n ? A[(r0 + i) * lda + k] : T(0);
    }
  }
}

// kc x cols of op(B) (B already offset) into NR-column strips: strip s holds
// b[k * NR + j] = op(B)(k, s * NR + j), zero for columns past `cols`.
template <int kNR, typename T>
void pack_b_fixed(T* dst, const T* B, int64_t ldb, bool trans_b, int64_t cols, int64_t kc) {
  if (!trans_b) {  // op(B)(k, j) = B[k * ldb + j]: memory row k is the strips' row k
    pack_rows_into_strips<kNR>(dst, B, ldb, cols, kc);
    return;
  }
  // op(B)(k, j) = B[j * ldb + k]: memory row j is op(B)'s column j. Each one is read along k
  // and scattered down its strip (kc x kNR, in L1 or L2); walking k across the rows instead
  // would touch kNR pages per k.
  for (int64_t c0 = 0; c0 < cols; c0 += kNR, dst += kc * kNR) {
    const int64_t n = std::min<int64_t>(kNR, cols - c0);
    int64_t j = 0;
#if defined(__SSE2__)
    if constexpr (std::is_same_v<T, float>) {
      // Four rows at a time, in 4 x 4 blocks: four loads along k, a transpose in registers
      // (SSE, which every x86-64 has), four stores down the strip.
      for (; j + 4 <= n; j += 4) {
        const float* s0 = B + (c0 + j) * ldb;
        const float *s1 = s0 + ldb, *s2 = s1 + ldb, *s3 = s2 + ldb;
        int64_t k = 0;
        for (; k + 4 <= kc; k += 4) {
          __m128 r0 = _mm_loadu_ps(s0 + k), r1 = _mm_loadu_ps(s1 + k);
          __m128 r2 = _mm_loadu_ps(s2 + k), r3 = _mm_loadu_ps(s3 + k);
          _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
          float* d = dst + k * kNR + j;
          _mm_storeu_ps(d, r0);
          _mm_storeu_ps(d + kNR, r1);
          _mm_storeu_ps(d + 2 * kNR, r2);
          _mm_storeu_ps(d + 3 * kNR, r3);
        }
        for (; k < kc; ++k) {
          float* d = dst + k * kNR + j;
          d[0] = s0[k], d[1] = s1[k], d[2] = s2[k], d[3] = s3[k];
        }
      }
    }
#endif
    for (; j + 4 <= n; j += 4) {  // four rows at a time: four streams in flight from memory
      const T* s0 = B + (c0 + j) * ldb;
      const T *s1 = s0 + ldb, *s2 = s1 + ldb, *s3 = s2 + ldb;
      for (int64_t k = 0; k < kc; ++k) {
        T* d = dst + k * kNR + j;
        d[0] = s0[k], d[1] = s1[k], d[2] = s2[k], d[3] = s3[k];
      }
    }
    for (; j < n; ++j) {
      const T* src = B + (c0 + j) * ldb;
      for (int64_t k = 0; k < kc; ++k) dst[k * kNR + j] = src[k];
    }
    for (int64_t j = n; j < kNR; ++j)
      for (int64_t k = 0; k < kc; ++k) dst[k * kNR + j] = T(0);
  }
}

template <typename T>
void pack_a(T* dst, const T* A, int64_t lda, bool trans_a, int64_t rows, int64_t kc,
            const GemmMicroKernel<T>& uk) {
  switch (uk.MR) {
    case 8:
      return pack_a_fixed<8>(dst, A, lda, trans_a, rows, kc, uk.pack_a_rows,
                                uk.pack_a_columns);
    case 6:
      return pack_a_fixed<6>(dst, A, lda, trans_a, rows, kc, uk.pack_a_rows,
                                uk.pack_a_columns);
    case 4:
      return pack_a_fixed<4>(dst, A, lda, trans_a, rows, kc, uk.pack_a_rows,
                                uk.pack_a_columns);
  }
  PRM_CHECK(false, "gemm: no packing for MR = ", uk.MR);
}

template <typename T>
void pack_b(T* dst, const T* B, int64_t ldb, bool trans_b, int64_t cols, int64_t kc,
            const GemmMicroKernel<T>& uk) {
  const int NR = uk.NR;
  if (!trans_b && uk.pack_b_rows != nullptr)  // the instruction set's own moves
    return uk.pack_b_rows(dst, B, ldb, cols, kc);
  if (trans_b && uk.pack_b_columns != nullptr) {  // its own transposes, whole strips
    const int64_t full = cols / NR;
    for (int64_t s = 0; s < full; ++s)
      uk.pack_b_columns(dst + s * kc * NR, B + s * NR * ldb, ldb, kc);
    if (full * NR == cols) return;
    dst += full * kc * NR;  // the last, partial strip below
    B += full * NR * ldb;
    cols -= full * NR;
  }
  switch (NR) {
    case 48: return pack_b_fixed<48>(dst, B, ldb, trans_b, cols, kc);
    case 24: return pack_b_fixed<24>(dst, B, ldb, trans_b, cols, kc);
    case 16: return pack_b_fixed<16>(dst, B, ldb, trans_b, cols, kc);
    case 8: return pack_b_fixed<8>(dst, B, ldb, trans_b, cols, kc);
  }
  PRM_CHECK(false, "gemm: no packing for NR = ", NR);
}

struct Operands {
  bool trans_a, trans_b;
  int64_t K;
  const void* A;
  int64_t lda;
  const void* B;
  int64_t ldb;
  void* C;
  int64_t ldc;
  const void* pack_b_fn = nullptr;  // a GemmPackB<T> supplying op(B) (gemm_blocked_packed_b)
  const void* epilogue = nullptr;   // a GemmEpilogue<T> on each finished tile of C
  const void* packed_a = nullptr;   // a GemmPackedA<T> holding op(A) (gemm_blocked_prepacked)
};

// One thread's region of C: rows [m0, m1) x columns [n0, n1), all of K.
// Below, a region whose rows are one A block packs B a panel of about kPanelBytes at a time
// (columns of op(B), whole strips): small enough for the core's L2 beside the A block, wide
// enough that packing reads op(B)'s rows in runs of a few hundred columns.
constexpr int64_t kPanelBytes = 1 << 20;
template <typename T>
void gemm_region(const GemmMicroKernel<T>& uk, const Operands& op, T alpha, T beta, int64_t m0,
                 int64_t m1, int64_t n0, int64_t n1) {
  const int MR = uk.MR, NR = uk.NR;
  const int64_t K = op.K;
  const T* A = static_cast<const T*>(op.A);
  const T* B = static_cast<const T*>(op.B);
  T* C = static_cast<T*>(op.C);
  const int64_t kc_max = std::min(K, uk.KC);
  const int64_t nc_max = std::min((n1 - n0 + NR - 1) / NR * NR, uk.NC);
  const int64_t mc_max = std::min((m1 - m0 + MR - 1) / MR * MR, uk.MC);
  T* packed_b = static_cast<T*>(gemm_scratch(0, sizeof(T) * kc_max * nc_max));
  const auto* prepacked = static_cast<const GemmPackedA<T>*>(op.packed_a);
  T* packed_a =
      prepacked != nullptr ? nullptr : static_cast<T*>(gemm_scratch(1, sizeof(T) * kc_max * mc_max));
  const T* a_block = packed_a;  // the A block the tiles read: packed here, or the prepacked one's
  // The A block of rows [i0, i0 + mc) and K slice [pc, pc + kc).
  auto pack_a_block = [&](int64_t i0, int64_t mc, int64_t pc, int64_t kc) {
    if (prepacked != nullptr) {
      a_block = prepacked->strips(pc, i0);
      return;
    }
    pack_a(packed_a, op.trans_a ? A + pc * op.lda + i0 : A + i0 * op.lda + pc, op.lda, op.trans_a,
           mc, kc, uk);
  };
  const GemmEpilogue<T>* epilogue = static_cast<const GemmEpilogue<T>*>(op.epilogue);
  // Columns [j0, j0 + nc) of op(B)'s rows [pc, pc + kc) into NR-column strips at dst.
  auto pack_b_block = [&](T* dst, int64_t pc, int64_t kc, int64_t j0, int64_t nc) {
    if (op.pack_b_fn != nullptr)
      (*static_cast<const GemmPackB<T>*>(op.pack_b_fn))(dst, pc, kc, j0, nc, NR);
    else
      pack_b(dst, op.trans_b ? B + j0 * op.ldb + pc : B + pc * op.ldb + j0, op.ldb, op.trans_b,
             nc, kc, uk);
  };
  // The MR x NR tile at (ic + ir, jc + jr) from strip ir of the packed A block and the B strip b.
  auto tile = [&](int64_t ic, int64_t mc, int64_t ir, int64_t jc, int64_t nc, int64_t jr,
                  const T* b, int64_t pc, int64_t kc) {
    const int rows = static_cast<int>(std::min<int64_t>(MR, mc - ir));
    const int cols = static_cast<int>(std::min<int64_t>(NR, nc - jr));
    T* c = C + (ic + ir) * op.ldc + jc + jr;
    auto run = uk.run;  // a narrower kernel for a last strip with few columns
    for (int v = 0; v < 2 && cols < NR; ++v)
      if (uk.narrow_run[v] != nullptr && cols <= uk.narrow_cols[v]) {
        run = uk.narrow_run[v];
        break;
      }
    const T beta_here = pc == 0 ? beta : T(1);  // later K slices add to the first
    run(kc, a_block + ir * kc, b, alpha, beta_here, c, op.ldc, rows, cols);
    if (epilogue != nullptr && pc + kc >= K) (*epilogue)(c, op.ldc, ic + ir, jc + jr, rows, cols);
  };
  // The block's last strip of columns when it holds at most uk.tail_cols of them: strips of A
  // [ir0, ir1) of the block (at most uk.tail_strips) against it, by uk.tail_run.
  auto tail = [&](int64_t ic, int64_t mc, int64_t ir0, int64_t ir1, int64_t jc, int64_t nc,
                  int64_t jr, const T* b, int64_t pc, int64_t kc) {
    const int rows = static_cast<int>(std::min(ir1, mc) - ir0);
    const int cols = static_cast<int>(nc - jr);
    T* c = C + (ic + ir0) * op.ldc + jc + jr;
    const T beta_here = pc == 0 ? beta : T(1);
    uk.tail_run(kc, a_block + ir0 * kc, MR * kc, b, alpha, beta_here, c, op.ldc, rows, cols);
    if (epilogue != nullptr && pc + kc >= K) (*epilogue)(c, op.ldc, ic + ir0, jc + jr, rows, cols);
  };
  // The tiles of rows [ic, ic + mc) against the packed B columns [j0, j0 + width) of the block
  // of columns [jc, jc + nc) (packed_b holding column j0 on). A panel that fits L2 (all of the
  // one-block case below; layer 4's 196 columns in the other): a strip of A's rows runs along the
  // whole panel before the next, so that C (and the residual an epilogue reads) is written and
  // read in row segments a panel wide, where B strip by B strip it was MR x NR tiles whose rows
  // lie a page apart; the panel is read from L2 once per strip of A instead. ResNet-50 at 448 x
  // 448: forward 0.90-0.93x the time, training step 0.95-0.97x; layer 1's 1x1 with the residual
  // 2.8 -> 2.0 ms, layer 4's of 2048 channels 1.8 -> 1.65 ms. A larger panel: one B strip (in
  // L1) against the whole A block, strip after strip. The same tiles either way, so the same sums.
  // Inlined into both callers: left to GCC it became a call, and the forward 1-2 % slower.
  auto run_panel = [&](int64_t ic, int64_t mc, int64_t jc, int64_t nc, int64_t j0, int64_t width,
                       int64_t pc, int64_t kc) __attribute__((always_inline)) {
    // Whether the panel ends with the block's last strip and that strip is short enough for
    // `tail`: then the tile loops stop before it, and `tail` takes it after each group of
    // tail_strips strips of A (rows first) or after all the other strips (columns first).
    const int64_t last = (nc - 1) / NR * NR;  // the block's last strip
    const bool has_tail = uk.tail_run != nullptr && j0 + width > last && nc - last <= uk.tail_cols;
    const int64_t full = has_tail ? last - j0 : width;
    const int64_t group = static_cast<int64_t>(uk.tail_strips) * MR;
    if (static_cast<int64_t>(sizeof(T)) * kc * width <= kPanelBytes) {
      for (int64_t ir = 0; ir < mc; ir += MR) {
        for (int64_t jr = 0; jr < full; jr += NR)
          tile(ic, mc, ir, jc, nc, j0 + jr, packed_b + jr * kc, pc, kc);
        if (has_tail && ((ir + MR) % group == 0 || ir + MR >= mc))  // a group's strips done
          tail(ic, mc, ir / group * group, ir + MR, jc, nc, last, packed_b + full * kc, pc, kc);
      }
    } else {
      for (int64_t jr = 0; jr < full; jr += NR)
        for (int64_t ir = 0; ir < mc; ir += MR)
          tile(ic, mc, ir, jc, nc, j0 + jr, packed_b + jr * kc, pc, kc);
      if (has_tail)
        for (int64_t ir = 0; ir < mc; ir += group)
          tail(ic, mc, ir, ir + group, jc, nc, last, packed_b + full * kc, pc, kc);
    }
  };
  if (m1 - m0 <= uk.MC) {
    // The region's rows are one A block, so each B strip serves that block only: pack B a
    // kPanelBytes panel at a time and run the block against it right away, so the panel goes
    // from the packing to the microkernel through L2 instead of a whole KC x NC panel (4 MiB)
    // going out to L3 and back; and the A block is packed once per K slice, not once per NC
    // panel. The same tiles and the same K slices in the same order as below, so the same sums.
    const int64_t mc = m1 - m0;
    for (int64_t pc = 0; pc < K; pc += uk.KC) {
      const int64_t kc = std::min(uk.KC, K - pc);
      pack_a_block(m0, mc, pc, kc);
      const int64_t panel =  // whole strips, within the packing buffer (nc_max columns)
          std::min(nc_max, std::max<int64_t>(1, kPanelBytes / (sizeof(T) * kc * NR)) * NR);
      for (int64_t jp = 0; jp < n1 - n0; jp += panel) {
        const int64_t np = std::min(panel, n1 - n0 - jp);
        pack_b_block(packed_b, pc, kc, n0 + jp, np);
        run_panel(m0, mc, n0, n1 - n0, jp, np, pc, kc);
      }
    }
    return;
  }
  for (int64_t jc = n0; jc < n1; jc += uk.NC) {
    const int64_t nc = std::min(uk.NC, n1 - jc);
    for (int64_t pc = 0; pc < K; pc += uk.KC) {
      const int64_t kc = std::min(uk.KC, K - pc);
      pack_b_block(packed_b, pc, kc, jc, nc);
      for (int64_t ic = m0; ic < m1; ic += uk.MC) {
        const int64_t mc = std::min(uk.MC, m1 - ic);
        pack_a_block(ic, mc, pc, kc);
        run_panel(ic, mc, jc, nc, 0, nc, pc, kc);
      }
    }
  }
}

// A thread's region in a Tr x Tc grid (thread t: row r = t / Tc, column c = t % Tc): rows and
// columns bounded on whole strips, as even as the strips allow (empty when there are more
// threads than strips).
struct Region {
  int64_t m0, m1, n0, n1;
};
Region grid_region(int64_t M, int64_t N, int MR, int NR, int tr, int tc, int t) {
  const int64_t m_strips = (M + MR - 1) / MR, n_strips = (N + NR - 1) / NR;
  const int64_t r = t / tc, c = t % tc;
  return Region{std::min(M, r * m_strips / tr * MR), std::min(M, (r + 1) * m_strips / tr * MR),
                std::min(N, c * n_strips / tc * NR), std::min(N, (c + 1) * n_strips / tc * NR)};
}

// The thread grid Tr x Tc (Tr * Tc = threads) with the least estimated time for the slowest
// thread: its multiply-adds plus its packing. The multiply-adds are counted on whole MR-row
// strips and, in the columns, on whole vectors of `lanes` (a last strip with few columns runs a
// narrower kernel or the tail kernel), 32 a cycle; the packing `a_cycles` per element of the A
// rows and `b_cycles` per element of the B columns of its region (threads that share rows each
// pack them). Packing B's rows costs about a quarter of a cycle per element, a B packed by the
// caller's function (a convolution's implicit im2col, gathering runs of an image row) about
// 0.75, A about 1 (its strips are transposed: MR rows read side by side), and a prepacked A
// nothing here. ResNet-50's layer-3 3x3 convolution of stride 2 (256 x 784 x 2304, A
// prepacked) went 4.2 -> 3.4 ms in the forward when this took the columns apart instead of the
// rows, where both threads had packed all of B; with A at 1 rather than 0.25, the GEMMs with
// N = 784 and M = 256 split their rows instead of their columns, where both threads had packed
// all of A (`--only gemm`, two alternating runs each: 256 x 784 x 2304 0.64-0.65 -> 0.69-0.70 of
// the peak, 256 x 784 x 1024 0.65-0.66 -> 0.68-0.69, 128 x 3136 x 512 0.63-0.65 -> 0.66-0.67;
// no shape slower).
struct Grid {
  int rows = 1, cols = 1;
};

Grid choose_grid(int threads, int64_t M, int64_t N, int64_t K, int MR, int NR, int lanes,
                 double a_cycles, double b_cycles) {
  Grid best;
  double best_cost = -1;
  for (int tr = 1; tr <= threads; ++tr) {
    if (threads % tr) continue;
    const int tc = threads / tr;
    double slowest = 0;
    for (int t = 0; t < threads; ++t) {
      const Region g = grid_region(M, N, MR, NR, tr, tc, t);
      if (g.m0 >= g.m1 || g.n0 >= g.n1) continue;
      const int64_t rows = g.m1 - g.m0, cols = g.n1 - g.n0;
      const double fma_rows = static_cast<double>((rows + MR - 1) / MR * MR);
      const double fma_cols = static_cast<double>((cols + lanes - 1) / lanes * lanes);
      const double cost =
          fma_rows * fma_cols * K / 32.0 + (rows * a_cycles + cols * b_cycles) * K;
      slowest = std::max(slowest, cost);
    }
    if (best_cost < 0 || slowest < best_cost) best_cost = slowest, best = Grid{tr, tc};
  }
  return best;
}

template <typename T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
}

// The whole product: one region, or a grid of regions over the OpenMP threads.
template <typename T>
void gemm_run(const Operands& op, int64_t M, int64_t N, T alpha, T beta) {
  const int64_t K = op.K;
  const GemmMicroKernel<T>& uk = kernel_for<T>(cpu_isa_active());
  const bool threaded = static_cast<double>(M) * N * K > 48.0 * 48 * 48 && !omp_in_parallel();
  if (!threaded || omp_get_max_threads() == 1) return gemm_region(uk, op, alpha, beta, 0, M, 0, N);
#pragma omp parallel
  {
    // Every thread derives the same grid from the team's actual size, then takes its region.
    const int threads = omp_get_num_threads(), t = omp_get_thread_num();
    const Grid grid = choose_grid(threads, M, N, K, uk.MR, uk.NR,
                                  uk.narrow_cols[0] > 0 ? uk.narrow_cols[0] : uk.NR,
                                  op.packed_a != nullptr ? 0.0 : 1.0,
                                  op.pack_b_fn != nullptr ? 0.75 : 0.25);
    const Region g = grid_region(M, N, uk.MR, uk.NR, grid.rows, grid.cols, t);
    const int64_t m0 = g.m0, m1 = g.m1, n0 = g.n0, n1 = g.n1;
    if (m0 < m1 && n0 < n1) gemm_region(uk, op, alpha, beta, m0, m1, n0, n1);
  }
}

// The whole product for the entry points below: C only scaled when there is nothing to
// multiply (K = 0 or alpha = 0), then the epilogue, if any, on all of C at once.
template <typename T>
void gemm_entry(const Operands& op, int64_t M, int64_t N, T alpha, T beta) {
  if (M <= 0 || N <= 0) return;
  if (op.K <= 0 || alpha == T(0)) {
    T* C = static_cast<T*>(op.C);
    scale_c(M, N, beta, C, op.ldc);
    const auto* epilogue = static_cast<const GemmEpilogue<T>*>(op.epilogue);
    if (epilogue != nullptr) (*epilogue)(C, op.ldc, 0, 0, M, N);
    return;
  }
  gemm_run(op, M, N, alpha, beta);
}

}  // namespace

template <typename T>
void gemm_blocked(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  gemm_entry(Operands{trans_a, trans_b, K, A, lda, B, ldb, C, ldc}, M, N, alpha, beta);
}

template <typename T>
void gemm_blocked_packed_b(bool trans_a, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                           int64_t lda, const GemmPackB<T>& pack_b, T beta, T* C, int64_t ldc) {
  Operands op{trans_a, false, K, A, lda, nullptr, 0, C, ldc};
  op.pack_b_fn = &pack_b;
  gemm_entry(op, M, N, alpha, beta);
}

template <typename T>
void gemm_blocked_epilogue(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                           const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                           int64_t ldc, const GemmEpilogue<T>& epilogue) {
  Operands op{trans_a, trans_b, K, A, lda, B, ldb, C, ldc};
  op.epilogue = epilogue ? &epilogue : nullptr;
  gemm_entry(op, M, N, alpha, beta);
}

template <typename T>
void gemm_blocked_packed_b_epilogue(bool trans_a, int64_t M, int64_t N, int64_t K, T alpha,
                                    const T* A, int64_t lda, const GemmPackB<T>& pack_b, T beta,
                                    T* C, int64_t ldc, const GemmEpilogue<T>& epilogue) {
  Operands op{trans_a, false, K, A, lda, nullptr, 0, C, ldc};
  op.pack_b_fn = &pack_b;
  op.epilogue = epilogue ? &epilogue : nullptr;
  gemm_entry(op, M, N, alpha, beta);
}

template <typename T>
GemmPackedA<T>::GemmPackedA(bool trans_a, int64_t M, int64_t K, const T* A, int64_t lda)
    : M_(M), K_(K), isa_(cpu_isa_active()) {
  const GemmMicroKernel<T>& uk = kernel_for<T>(isa_);
  const int MR = uk.MR;
  KC_ = uk.KC;
  const int64_t strips = (M + MR - 1) / MR;
  padded_rows_ = strips * MR;
  size_ = padded_rows_ * K;
  const size_t bytes = (sizeof(T) * static_cast<size_t>(std::max<int64_t>(size_, 1)) + 63) / 64 * 64;
  data_.reset(static_cast<T*>(std::aligned_alloc(64, bytes)));
  PRM_CHECK(data_ != nullptr, "gemm: out of memory for a packed ", M, " x ", K, " matrix");
  T* dst = data_.get();
  // Each thread packs a range of strips in every K slice (slice pc starts at pc * padded rows:
  // all slices before the last are KC deep).
  const bool threaded = static_cast<double>(M) * K > 64.0 * 1024 && !omp_in_parallel();
#pragma omp parallel if (threaded)
  {
    const int threads = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t s0 = t * strips / threads, s1 = (t + 1) * strips / threads;
    const int64_t r0 = s0 * MR, rows = std::min(M, s1 * MR) - r0;
    if (rows > 0)
      for (int64_t pc = 0; pc < K; pc += KC_) {
        const int64_t kc = std::min(KC_, K - pc);
        pack_a(dst + pc * padded_rows_ + r0 * kc,
               trans_a ? A + pc * lda + r0 : A + r0 * lda + pc, lda, trans_a, rows, kc, uk);
      }
  }
}

template <typename T>
const T* GemmPackedA<T>::strips(int64_t k0, int64_t i0) const {
  return data_.get() + k0 * padded_rows_ + i0 * std::min(KC_, K_ - k0);
}

template <typename T>
void gemm_blocked_prepacked(const GemmPackedA<T>& A, int64_t N, T alpha, const T* B, int64_t ldb,
                            const GemmPackB<T>* pack_b, T beta, T* C, int64_t ldc,
                            const GemmEpilogue<T>* epilogue) {
  PRM_CHECK(A.isa() == cpu_isa_active(), "gemm: A was packed for the ", cpu_isa_name(A.isa()),
            " path, but the ", cpu_isa_name(cpu_isa_active()), " path is active");
  Operands op{false, false, A.depth(), nullptr, 0, B, ldb, C, ldc};
  op.pack_b_fn = pack_b;
  op.epilogue = epilogue != nullptr && *epilogue ? epilogue : nullptr;
  op.packed_a = &A;
  gemm_entry(op, A.rows(), N, alpha, beta);
}

template class GemmPackedA<float>;
template class GemmPackedA<double>;
template void gemm_blocked_prepacked<float>(const GemmPackedA<float>&, int64_t, float,
                                            const float*, int64_t, const GemmPackB<float>*, float,
                                            float*, int64_t, const GemmEpilogue<float>*);
template void gemm_blocked_prepacked<double>(const GemmPackedA<double>&, int64_t, double,
                                             const double*, int64_t, const GemmPackB<double>*,
                                             double, double*, int64_t,
                                             const GemmEpilogue<double>*);

template void gemm_blocked<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*,
                                  int64_t, const float*, int64_t, float, float*, int64_t);
template void gemm_blocked<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*,
                                   int64_t, const double*, int64_t, double, double*, int64_t);
template void gemm_blocked_packed_b<float>(bool, int64_t, int64_t, int64_t, float, const float*,
                                           int64_t, const GemmPackB<float>&, float, float*,
                                           int64_t);
template void gemm_blocked_packed_b<double>(bool, int64_t, int64_t, int64_t, double,
                                            const double*, int64_t, const GemmPackB<double>&,
                                            double, double*, int64_t);
template void gemm_blocked_epilogue<float>(bool, bool, int64_t, int64_t, int64_t, float,
                                           const float*, int64_t, const float*, int64_t, float,
                                           float*, int64_t, const GemmEpilogue<float>&);
template void gemm_blocked_epilogue<double>(bool, bool, int64_t, int64_t, int64_t, double,
                                            const double*, int64_t, const double*, int64_t,
                                            double, double*, int64_t,
                                            const GemmEpilogue<double>&);
template void gemm_blocked_packed_b_epilogue<float>(bool, int64_t, int64_t, int64_t, float,
                                                    const float*, int64_t,
                                                    const GemmPackB<float>&, float, float*,
                                                    int64_t, const GemmEpilogue<float>&);
template void gemm_blocked_packed_b_epilogue<double>(bool, int64_t, int64_t, int64_t, double,
                                                     const double*, int64_t,
                                                     const GemmPackB<double>&, double, double*,
                                                     int64_t, const GemmEpilogue<double>&);

}  // namespace prm::cpu
