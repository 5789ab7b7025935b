// GEMM against a naive triple loop written here: our blocked GEMM (tested even when OpenBLAS is
// the default), the Gemm kernel on the CPU, every transpose combination, sizes that leave partial
// register tiles and cross the cache-block edges, alpha/beta, padded leading dimensions, strided
// batches; then the matmul op (forward and both gradients against naive products) and its errors;
// on CUDA the cuBLAS path against the same loops.
#include <cmath>
#include <limits>
#include <random>

#include "gemm_problems.h"
#include "helpers.h"
#include "kernels/gemm.h"
#include "tensor/autograd.h"
#include "tensor/ops/matmul.h"

using namespace prm;

namespace {

// C = alpha * op(A) op(B) + beta * C, every operand in double, element by element.
void naive_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                const std::vector<double>& A, int64_t lda, const std::vector<double>& B,
                int64_t ldb, double beta, std::vector<double>& C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
      C[i * ldc + j] = alpha * acc + (beta == 0 ? 0.0 : beta * C[i * ldc + j]);
    }
}

template <typename T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// M, N, K around the register tile (6 x 16/32), the K slice (256), the row block (96) and
// degenerate ones.
const GemmShape kShapes[] = {{1, 1, 1},     {7, 13, 5},    {6, 32, 8},     {37, 51, 29},
                             {100, 3, 257}, {3, 100, 300}, {130, 67, 520}, {97, 200, 31}};

template <typename T>
void check_gemm(bool use_blocked, double rtol) {
  for_each_gemm_problem(kShapes, 17, [&](const GemmProblem& p) {
    std::vector<double> expected = p.C0;
    naive_gemm(p.ta, p.tb, p.M, p.N, p.K, p.alpha, p.A, p.lda, p.B, p.ldb, p.beta, expected, p.ldc);
    std::vector<T> a = cast<T>(p.A), b = cast<T>(p.B), c = gemm_c_input<T>(p);
    auto f = use_blocked ? cpu::gemm_blocked<T> : kernel_entry<Gemm, CpuLoop, T>();
    f(p.ta, p.tb, p.M, p.N, p.K, T(p.alpha), a.data(), p.lda, b.data(), p.ldb, T(p.beta), c.data(),
      p.ldc);
    // Padding columns of C past N are untouched: compare every element of every row.
    check_close(std::vector<double>(c.begin(), c.end()), expected, rtol, rtol);
  });
}

}  // namespace

TEST_CASE("gemm_blocked matches the naive triple loop (float64, float32)") {
  check_gemm<double>(true, 1e-12);
  check_gemm<float>(true, 1e-4);
}

TEST_CASE("Gemm on the cpu (OpenBLAS when built with it) matches the naive triple loop") {
  check_gemm<double>(false, 1e-12);
  check_gemm<float>(false, 1e-4);
}

TEST_CASE("gemm with K = 0 scales C by beta") {
  std::vector<double> c{1, 2, 3, 4};
  const double none = 0;
  cpu::gemm_blocked(false, false, 2, 2, 0, 1.0, &none, 1, &none, 2, 2.0, c.data(), 2);
  CHECK(c == std::vector<double>{2, 4, 6, 8});
  launch<Gemm, double>(Device::cpu, false, false, 2, 2, 0, 1.0, &none, 1, &none, 2, 0.0, c.data(),
                       2);
  CHECK(c == std::vector<double>{0, 0, 0, 0});
}

TEST_CASE("gemm_strided_batched: a shared operand (stride 0) and per-matrix strides") {
  std::mt19937_64 rng(23);
  const int64_t M = 5, N = 9, K = 7, batch = 3;
  const std::vector<double> A = random_values(M * K, rng);  // shared, like conv weights
  const std::vector<double> B = random_values(batch * K * N, rng);
  std::vector<double> C(batch * M * N, 0.0), expected(batch * M * N, 0.0);
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<double> Bb(B.begin() + b * K * N, B.begin() + (b + 1) * K * N), Cb(M * N);
    naive_gemm(false, false, M, N, K, 1.0, A, K, Bb, N, 0.0, Cb, N);
    std::copy(Cb.begin(), Cb.end(), expected.begin() + b * M * N);
  }
  launch<GemmStridedBatched, double>(Device::cpu, false, false, M, N, K, 1.0, A.data(), K, 0,
                                     B.data(), N, K * N, 0.0, C.data(), N, M * N, batch);
  check_close(C, expected, 1e-12, 1e-12);
}

namespace {

// matmul forward and both gradients on `device` against naive products: for c = a b and an
// upstream gradient g, da = g bᵀ and db = aᵀ g, batch element by batch element.
void check_matmul(const Shape& a_shape, const Shape& b_shape, DType dt, Device device, double tol) {
  std::mt19937_64 rng(31);
  const bool batched = a_shape.size() == 3;
  const int64_t batch = batched ? a_shape[0] : 1;
  const int64_t M = a_shape[a_shape.size() - 2], K = a_shape.back(), N = b_shape.back();
  const std::vector<double> av = random_values(batch * M * K, rng);
  const std::vector<double> bv = random_values(batch * K * N, rng);
  const std::vector<double> gv = random_values(batch * M * N, rng);
  std::vector<double> c(batch * M * N), da(av.size()), db(bv.size());
  for (int64_t t = 0; t < batch; ++t)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        for (int64_t k = 0; k < K; ++k) {
          const double a_ik = av[(t * M + i) * K + k], b_kj = bv[(t * K + k) * N + j];
          const double g_ij = gv[(t * M + i) * N + j];
          c[(t * M + i) * N + j] += a_ik * b_kj;
          da[(t * M + i) * K + k] += g_ij * b_kj;
          db[(t * K + k) * N + j] += a_ik * g_ij;
        }
  Tensor a = Tensor::from_vector(av, a_shape, dt, device).set_requires_grad(true);
  Tensor b = Tensor::from_vector(bv, b_shape, dt, device).set_requires_grad(true);
  Tensor out = matmul(a, b);
  CHECK(out.shape() == (batched ? Shape{batch, M, N} : Shape{M, N}));
  check_close(out, c, tol, tol);
  out.backward(Tensor::from_vector(gv, out.shape(), dt, device));
  check_close(a.grad(), da, tol, tol);
  check_close(b.grad(), db, tol, tol);
}

}  // namespace

TEST_CASE("matmul and its gradients match naive products on cpu") {
  check_matmul({5, 7}, {7, 3}, DType::f64, Device::cpu, 1e-12);
  check_matmul({33, 70}, {70, 41}, DType::f32, Device::cpu, 1e-4);
  check_matmul({3, 4, 5}, {3, 5, 6}, DType::f64, Device::cpu, 1e-12);
  check_matmul({2, 17, 9}, {2, 9, 35}, DType::f32, Device::cpu, 1e-4);
}

TEST_CASE("matmul errors name the op and the shapes") {
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})),
                       doctest::Contains("matmul: inner sizes differ: [2, 3] x [4, 5]"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({3, 4, 5})),
                       doctest::Contains("matmul: batch sizes differ: [2, 3, 4] x [3, 4, 5]"),
                       Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({4, 5})),
                       doctest::Contains("[B, M, K] x [B, K, N], got [2, 3, 4] x [4, 5]"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 5}, DType::f64)),
                       doctest::Contains("dtype mismatch"), Error);
  CHECK_THROWS_AS(matmul(Tensor::zeros({2, 3}, DType::i64), Tensor::zeros({3, 5}, DType::i64)),
                  Error);
}

TEST_CASE("precision: parsed by name; each one is accepted (bf16: tests/test_bf16.cpp)") {
  CHECK(parse_precision("fp32") == Precision::fp32);
  CHECK(parse_precision("tf32") == Precision::tf32);
  CHECK(parse_precision("bf16") == Precision::bf16);
  CHECK_THROWS_WITH_AS(parse_precision("fp16"), doctest::Contains("expected fp32, tf32 or bf16"),
                       Error);
  CHECK(matmul_precision() == Precision::fp32);
  for (Precision p : {Precision::tf32, Precision::bf16, Precision::fp32}) {
    set_matmul_precision(p);
    CHECK(matmul_precision() == p);
    CHECK(parse_precision(precision_name(p)) == p);
  }
}

TEST_SUITE("cuda") {
  TEST_CASE("matmul on cuda (cuBLAS) matches naive products") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    check_matmul({5, 7}, {7, 3}, DType::f64, Device::cuda, 1e-12);
    check_matmul({33, 70}, {70, 41}, DType::f32, Device::cuda, 1e-4);
    check_matmul({3, 4, 5}, {3, 5, 6}, DType::f64, Device::cuda, 1e-12);
    check_matmul({2, 17, 9}, {2, 9, 35}, DType::f32, Device::cuda, 1e-4);
  }

  // TF32 rounds each float32 input to a 10-bit mantissa (relative error <= 2^-11), so a product
  // a*b is off by at most ~2^-10 of |a*b| and a sum of them by 2^-10 * sum |a||b| (float32
  // accumulation adds ~K * 2^-24, negligible): each element is checked against that bound, with a
  // factor 2 of margin, from a float64 loop. fp32 mode must stay within float32 rounding, and
  // tf32 must actually change the result (else the switch did nothing).
  TEST_CASE("gemm precision tf32 on cuda: within the TF32 bound, and fp32 stays exact") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    const int64_t M = 128, N = 96, K = 256;
    std::mt19937_64 rng(5);
    const Tensor a = Tensor::randn({M, K}, rng), b = Tensor::randn({K, N}, rng);
    const std::vector<double> av = a.to_vector(), bv = b.to_vector();
    const ExactProduct ref = exact_product(av, bv, M, N, K);
    const std::vector<double>&exact = ref.value, &bound = ref.magnitude;
    auto product = [&](Precision p) {
      set_matmul_precision(p);
      const std::vector<double> c = matmul(a.to(Device::cuda), b.to(Device::cuda)).to_vector();
      set_matmul_precision(Precision::fp32);
      return c;
    };
    const std::vector<double> fp32 = product(Precision::fp32), tf32 = product(Precision::tf32);
    double tf32_vs_fp32 = 0;
    for (size_t i = 0; i < exact.size(); ++i) {
      CHECK(std::abs(fp32[i] - exact[i]) <= 1e-5 * bound[i]);
      CHECK(std::abs(tf32[i] - exact[i]) <= 2.0 * std::ldexp(bound[i], -10));
      tf32_vs_fp32 = std::max(tf32_vs_fp32, std::abs(tf32[i] - fp32[i]) / bound[i]);
    }
    CHECK(tf32_vs_fp32 > 1e-5);  // the tensor cores were used
  }

  TEST_CASE("matmul errors for operands on different devices") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    CHECK_THROWS_WITH_AS(
        matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 4}, DType::f32, Device::cuda)),
        doctest::Contains("different devices"), Error);
  }
}
