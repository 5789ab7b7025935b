// Our CPU GEMM (cpu::gemm_blocked) on each instruction-set path the CPU supports (AVX-512,
// AVX2+FMA, scalar; a path the CPU lacks is reported skipped), forced in turn with set_cpu_isa,
// against a naive triple loop in double over the same (T-rounded) inputs. Shapes: 1, primes,
// sizes that are not multiples of any register tile (8 x 48, 6 x 16, 4 x 8; float64 8 x 24,
// 6 x 8), that cross the K slice (KC: 192-384), the row block (MC: up to 672) and the column
// panel (NC: 4080-4096), and K = 0; the four transposes; alpha/beta with beta in {0, 1, -0.5}; leading
// dimensions wider than the rows; NaN in C where beta = 0 (must be overwritten, never read);
// the padding past N untouched; 1, 2 and 3 threads; float and double; the strided-batched form.
//
// Tolerance (per element): our result and the double loop both approximate the exact
// alpha * sum_k a_k b_k + beta * c. Each of our outputs is a sequential sum of K products in T
// (an FMA per product on the AVX paths, a rounded product then a rounded add on the scalar
// path), plus a rounding for alpha, one for beta and two per extra K slice: fewer than
// K + 2 K / 128 + 4 roundings, so |ours - exact| <= gamma_n * (|alpha| sum |a_k b_k| + |beta c|)
// with n = K + 2 K / 128 + 4 and gamma_n = n u / (1 - n u), u = 2^-24 (float) or 2^-53 (double)
// (Higham, Accuracy and Stability of Numerical Algorithms, 3.1). The double loop's own error is
// at most that with u = 2^-53; the check allows the sum of the two bounds, times 2.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>

#include "cpu_paths.h"
#include "gemm_problems.h"
#include "helpers.h"
#include "kernels/cpu_isa.h"
#include "kernels/gemm.h"

using namespace prm;

namespace {

double gamma_bound(int64_t K, double u) {
  const double n = static_cast<double>(K + 2 * K / 128 + 4);
  return n * u / (1 - n * u);
}

// Checks C (M rows of ldc) against the naive loop over the same A, B, C0; every element of
// every row, so padding past N must be C0's.
template <typename T>
void check_against_naive(const GemmProblem& p, const std::vector<T>& a, const std::vector<T>& b,
                         const std::vector<T>& c0, const std::vector<T>& c) {
  const double u = std::numeric_limits<T>::epsilon() / 2;
  const double tol = 2 * (gamma_bound(p.K, u) + gamma_bound(p.K, 0x1p-53));
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = 0; j < p.ldc; ++j) {
      const size_t at = static_cast<size_t>(i * p.ldc + j);
      if (j >= p.N) {  // padding: untouched, bit for bit
        CHECK(std::memcmp(&c[at], &c0[at], sizeof(T)) == 0);
        continue;
      }
      double sum = 0, magnitude = 0;
      for (int64_t k = 0; k < p.K; ++k) {
        const double x = p.ta ? a[k * p.lda + i] : a[i * p.lda + k];
        const double y = p.tb ? b[j * p.ldb + k] : b[k * p.ldb + j];
        sum += x * y;
        magnitude += std::abs(x * y);
      }
      const double c_old = p.beta == 0 ? 0.0 : static_cast<double>(c0[at]);
      const double expected = p.alpha * sum + p.beta * c_old;
      const double bound = tol * (std::abs(p.alpha) * magnitude + std::abs(p.beta * c_old));
      if (!(std::abs(c[at] - expected) <= bound)) {
        FAIL_CHECK("C(" << i << ", " << j << ") = " << c[at] << ", expected " << expected
                        << " within " << bound);
        return;
      }
    }
}

// M, N, K: 1; primes; around the tiles (8 x 48, 6 x 16, 4 x 8; float64 8 x 24, 6 x 8); across
// KC (K = 257, 385, 520), MC (M = 345, 677) and NC (N = 4099); K = 0.
const GemmShape kShapes[] = {{1, 1, 1},      {7, 13, 5},    {13, 31, 17},  {15, 33, 9},
                             {29, 37, 41},   {43, 65, 385}, {100, 3, 257}, {3, 100, 300},
                             {130, 67, 520}, {97, 200, 31}, {345, 19, 11}, {677, 50, 7},
                             {2, 4099, 3},   {17, 49, 2},   {5, 7, 0},     {1, 1, 0}};

template <typename T>
void check_path() {
  for (int threads : {1, 2, 3}) {
    CAPTURE(threads);
    const ThreadScope scope(threads);
    for_each_gemm_problem(kShapes, 41, [&](const GemmProblem& p) {
      const std::vector<T> a(p.A.begin(), p.A.end()), b(p.B.begin(), p.B.end());
      const std::vector<T> c0(p.C0.begin(), p.C0.end());
      std::vector<T> c = gemm_c_input<T>(p);  // NaN in C's M x N when beta = 0
      cpu::gemm_blocked<T>(p.ta, p.tb, p.M, p.N, p.K, T(p.alpha), a.data(), p.lda, b.data(),
                           p.ldb, T(p.beta), c.data(), p.ldc);
      check_against_naive(p, a, b, c0, c);
    });
  }
}

// batch 3 of [M, K] x [K, N] with padded leading dimensions and gaps between the matrices;
// A shared (stride 0) or not; alpha 0.75, beta -0.5.
template <typename T>
void check_strided_batched() {
  std::mt19937_64 rng(43);
  const int64_t M = 19, N = 37, K = 23, batch = 3, lda = K + 2, ldb = N + 1, ldc = N + 3;
  for (int64_t stride_a : {int64_t(0), M * lda + 5}) {
    CAPTURE(stride_a);
    const int64_t stride_b = K * ldb + 7, stride_c = M * ldc + 4;
    const std::vector<double> A = random_values(batch * (M * lda + 5), rng);
    const std::vector<double> B = random_values(batch * stride_b, rng);
    const std::vector<double> C0 = random_values(batch * stride_c, rng);
    const std::vector<T> a(A.begin(), A.end()), b(B.begin(), B.end()), c0(C0.begin(), C0.end());
    std::vector<T> c = c0;
    launch<GemmStridedBatched, T>(Device::cpu, false, false, M, N, K, T(0.75), a.data(), lda,
                                  stride_a, b.data(), ldb, stride_b, T(-0.5), c.data(), ldc,
                                  stride_c, batch);
    // Matrix t of a batch: `count` values of v from offset t * stride.
    auto slice = [](const auto& v, int64_t t, int64_t stride, int64_t count) {
      using V = typename std::decay_t<decltype(v)>::value_type;
      return std::vector<V>(v.begin() + t * stride, v.begin() + t * stride + count);
    };
    for (int64_t t = 0; t < batch; ++t) {
      CAPTURE(t);
      const std::vector<double> Ab = slice(A, t, stride_a, M * lda);
      const std::vector<double> Bb = slice(B, t, stride_b, K * ldb);
      const std::vector<double> Cb = slice(C0, t, stride_c, M * ldc);
      const GemmProblem p{M, N, K, false, false, lda, ldb, ldc, Ab, Bb, Cb, 0.75, -0.5};
      check_against_naive(p, std::vector<T>(Ab.begin(), Ab.end()),
                          std::vector<T>(Bb.begin(), Bb.end()),
                          std::vector<T>(Cb.begin(), Cb.end()), slice(c, t, stride_c, M * ldc));
    }
    // The gaps between C matrices are untouched.
    for (int64_t t = 0; t < batch; ++t)
      for (int64_t g = M * ldc; g < stride_c; ++g)
        CHECK(c[t * stride_c + g] == c0[t * stride_c + g]);
  }
}

void check_isa(CpuIsa isa) {
  if (!cpu_isa_supported(isa)) {
    MESSAGE("skipped: this CPU has no " << cpu_isa_name(isa) << " (it has: " << cpu_features()
                                        << ")");
    return;
  }
  const IsaScope scope(isa);
  check_path<float>();
  check_path<double>();
  check_strided_batched<float>();
  check_strided_batched<double>();
}

}  // namespace

TEST_CASE("cpu gemm, avx512 path vs a naive loop: shapes, transposes, alpha/beta, ld, NaN in C") {
  check_isa(CpuIsa::avx512);
}

TEST_CASE("cpu gemm, avx2 path vs a naive loop: shapes, transposes, alpha/beta, ld, NaN in C") {
  check_isa(CpuIsa::avx2);
}

TEST_CASE("cpu gemm, scalar path vs a naive loop: shapes, transposes, alpha/beta, ld, NaN in C") {
  check_isa(CpuIsa::scalar);
}

TEST_CASE("cpu isa: the best path is supported, names distinct, a missing path refused") {
  CHECK(cpu_isa_supported(CpuIsa::scalar));
  CHECK(cpu_isa_supported(cpu_isa_best()));
  CHECK(std::string(cpu_isa_name(CpuIsa::avx512)) == "avx512");
  CHECK(std::string(cpu_isa_name(CpuIsa::avx2)) == "avx2");
  CHECK(std::string(cpu_isa_name(CpuIsa::scalar)) == "scalar");
  for (CpuIsa isa : {CpuIsa::avx512, CpuIsa::avx2})
    if (!cpu_isa_supported(isa))
      CHECK_THROWS_WITH_AS(set_cpu_isa(isa), doctest::Contains("not supported by this CPU"), Error);
}

TEST_CASE("PRM_CPU_ISA: forces the path prm reports, refuses unknown names in one line") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const CommandResult bogus = run_command("PRM_CPU_ISA=avx3 " + prm_bin() + " --version");
  CHECK(bogus.exit_code != 0);
  CHECK(bogus.err.find("PRM_CPU_ISA=avx3 is not one of avx512, avx2, scalar") != std::string::npos);
  CHECK(std::count(bogus.err.begin(), bogus.err.end(), '\n') == 1);
  const CommandResult scalar = run_command("PRM_CPU_ISA=scalar " + prm_bin() + " --version");
  REQUIRE_MESSAGE(scalar.exit_code == 0, scalar.err);
  CHECK(scalar.out.find("CPU GEMM path: scalar") != std::string::npos);
  for (CpuIsa isa : {CpuIsa::avx512, CpuIsa::avx2}) {
    const std::string name = cpu_isa_name(isa);
    const CommandResult r = run_command("PRM_CPU_ISA=" + name + " " + prm_bin() + " --version");
    if (cpu_isa_supported(isa)) {
      CHECK(r.exit_code == 0);
      CHECK(r.out.find("CPU GEMM path: " + name) != std::string::npos);
    } else {
      CHECK(r.exit_code != 0);
      CHECK(r.err.find("does not support it") != std::string::npos);
    }
  }
}

namespace {

// C = alpha A·B + beta C on N columns (the last strip of C narrower than the kernel's NR, so a
// narrower kernel or, with at most 4 columns, the tail kernel over up to four strips of A
// takes it) and on the same columns padded to whole strips (only full kernels): the first N
// columns must agree to the bit, as those kernels make the same products and sums. M not a
// multiple of 8 or 32 (the tail kernel's groups end early), K across a K slice (later slices
// add to C), op(A) transposed or not, one and two threads, and an epilogue that must see each
// element of C once, after its last K slice.
template <typename T>
void check_narrow_tail(CpuIsa isa) {
  IsaScope scope(isa);
  std::mt19937_64 rng(17);
  std::normal_distribution<double> nd;
  for (int threads : {1, 2})
    for (int64_t M : {24, 37, 70})
      for (int64_t N : {196, 784, 100, 36, 20, 4, 1, 49, 51, 146})
        for (bool trans_a : {false, true}) {
          CAPTURE(threads);
          CAPTURE(M);
          CAPTURE(N);
          CAPTURE(trans_a);
          ThreadScope thread_scope(threads);
          const int64_t K = 300, padded = (N + 47) / 48 * 48 + 48;
          std::vector<T> a(M * K), b(K * padded), c(M * N), wide(M * padded);
          for (T& v : a) v = static_cast<T>(nd(rng));
          for (T& v : b) v = static_cast<T>(nd(rng));
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < padded; ++j) {
              wide[i * padded + j] = static_cast<T>(nd(rng));
              if (j < N) c[i * N + j] = wide[i * padded + j];
            }
          const T alpha = T(1.5), beta = T(-0.5);
          // The epilogue doubles each element and counts its visits: it must run once per
          // element, on the finished sums (so the doubled values agree too).
          auto epilogue_on = [](std::vector<int>& visits, int64_t width) {
            return cpu::GemmEpilogue<T>([&visits, width](T* c, int64_t ldc, int64_t i0,
                                                         int64_t j0, int64_t rows, int64_t cols) {
              for (int64_t i = 0; i < rows; ++i)
                for (int64_t j = 0; j < cols; ++j) {
                  c[i * ldc + j] = T(2) * c[i * ldc + j];
                  ++visits[(i0 + i) * width + j0 + j];
                }
            });
          };
          std::vector<int> visits(M * N, 0), wide_visits(M * padded, 0);
          const int64_t lda = trans_a ? M : K;
          std::vector<T> at(a.size());
          for (int64_t i = 0; i < M; ++i)
            for (int64_t k = 0; k < K; ++k) at[k * M + i] = a[i * K + k];
          const T* A = trans_a ? at.data() : a.data();
          cpu::gemm_blocked_epilogue<T>(trans_a, false, M, N, K, alpha, A, lda, b.data(), padded,
                                        beta, c.data(), N, epilogue_on(visits, N));
          cpu::gemm_blocked_epilogue<T>(trans_a, false, M, padded, K, alpha, A, lda, b.data(),
                                        padded, beta, wide.data(), padded,
                                        epilogue_on(wide_visits, padded));
          int64_t differ = 0, wrong_visits = 0;
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) {
              differ += c[i * N + j] != wide[i * padded + j];
              wrong_visits += visits[i * N + j] != 1;
            }
          CHECK(differ == 0);
          CHECK(wrong_visits == 0);
        }
}

}  // namespace

TEST_CASE("cpu gemm: the narrow kernels on a last strip give the full kernels' bits") {
  for (CpuIsa isa : {CpuIsa::avx512, CpuIsa::avx2, CpuIsa::scalar}) {
    if (!cpu_isa_supported(isa)) {
      MESSAGE("skipped: this CPU lacks ", cpu_isa_name(isa));
      continue;
    }
    CAPTURE(cpu_isa_name(isa));
    check_narrow_tail<float>(isa);
    check_narrow_tail<double>(isa);
  }
}
