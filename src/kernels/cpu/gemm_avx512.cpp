// AVX-512F microkernels of the CPU GEMM (kernels/cpu/gemm_kernels.h), compiled for AVX-512 by
// function attribute and only called when the CPU has it (kernels/cpu_isa.h).
//
// 32 zmm registers: float32 tile 8 x 48 (8 rows x 3 vectors of 16 = 24 accumulators, 3 for the
// B row, 1 for the broadcast A value: 28); float64 the same shape, 8 x 24. The narrower
// instantiations (1 or 2 of the 3 vectors) take a last strip of C with few columns. Block sizes
// and the choice of tile: docs/cpu_gemm.md.
#include "kernels/cpu/gemm_kernels.h"
#include "kernels/cpu/transpose_avx512.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>

#define PRM_GEMM_TARGET __attribute__((target("avx512f,fma")))
#include "kernels/cpu/gemm_tile.h"

namespace prm::cpu {
namespace {

struct F32x16 {
  using T = float;
  using Reg = __m512;
  static constexpr int kLanes = 16;
  PRM_GEMM_TARGET static Reg zero() { return _mm512_setzero_ps(); }
  PRM_GEMM_TARGET static Reg load(const T* p) { return _mm512_load_ps(p); }
  PRM_GEMM_TARGET static Reg loadu(const T* p) { return _mm512_loadu_ps(p); }
  PRM_GEMM_TARGET static void storeu(T* p, Reg r) { _mm512_storeu_ps(p, r); }
  PRM_GEMM_TARGET static Reg load_first(const T* p, int n) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
  }
  PRM_GEMM_TARGET static void store_first(T* p, Reg r, int n) {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), r);
  }
  PRM_GEMM_TARGET static Reg broadcast(const T* p) { return _mm512_set1_ps(*p); }
  PRM_GEMM_TARGET static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  PRM_GEMM_TARGET static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
};

struct F64x8 {
  using T = double;
  using Reg = __m512d;
  static constexpr int kLanes = 8;
  PRM_GEMM_TARGET static Reg zero() { return _mm512_setzero_pd(); }
  PRM_GEMM_TARGET static Reg load(const T* p) { return _mm512_load_pd(p); }
  PRM_GEMM_TARGET static Reg loadu(const T* p) { return _mm512_loadu_pd(p); }
  PRM_GEMM_TARGET static void storeu(T* p, Reg r) { _mm512_storeu_pd(p, r); }
  PRM_GEMM_TARGET static Reg load_first(const T* p, int n) {
    return _mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << n) - 1), p);
  }
  PRM_GEMM_TARGET static void store_first(T* p, Reg r, int n) {
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1), r);
  }
  PRM_GEMM_TARGET static Reg broadcast(const T* p) { return _mm512_set1_pd(*p); }
  PRM_GEMM_TARGET static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_pd(a, b, c); }
  PRM_GEMM_TARGET static Reg mul(Reg a, Reg b) { return _mm512_mul_pd(a, b); }
};

// Eight rows of A into an 8-row strip, sixteen k at a time: eight row loads, then the 8 x 16
// block transposed in registers (unpacks pair the rows, 128-bit-lane shuffles finish each k's
// eight values and put two k side by side), eight 64-byte stores: a quarter of the shuffles,
// loads and stores of the portable loop's 4 x 4 SSE transposes. The tail (kc % 16) one value at a
// time. A pure copy, so the same bits.
// (GCC 12's AVX-512 unpack and shuffle intrinsics pass an "undefined" source register that its
// own -Wmaybe-uninitialized then reports; the warning is off for this function only.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
PRM_GEMM_TARGET void pack_a8_f32(float* dst, const float* A, int64_t lda, int64_t kc) {
  int64_t k = 0;
  for (; k + 16 <= kc; k += 16, dst += 128) {
    __m512 r[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm512_loadu_ps(A + i * lda + k);
    // t: in each 128-bit lane l, pairs (row 2p, row 2p+1) of k = 4l + {0, 1} (lo), {2, 3} (hi).
    const __m512 t0 = _mm512_unpacklo_ps(r[0], r[1]), t1 = _mm512_unpackhi_ps(r[0], r[1]);
    const __m512 t2 = _mm512_unpacklo_ps(r[2], r[3]), t3 = _mm512_unpackhi_ps(r[2], r[3]);
    const __m512 t4 = _mm512_unpacklo_ps(r[4], r[5]), t5 = _mm512_unpackhi_ps(r[4], r[5]);
    const __m512 t6 = _mm512_unpacklo_ps(r[6], r[7]), t7 = _mm512_unpackhi_ps(r[6], r[7]);
    // u[j] (j < 4): rows 0-3 of k = 4l + j in lane l; u[4 + j]: rows 4-7.
    const __m512 u[8] = {_mm512_shuffle_ps(t0, t2, 0x44), _mm512_shuffle_ps(t0, t2, 0xEE),
                         _mm512_shuffle_ps(t1, t3, 0x44), _mm512_shuffle_ps(t1, t3, 0xEE),
                         _mm512_shuffle_ps(t4, t6, 0x44), _mm512_shuffle_ps(t4, t6, 0xEE),
                         _mm512_shuffle_ps(t5, t7, 0x44), _mm512_shuffle_ps(t5, t7, 0xEE)};
    // For k = 4l + j and 4l + j + 1 (j = 0, 2): [u[j].l, u[4+j].l, u[j+1].l, u[5+j].l].
    for (int j = 0; j < 4; j += 2) {
      const __m512 lo_a = _mm512_shuffle_f32x4(u[j], u[4 + j], _MM_SHUFFLE(1, 0, 1, 0));
      const __m512 lo_b = _mm512_shuffle_f32x4(u[j + 1], u[5 + j], _MM_SHUFFLE(1, 0, 1, 0));
      const __m512 hi_a = _mm512_shuffle_f32x4(u[j], u[4 + j], _MM_SHUFFLE(3, 2, 3, 2));
      const __m512 hi_b = _mm512_shuffle_f32x4(u[j + 1], u[5 + j], _MM_SHUFFLE(3, 2, 3, 2));
      _mm512_storeu_ps(dst + (0 + j) * 8, _mm512_shuffle_f32x4(lo_a, lo_b, _MM_SHUFFLE(2, 0, 2, 0)));
      _mm512_storeu_ps(dst + (4 + j) * 8, _mm512_shuffle_f32x4(lo_a, lo_b, _MM_SHUFFLE(3, 1, 3, 1)));
      _mm512_storeu_ps(dst + (8 + j) * 8, _mm512_shuffle_f32x4(hi_a, hi_b, _MM_SHUFFLE(2, 0, 2, 0)));
      _mm512_storeu_ps(dst + (12 + j) * 8, _mm512_shuffle_f32x4(hi_a, hi_b, _MM_SHUFFLE(3, 1, 3, 1)));
    }
  }
  for (; k < kc; ++k, dst += 8)
    for (int i = 0; i < 8; ++i) dst[i] = A[i * lda + k];
}
#pragma GCC diagnostic pop

// 48 rows of B (op(B)'s columns j, B transposed) into one 48-column strip, in 16 x 16 blocks:
// sixteen row loads of 16 k, the block transposed in registers (transpose16x16_ps), sixteen
// stores of 16 columns, one per k; the tail (kc % 16) one value at a time. A pure copy, so the
// same bits.
PRM_GEMM_TARGET void pack_b48_columns_f32(float* dst, const float* B, int64_t ldb, int64_t kc) {
  for (int jb = 0; jb < 48; jb += 16) {
    const float* src = B + jb * ldb;
    int64_t k = 0;
    for (; k + 16 <= kc; k += 16) {
      __m512 r[16], c[16];
      for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * ldb + k);
      transpose16x16_ps(r, c);
      for (int j = 0; j < 16; ++j) _mm512_storeu_ps(dst + (k + j) * 48 + jb, c[j]);
    }
    for (; k < kc; ++k)
      for (int i = 0; i < 16; ++i) dst[k * 48 + jb + i] = src[i * ldb + k];
  }
}

// A transposed into 8-row strips: each memory row k of A gives every strip its k-th 8 values,
// one 32-byte move each, taken 64 rows by 8 strips at a time so that each strip receives 2 KiB
// in a row and each memory row is read in 256-byte runs (walked a whole row at a time, every row
// wrote 32 bytes into each of up to 84 strips). A partial last strip value by value, its padding
// zero. A pure copy, so the same bits.
PRM_GEMM_TARGET void pack_a8_columns_f32(float* dst, const float* A, int64_t lda, int64_t rows,
                                         int64_t kc) {
  constexpr int64_t kRows = 64, kStrips = 8;
  const int64_t full = rows / 8;
  const int n = static_cast<int>(rows - full * 8);
  for (int64_t k0 = 0; k0 < kc; k0 += kRows) {
    const int64_t k1 = std::min(kc, k0 + kRows);
    for (int64_t s0 = 0; s0 < full; s0 += kStrips) {
      const int64_t s1 = std::min(full, s0 + kStrips);
      for (int64_t k = k0; k < k1; ++k) {
        const float* from = A + k * lda + s0 * 8;
        float* d = dst + s0 * kc * 8 + k * 8;
        for (int64_t s = s0; s < s1; ++s, from += 8, d += kc * 8)
          _mm256_storeu_ps(d, _mm256_loadu_ps(from));
      }
    }
    if (n > 0)
      for (int64_t k = k0; k < k1; ++k)
        for (int i = 0; i < 8; ++i)
          dst[full * kc * 8 + k * 8 + i] = i < n ? A[k * lda + full * 8 + i] : 0.0f;
  }
}

// Rows of B into 48-column strips, three 64-byte moves per row and strip (the portable copy,
// built for the baseline x86-64, moves 16 bytes at a time); a partial last strip with masked
// loads, its padding zero. A pure copy, so the same bits.
PRM_GEMM_TARGET void pack_b48_f32(float* dst, const float* B, int64_t ldb, int64_t width,
                                  int64_t kc) {
  const int64_t full = width / 48;
  const int n = static_cast<int>(width - full * 48);
  auto lanes = [](int m) {
    return m <= 0 ? __mmask16(0) : m >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << m) - 1);
  };
  for (int64_t k = 0; k < kc; ++k) {
    const float* from = B + k * ldb;
    float* d = dst + k * 48;
    for (int64_t s = 0; s < full; ++s, from += 48, d += kc * 48) {
      _mm512_storeu_ps(d, _mm512_loadu_ps(from));
      _mm512_storeu_ps(d + 16, _mm512_loadu_ps(from + 16));
      _mm512_storeu_ps(d + 32, _mm512_loadu_ps(from + 32));
    }
    if (n > 0)
      for (int v = 0; v < 3; ++v)
        _mm512_storeu_ps(d + 16 * v, _mm512_maskz_loadu_ps(lanes(n - 16 * v), from + 16 * v));
  }
}

// A last strip of C with at most 4 columns (ResNet's N = 196 = 4 x 48 + 4 at 448 x 448, 49 =
// 48 + 1 at 224), kS strips of A (8 rows each) at once. The 16-lane narrow kernel spends a
// broadcast per FMA there and fills 12 of its 16 lanes with padding; here the rows of A are the
// lanes instead: one k of a packed strip (8 rows) is one 256-bit load, each of B's kCols values
// one broadcast, and each (strip, column) pair one 256-bit accumulator, so per k kS loads and
// kCols broadcasts feed kS x kCols FMAs. A 32 x 4 x 256 block, alone: 1.65 -> 0.58 us; the
// GEMMs with N = 196 of `prm bench --only gemm`: 2-8 % faster. (256-bit registers: AVX-512VL
// gives 32 of them; 16 accumulators, 4 of A and 1 of B are in use.)
// Every element of C gets the FMAs of the wide kernel in the same order, then alpha and beta
// with the same roundings (one lane at a time), so the same bits.
template <int kS, int kCols>
__attribute__((target("avx512f,avx512vl,fma"))) void tail_f32(int64_t kc, const float* a,
                                                                int64_t a_step, const float* b,
                                                                float alpha, float beta, float* C,
                                                                int64_t ldc, int rows) {
  constexpr int kNR = 48;  // the packed B strip's width
  __m256 acc[kS][kCols];
#pragma GCC unroll 4
  for (int s = 0; s < kS; ++s)
#pragma GCC unroll 4
    for (int j = 0; j < kCols; ++j) acc[s][j] = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    __m256 av[kS];
#pragma GCC unroll 4
    for (int s = 0; s < kS; ++s) av[s] = _mm256_loadu_ps(a + s * a_step + k * 8);
#pragma GCC unroll 4
    for (int j = 0; j < kCols; ++j) {
      const __m256 bj = _mm256_broadcast_ss(b + k * kNR + j);
#pragma GCC unroll 4
      for (int s = 0; s < kS; ++s) acc[s][j] = _mm256_fmadd_ps(av[s], bj, acc[s][j]);
    }
  }
  alignas(32) float sums[kS][kCols][8];
#pragma GCC unroll 4
  for (int s = 0; s < kS; ++s)
#pragma GCC unroll 4
    for (int j = 0; j < kCols; ++j) _mm256_store_ps(sums[s][j], acc[s][j]);
  const __m128 alpha_v = _mm_set_ss(alpha), beta_v = _mm_set_ss(beta);
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < kCols; ++j) {
      float* c = C + r * ldc + j;
      __m128 v = _mm_mul_ss(alpha_v, _mm_set_ss(sums[r / 8][j][r % 8]));
      if (beta != 0) v = _mm_fmadd_ss(beta_v, _mm_set_ss(*c), v);
      *c = _mm_cvtss_f32(v);
    }
}

void tail_kernel_f32(int64_t kc, const float* a, int64_t a_step, const float* b, float alpha,
                     float beta, float* C, int64_t ldc, int rows, int cols) {
  using Fn = void (*)(int64_t, const float*, int64_t, const float*, float, float, float*, int64_t,
                      int);
  static constexpr Fn table[4][4] = {
      {&tail_f32<1, 1>, &tail_f32<1, 2>, &tail_f32<1, 3>, &tail_f32<1, 4>},
      {&tail_f32<2, 1>, &tail_f32<2, 2>, &tail_f32<2, 3>, &tail_f32<2, 4>},
      {&tail_f32<3, 1>, &tail_f32<3, 2>, &tail_f32<3, 3>, &tail_f32<3, 4>},
      {&tail_f32<4, 1>, &tail_f32<4, 2>, &tail_f32<4, 3>, &tail_f32<4, 4>}};
  table[(rows + 7) / 8 - 1][cols - 1](kc, a, a_step, b, alpha, beta, C, ldc, rows);
}

// The 8 x 3-vector tile and its 1- and 2-vector narrowings (a last strip of C with few
// columns), with the cache blocks for V's element type: MC = 84 strips of A; NC = 4080.
template <class V>
GemmMicroKernel<typename V::T> avx512_kernel(int64_t KC) {
  constexpr int kRows = 8, L = V::kLanes;
  return {kRows,
          3 * L,
          kRows * 84,
          KC,
          4080,
          &tile_kernel<V, kRows, 3>,
          {&tile_kernel<V, kRows, 1, 3>, &tile_kernel<V, kRows, 2, 3>},
          {L, 2 * L}};
}

}  // namespace

const GemmMicroKernel<float>& gemm_kernel_avx512_f32() {
  static const GemmMicroKernel<float> k = [] {
    GemmMicroKernel<float> uk = avx512_kernel<F32x16>(256);
    uk.pack_a_rows = &pack_a8_f32;
    uk.pack_b_rows = &pack_b48_f32;
    uk.pack_b_columns = &pack_b48_columns_f32;
    uk.pack_a_columns = &pack_a8_columns_f32;
    uk.tail_run = &tail_kernel_f32;
    uk.tail_cols = 4;
    uk.tail_strips = 4;
    return uk;
  }();
  return k;
}

const GemmMicroKernel<double>& gemm_kernel_avx512_f64() {
  static const GemmMicroKernel<double> k = avx512_kernel<F64x8>(192);
  return k;
}

double peak_loop_avx512(int64_t iters) { return peak_loop<F32x16, 16>(iters); }

}  // namespace prm::cpu
#endif
