// AVX-512F microkernels of the CPU GEMM (kernels/cpu/gemm_kernels.h), compiled for AVX-512 by
// function attribute and only called when the CPU has it (kernels/cpu_isa.h).
//
// 32 zmm registers: float32 tile 8 x 48 (8 rows x 3 vectors of 16 = 24 accumulators, 3 for the
// B row, 1 for the broadcast A value: 28); float64 the same shape, 8 x 24. The narrower
// instantiations (1 or 2 of the 3 vectors) take a last strip of C with few columns. Block sizes
// and the choice of tile: docs/cpu_gemm.md.
#include "kernels/cpu/gemm_kernels.h"

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
  static const GemmMicroKernel<float> k = avx512_kernel<F32x16>(256);
  return k;
}

const GemmMicroKernel<double>& gemm_kernel_avx512_f64() {
  static const GemmMicroKernel<double> k = avx512_kernel<F64x8>(192);
  return k;
}

double peak_loop_avx512(int64_t iters) { return peak_loop<F32x16, 16>(iters); }

}  // namespace prm::cpu
#endif
