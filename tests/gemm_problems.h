// The random GEMM problems the GEMM tests share (test_gemm.cpp: fp32/fp64 against a naive loop;
// test_bf16.cpp: bf16 inputs against a naive loop over rounded values): for each shape and each
// of the four transposes, A, B and C with leading dimensions wider than the rows they hold (as
// for a sub-matrix), values uniform in [-1, 1], then three (alpha, beta) pairs, beta = 0 among
// them (which must not read C).
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "helpers.h"

struct GemmShape {
  int64_t M, N, K;
};

inline std::vector<double> random_values(int64_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> dist(-1, 1);
  std::vector<double> v(n);
  for (double& e : v) e = dist(rng);
  return v;
}

struct GemmProblem {
  int64_t M, N, K;
  bool ta, tb;
  int64_t lda, ldb, ldc;
  const std::vector<double>&A, &B, &C0;  // A and B stored as op() transposes them; C0 is C
  double alpha, beta;
};

// f(problem) for every problem over `shapes`, drawn from one generator seeded with `seed`.
template <size_t kCount, class F>
void for_each_gemm_problem(const GemmShape (&shapes)[kCount], uint64_t seed, F f) {
  std::mt19937_64 rng(seed);
  for (const GemmShape& s : shapes)
    for (int trans = 0; trans < 4; ++trans) {
      const bool ta = trans & 1, tb = trans & 2;
      const int64_t lda = (ta ? s.M : s.K) + 3, ldb = (tb ? s.K : s.N) + 2, ldc = s.N + 5;
      const std::vector<double> A = random_values((ta ? s.K : s.M) * lda, rng);
      const std::vector<double> B = random_values((tb ? s.N : s.K) * ldb, rng);
      const std::vector<double> C0 = random_values(s.M * ldc, rng);
      for (double beta : {0.0, 1.0, -0.5}) {
        CAPTURE(s.M);
        CAPTURE(s.N);
        CAPTURE(s.K);
        CAPTURE(ta);
        CAPTURE(tb);
        CAPTURE(beta);
        f(GemmProblem{s.M, s.N, s.K, ta, tb, lda, ldb, ldc, A, B, C0, beta == 0.0 ? 1.0 : 0.75,
                      beta});
      }
    }
}

// C as the GEMM under test gets it: C0, with its M x N entries NaN when beta = 0 (a NaN there
// must not leak into the result) and the padding columns past N as they are.
template <typename T>
std::vector<T> gemm_c_input(const GemmProblem& p) {
  std::vector<T> c(p.C0.begin(), p.C0.end());
  if (p.beta == 0.0)
    for (int64_t i = 0; i < p.M; ++i)
      for (int64_t j = 0; j < p.N; ++j) c[i * p.ldc + j] = std::numeric_limits<T>::quiet_NaN();
  return c;
}

// The exact product of row-major a [M, K] and b [K, N] (in double, a float64 loop) and, per
// element, sum |a b|: the size a rounding error of the product is measured against.
struct ExactProduct {
  std::vector<double> value, magnitude;  // [M, N] each
};
inline ExactProduct exact_product(const std::vector<double>& a, const std::vector<double>& b,
                                  int64_t M, int64_t N, int64_t K) {
  ExactProduct p{std::vector<double>(M * N, 0.0), std::vector<double>(M * N, 0.0)};
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) {
        p.value[i * N + j] += a[i * K + k] * b[k * N + j];
        p.magnitude[i * N + j] += std::abs(a[i * K + k] * b[k * N + j]);
      }
  return p;
}
