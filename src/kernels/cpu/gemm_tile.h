// The register-blocked GEMM microkernel and the peak-FLOP loop, written once over a vector type
// and included by each x86 ISA file (gemm_avx512.cpp, gemm_avx2.cpp), which first defines
// PRM_GEMM_TARGET (the function attribute naming its instruction set) and a traits type V:
//
//   V::Reg                 a vector register of V::kLanes elements of V::T
//   V::zero(), V::load(p), V::store(p, r), V::broadcast(p)   (p 64-byte aligned where loaded
//                                                             from a packed buffer)
//   V::loadu(p), V::storeu(p, r)                             (C: any alignment)
//   V::load_first(p, n), V::store_first(p, r, n)             (lanes [0, n) only: C's edge)
//   V::fma(a, b, c) = a * b + c rounded once;  V::mul(a, b)
//
// Everything here sits in an anonymous namespace, so the two ISA files' copies never meet at
// link time (an inline function compiled for AVX-512 must not stand in for a plain one).
#pragma once
#include <cstdint>

#ifndef PRM_GEMM_TARGET
#error "define PRM_GEMM_TARGET before including gemm_tile.h"
#endif

namespace prm::cpu {
namespace {

// C tile (rows x cols of MR x NV vectors) = alpha * a-strip · b-strip + beta * C (beta == 0:
// C not read). The MR x NV accumulators stay in registers for the whole kc loop: per k, NV
// vector loads of B, MR broadcasts of A, MR * NV fused multiply-adds. An edge tile (rows < MR
// or cols < NR) computes the whole tile and writes only its rows x cols part, with masked
// vector stores: nothing outside op(C) is read or written.
//
// kStrideV (default NV) is the packed B strip's width in vectors: a narrower instantiation
// (NV < kStrideV) computes only the first NV vectors of a strip packed kStrideV wide, for the
// last strip of C when it holds few columns (N = 196 with 48-column strips leaves 4): the same
// products and sums for the columns it covers, so the same bits, without the padding's FMAs.
template <class V, int MR, int NV, int kStrideV = NV>
PRM_GEMM_TARGET void tile_kernel(int64_t kc, const typename V::T* __restrict a,
                                 const typename V::T* __restrict b, typename V::T alpha,
                                 typename V::T beta, typename V::T* __restrict C, int64_t ldc,
                                 int rows, int cols) {
  using Reg = typename V::Reg;
  constexpr int L = V::kLanes, NR = NV * L, kStride = kStrideV * L;
  // C's rows lie far apart (ldc): ask for its lines now, so that they arrive while the kc
  // loop runs instead of stalling the stores at the end.
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (i >= rows) break;
    __builtin_prefetch(C + i * ldc, 1, 3);
    __builtin_prefetch(C + i * ldc + cols - 1, 1, 3);
  }
  Reg acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = V::zero();
  // The k loop unrolled four times: fewer loop-counter and branch uops between the FMAs
  // (kernel alone, A streaming from L2: 77-78 % -> 81 % of the peak; software prefetch of the B
  // strip ahead was tried on top and lost 1-5 %).
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    Reg bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = V::load(b + v * L);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const Reg ai = V::broadcast(a + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = V::fma(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += kStride;
  }
  const Reg alpha_v = V::broadcast(&alpha), beta_v = V::broadcast(&beta);
  if (rows == MR && cols == NR) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      typename V::T* c = C + i * ldc;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        const Reg r = V::mul(alpha_v, acc[i][v]);
        V::storeu(c + v * L, beta == 0 ? r : V::fma(beta_v, V::loadu(c + v * L), r));
      }
    }
    return;
  }
  // The loops stay unrolled (acc must be indexed by constants to stay in registers) and stop
  // at the tile's edge.
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (i >= rows) break;
    typename V::T* c = C + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const int n = cols - v * L;  // valid lanes of this vector
      if (n <= 0) break;
      const Reg r = V::mul(alpha_v, acc[i][v]);
      if (n >= L) {
        V::storeu(c + v * L, beta == 0 ? r : V::fma(beta_v, V::loadu(c + v * L), r));
      } else {
        V::store_first(c + v * L,
                       beta == 0 ? r : V::fma(beta_v, V::load_first(c + v * L, n), r), n);
      }
    }
  }
}

// kChains independent chains acc = acc * x + y, each one FMA per round: enough chains to cover
// the FMA latency times the FMA ports, so the loop runs at the FMA throughput.
template <class V, int kChains>
PRM_GEMM_TARGET double peak_loop(int64_t iters) {
  using Reg = typename V::Reg;
  const typename V::T xs = typename V::T(0.9999999), ys = typename V::T(1e-7);
  const Reg x = V::broadcast(&xs), y = V::broadcast(&ys);
  Reg acc[kChains];  // distinct starting values, or the compiler merges identical chains
#pragma GCC unroll 32
  for (int c = 0; c < kChains; ++c) {
    const typename V::T start = typename V::T(c + 1);
    acc[c] = V::broadcast(&start);
  }
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 32
    for (int c = 0; c < kChains; ++c) acc[c] = V::fma(acc[c], x, y);
  }
  alignas(64) typename V::T out[V::kLanes];
  Reg sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = V::fma(acc[c], x, sum);
  V::storeu(out, sum);
  volatile typename V::T sink = out[0];  // keeps the loop
  (void)sink;
  return 2.0 * static_cast<double>(iters) * kChains * V::kLanes;
}

}  // namespace
}  // namespace prm::cpu
