// The portable microkernel of the CPU GEMM (kernels/cpu/gemm_kernels.h): plain C++ that any
// target compiles (on x86-64 the compiler may still use SSE2 for the j loop). It is the path for
// CPUs without AVX2 and for non-x86 builds, and the readable statement of what the vector
// kernels compute. Under -ffp-contract=off, acc += a * b rounds twice (product, then sum) where
// the AVX kernels round once (FMA): the tests' tolerance covers both (tests/test_gemm_isa.cpp).
#include "kernels/cpu/gemm_kernels.h"

namespace prm::cpu {
namespace {

constexpr int kMR = 4, kNR = 8;

template <typename T>
void tile_kernel_scalar(int64_t kc, const T* __restrict a, const T* __restrict b, T alpha, T beta,
                        T* __restrict C, int64_t ldc, int rows, int cols) {
  T acc[kMR][kNR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < kMR; ++i)
      for (int j = 0; j < kNR; ++j) acc[i][j] += a[i] * b[j];
    a += kMR;
    b += kNR;
  }
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) {
      T& c = C[i * ldc + j];
      c = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c;
    }
}

}  // namespace

const GemmMicroKernel<float>& gemm_kernel_scalar_f32() {
  static const GemmMicroKernel<float> k{kMR, kNR, 128, 256, 4096, &tile_kernel_scalar<float>};
  return k;
}

const GemmMicroKernel<double>& gemm_kernel_scalar_f64() {
  static const GemmMicroKernel<double> k{kMR, kNR, 128, 256, 4096, &tile_kernel_scalar<double>};
  return k;
}

double peak_loop_scalar(int64_t iters) {
  // 64 independent chains of acc = acc * x + y, a multiply and an add each (no FMA in portable
  // code): as many as the compiler's vector code for the baseline target (SSE2 on x86-64) needs
  // to keep its multiply and add units busy, so that this is the peak of the portable kernel as
  // compiled, not of one scalar chain.
  constexpr int kChains = 64;
  float acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = static_cast<float>(c + 1);  // distinct chains
  const float x = 0.9999999f, y = 1e-7f;
  for (int64_t it = 0; it < iters; ++it)
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * x + y;
  float sum = 0;
  for (int c = 0; c < kChains; ++c) sum += acc[c];
  volatile float sink = sum;
  (void)sink;
  return 2.0 * static_cast<double>(iters) * kChains;
}

}  // namespace prm::cpu
