// The CPU GEMM on a packed A (cpu::GemmPackedA, gemm_blocked_prepacked): against gemm_blocked
// with A as a matrix, to the bit, on every instruction-set path the CPU supports, in float and
// double, with 1 to 3 threads: shapes that cross the K slice (several slices, the last partial),
// the row block (M above MC, so a thread's rows take several A blocks) and the column panel;
// op(A) transposed; alpha and beta (C's NaN overwritten where beta = 0); op(B) as a matrix, from
// a packing function and with an epilogue. One shape also against a naive loop in double, and a
// packed A made on another path is refused.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "cpu_paths.h"
#include "helpers.h"
#include "kernels/cpu_isa.h"
#include "kernels/gemm.h"

using namespace prm;

namespace {

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(T) * a.size()) == 0;
}

struct Shape3 {
  int64_t M, N, K;
};

// op(B) as NR-column strips from the matrix B (K x N, row stride ldb), by the GemmPackB contract.
template <typename T>
cpu::GemmPackB<T> strips_of(const std::vector<T>& B, int64_t ldb) {
  return [&B, ldb](T* dst, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR) {
    const int64_t strips = (nc + NR - 1) / NR;
    for (int64_t s = 0; s < strips; ++s)
      for (int64_t kk = 0; kk < kc; ++kk)
        for (int jj = 0; jj < NR; ++jj) {
          const int64_t j = s * NR + jj;
          dst[s * kc * NR + kk * NR + jj] = j < nc ? B[(k0 + kk) * ldb + j0 + j] : T(0);
        }
  };
}

template <typename T>
void check_prepacked() {
  std::mt19937_64 rng(23);
  std::normal_distribution<double> nd;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const Shape3 shapes[] = {{1, 1, 1},     {13, 97, 300}, {700, 50, 520},
                           {64, 4200, 70}, {9, 30, 800},  {40, 7, 3},
                           {100, 196, 600}, {45, 4081, 40}, {700, 1060, 300}};
  for (int threads : {1, 2, 3}) {
    ThreadScope thread_scope(threads);
    for (const Shape3& s : shapes)
      for (bool trans_a : {false, true})
        for (T beta : {T(0), T(-0.5)}) {
          CAPTURE(threads);
          CAPTURE(s.M);
          CAPTURE(s.N);
          CAPTURE(s.K);
          CAPTURE(trans_a);
          CAPTURE(beta);
          const int64_t M = s.M, N = s.N, K = s.K;
          const int64_t lda = (trans_a ? M : K) + 3, ldb = N + 5, ldc = N + 2;
          std::vector<T> A((trans_a ? K : M) * lda), B(K * ldb), C0(M * ldc);
          for (T& v : A) v = static_cast<T>(nd(rng));
          for (T& v : B) v = static_cast<T>(nd(rng));
          for (T& v : C0) v = beta == T(0) ? nan : static_cast<T>(nd(rng));
          const T alpha = T(1.5);
          std::vector<T> expected = C0;
          cpu::gemm_blocked<T>(trans_a, false, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta,
                               expected.data(), ldc);
          const cpu::GemmPackedA<T> packed(trans_a, M, K, A.data(), lda);
          CHECK(packed.rows() == M);
          CHECK(packed.depth() == K);
          std::vector<T> C = C0;
          cpu::gemm_blocked_prepacked<T>(packed, N, alpha, B.data(), ldb, nullptr, beta, C.data(),
                                         ldc, nullptr);
          CHECK(same_bits(C, expected));
          // op(B) from a packing function.
          const cpu::GemmPackB<T> pack = strips_of(B, ldb);
          C = C0;
          cpu::gemm_blocked_prepacked<T>(packed, N, alpha, nullptr, 0, &pack, beta, C.data(), ldc,
                                         nullptr);
          CHECK(same_bits(C, expected));
          // An epilogue: each element of C once, after its sum (y = 2 y + 1, counted).
          std::vector<int> visits(M * ldc, 0);
          const cpu::GemmEpilogue<T> twice_plus_one = [&](T* c, int64_t ld, int64_t i0,
                                                          int64_t j0, int64_t rows,
                                                          int64_t cols) {
            for (int64_t i = 0; i < rows; ++i)
              for (int64_t j = 0; j < cols; ++j) {
                c[i * ld + j] = T(2) * c[i * ld + j] + T(1);
                ++visits[(i0 + i) * ldc + j0 + j];
              }
          };
          C = C0;
          cpu::gemm_blocked_prepacked<T>(packed, N, alpha, B.data(), ldb, nullptr, beta, C.data(),
                                         ldc, &twice_plus_one);
          std::vector<T> after = expected;
          int64_t wrong_visits = 0;
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < ldc; ++j) {
              if (j < N) after[i * ldc + j] = T(2) * after[i * ldc + j] + T(1);
              wrong_visits += visits[i * ldc + j] != (j < N ? 1 : 0);
            }
          CHECK(wrong_visits == 0);
          CHECK(same_bits(C, after));
        }
  }
}

}  // namespace

TEST_CASE("cpu gemm, packed A: the bits of gemm_blocked on every path, threads, shapes, B packed, epilogue") {
  for_each_cpu_isa([] {
    check_prepacked<float>();
    check_prepacked<double>();
  });
}

TEST_CASE("cpu gemm, packed A: against a naive loop in double") {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> nd;
  const int64_t M = 37, N = 61, K = 530;  // three K slices on every path
  std::vector<double> A(M * K), B(K * N);
  for (double& v : A) v = nd(rng);
  for (double& v : B) v = nd(rng);
  const cpu::GemmPackedA<double> packed(false, M, K, A.data(), K);
  std::vector<double> C(M * N, std::nan(""));
  cpu::gemm_blocked_prepacked<double>(packed, N, 1.0, B.data(), N, nullptr, 0.0, C.data(), N,
                                      nullptr);
  double worst = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t k = 0; k < K; ++k) {
        sum += A[i * K + k] * B[k * N + j];
        magnitude += std::fabs(A[i * K + k] * B[k * N + j]);
      }
      // K + 8 roundings of 2^-53 each, twice (ours and the loop's).
      worst = std::max(worst, std::fabs(C[i * N + j] - sum) / (magnitude * (K + 8) * 0x1p-52));
    }
  CHECK(worst <= 1.0);
}

TEST_CASE("cpu gemm, packed A: a pack made on another instruction-set path is refused") {
  if (!cpu_isa_supported(CpuIsa::avx2)) {
    MESSAGE("skipped: this CPU lacks avx2");
    return;
  }
  std::vector<float> A(8 * 8, 1.0f), B(8 * 8, 1.0f), C(8 * 8, 0.0f);
  IsaScope outer(CpuIsa::scalar);
  const cpu::GemmPackedA<float> packed(false, 8, 8, A.data(), 8);
  CHECK(packed.isa() == CpuIsa::scalar);
  IsaScope inner(CpuIsa::avx2);
  const std::string err = error_of([&] {
    cpu::gemm_blocked_prepacked<float>(packed, 8, 1.0f, B.data(), 8, nullptr, 0.0f, C.data(), 8,
                                       nullptr);
  });
  CHECK(err == "gemm: A was packed for the scalar path, but the avx2 path is active");
}
