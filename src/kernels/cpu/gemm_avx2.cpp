// AVX2+FMA microkernels of the CPU GEMM (kernels/cpu/gemm_kernels.h), compiled for AVX2 and FMA
// by function attribute and only called when the CPU has them (kernels/cpu_isa.h).
//
// 16 ymm registers: tile 6 x 2 vectors (12 accumulators, 2 for the B row, 1 broadcast of A):
// float32 6 x 16, float64 6 x 8. Block sizes: docs/cpu_gemm.md.
#include "kernels/cpu/gemm_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define PRM_GEMM_TARGET __attribute__((target("avx2,fma")))
#include "kernels/cpu/gemm_tile.h"

namespace prm::cpu {
namespace {

struct F32x8 {
  using T = float;
  using Reg = __m256;
  static constexpr int kLanes = 8;
  PRM_GEMM_TARGET static Reg zero() { return _mm256_setzero_ps(); }
  PRM_GEMM_TARGET static Reg load(const T* p) { return _mm256_load_ps(p); }
  PRM_GEMM_TARGET static Reg loadu(const T* p) { return _mm256_loadu_ps(p); }
  PRM_GEMM_TARGET static void storeu(T* p, Reg r) { _mm256_storeu_ps(p, r); }
  // Lane j is kept when j < n: the mask's sign bits.
  PRM_GEMM_TARGET static __m256i first(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  PRM_GEMM_TARGET static Reg load_first(const T* p, int n) { return _mm256_maskload_ps(p, first(n)); }
  PRM_GEMM_TARGET static void store_first(T* p, Reg r, int n) { _mm256_maskstore_ps(p, first(n), r); }
  PRM_GEMM_TARGET static Reg broadcast(const T* p) { return _mm256_broadcast_ss(p); }
  PRM_GEMM_TARGET static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  PRM_GEMM_TARGET static Reg mul(Reg a, Reg b) { return _mm256_mul_ps(a, b); }
};

struct F64x4 {
  using T = double;
  using Reg = __m256d;
  static constexpr int kLanes = 4;
  PRM_GEMM_TARGET static Reg zero() { return _mm256_setzero_pd(); }
  PRM_GEMM_TARGET static Reg load(const T* p) { return _mm256_load_pd(p); }
  PRM_GEMM_TARGET static Reg loadu(const T* p) { return _mm256_loadu_pd(p); }
  PRM_GEMM_TARGET static void storeu(T* p, Reg r) { _mm256_storeu_pd(p, r); }
  // Lane j (two 32-bit halves each) is kept when j < n.
  PRM_GEMM_TARGET static __m256i first(int n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  PRM_GEMM_TARGET static Reg load_first(const T* p, int n) { return _mm256_maskload_pd(p, first(n)); }
  PRM_GEMM_TARGET static void store_first(T* p, Reg r, int n) { _mm256_maskstore_pd(p, first(n), r); }
  PRM_GEMM_TARGET static Reg broadcast(const T* p) { return _mm256_broadcast_sd(p); }
  PRM_GEMM_TARGET static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_pd(a, b, c); }
  PRM_GEMM_TARGET static Reg mul(Reg a, Reg b) { return _mm256_mul_pd(a, b); }
};

}  // namespace

const GemmMicroKernel<float>& gemm_kernel_avx2_f32() {
  static const GemmMicroKernel<float> k{
      6, 16, 6 * 48, 384, 4096, &tile_kernel<F32x8, 6, 2>, {&tile_kernel<F32x8, 6, 1, 2>}, {8}};
  return k;
}

const GemmMicroKernel<double>& gemm_kernel_avx2_f64() {
  static const GemmMicroKernel<double> k{
      6, 8, 6 * 48, 256, 4096, &tile_kernel<F64x4, 6, 2>, {&tile_kernel<F64x4, 6, 1, 2>}, {4}};
  return k;
}

double peak_loop_avx2(int64_t iters) { return peak_loop<F32x8, 12>(iters); }

}  // namespace prm::cpu
#endif
