// The CPU convolution's data movers against naive loops written here from the formulas:
// - implicit im2col packing (kernels/cpu/conv_pack.h) against the im2col matrix (and its
//   transpose) cut into strips as the GEMM packs B: every block (row and column offsets, partial
//   strips, widths of several output rows or less than one), windows with padding, strides 1-3,
//   dilation, 1x1 and non-square kernels; on each instruction-set path;
// - Col2im (kernels/im2col.h), the adjoint of im2col, bit for bit: each dx element the sum of
//   its taps in (ki, kj) order, with and without the scale of the fused excitation rule;
// - conv2d_forward and conv2d_backward_weight with implicit im2col (the CPU default) bit for bit
//   the explicit im2col + GEMM path (which set_conv_images_per_chunk_for_testing forces), and
//   the forward close to a naive convolution;
// - pack_product_block (the excitation rule's G ⊙ inv packed for the GEMM) against a naive loop.
#include <random>
#include <vector>

#include "cpu_paths.h"
#include "helpers.h"
#include "kernels/cpu/conv_pack.h"
#include "kernels/im2col.h"
#include "tensor/ops/conv2d.h"

using namespace prm;

namespace {

std::vector<double> naive_im2col(const std::vector<double>& x, int64_t C, int64_t H, int64_t W,
                                 const ConvWindow& w) {
  const int64_t Ho = w.out_h(H), Wo = w.out_w(W);
  std::vector<double> col(C * w.kh * w.kw * Ho * Wo);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t ki = 0; ki < w.kh; ++ki)
      for (int64_t kj = 0; kj < w.kw; ++kj)
        for (int64_t oy = 0; oy < Ho; ++oy)
          for (int64_t ox = 0; ox < Wo; ++ox) {
            const int64_t iy = oy * w.stride - w.pad + ki * w.dilation;
            const int64_t ix = ox * w.stride - w.pad + kj * w.dilation;
            const int64_t k = (c * w.kh + ki) * w.kw + kj;
            col[k * Ho * Wo + oy * Wo + ox] =
                iy >= 0 && iy < H && ix >= 0 && ix < W ? x[(c * H + iy) * W + ix] : 0.0;
          }
  return col;
}

}  // namespace

namespace {

void check_im2col_packing() {
  std::mt19937_64 rng(5);
  struct Shape {
    int64_t C, H, W;
    ConvWindow win;
  };
  const std::vector<Shape> shapes = {
      {3, 9, 11, {3, 3, 1, 1, 1}},   {2, 12, 7, {3, 3, 2, 1, 1}}, {4, 8, 8, {1, 1, 1, 0, 1}},
      {2, 10, 13, {1, 1, 2, 0, 1}},  {2, 9, 9, {3, 3, 1, 2, 2}},  {1, 23, 40, {7, 7, 2, 3, 1}},
      {3, 6, 5, {2, 3, 3, 1, 1}},    {2, 5, 70, {3, 3, 1, 1, 1}}, {1, 3, 3, {3, 3, 1, 1, 1}},
  };
  for (const Shape& sh : shapes) {
    CAPTURE(sh.H);
    CAPTURE(sh.W);
    CAPTURE(sh.win.kh);
    CAPTURE(sh.win.stride);
    const int64_t Ho = sh.win.out_h(sh.H), Wo = sh.win.out_w(sh.W), P = Ho * Wo;
    const int64_t K = sh.C * sh.win.kh * sh.win.kw;
    std::vector<double> x(sh.C * sh.H * sh.W);
    std::normal_distribution<double> normal;
    for (double& v : x) v = normal(rng);
    const std::vector<double> col = naive_im2col(x, sh.C, sh.H, sh.W, sh.win);
    for (int NR : {8, 16, 32}) {
      for (int trial = 0; trial < 12; ++trial) {
        const int64_t k0 = static_cast<int64_t>(rng() % K);
        const int64_t kc = 1 + static_cast<int64_t>(rng() % (K - k0));
        const int64_t j0 = static_cast<int64_t>(rng() % P);
        const int64_t nc = 1 + static_cast<int64_t>(rng() % (P - j0));
        const int64_t strips = (nc + NR - 1) / NR;
        std::vector<double> got(strips * kc * NR, -7.0);
        cpu::pack_im2col_block(got.data(), x.data(), sh.H, sh.W, sh.win, k0, kc, j0, nc,
                               NR);
        std::vector<double> want(got.size());
        for (int64_t s = 0; s < strips; ++s)
          for (int64_t kk = 0; kk < kc; ++kk)
            for (int jj = 0; jj < NR; ++jj) {
              const int64_t j = s * NR + jj;
              want[(s * kc + kk) * NR + jj] = j < nc ? col[(k0 + kk) * P + j0 + j] : 0.0;
            }
        CAPTURE(NR);
        CAPTURE(k0);
        CAPTURE(kc);
        CAPTURE(j0);
        CAPTURE(nc);
        REQUIRE(got == want);
      }
    }
    // The transposed matrix (the weight gradient's operand), blocks of pixels x taps, in double
    // and in float (whose packing takes four pixels at a time where their windows are inside).
    const std::vector<float> x32(x.begin(), x.end());
    auto transposed_trial = [&](auto zero, const auto& xs, int NR) {
      using T = decltype(zero);
      const int64_t p0 = static_cast<int64_t>(rng() % P);
      const int64_t pc = 1 + static_cast<int64_t>(rng() % (P - p0));
      const int64_t t0 = static_cast<int64_t>(rng() % K);
      const int64_t tn = 1 + static_cast<int64_t>(rng() % (K - t0));
      const int64_t strips = (tn + NR - 1) / NR;
      std::vector<T> got(strips * pc * NR, T(-7));
      cpu::pack_im2col_block_transposed(got.data(), xs.data(), sh.H, sh.W, sh.win, p0, pc, t0,
                                        tn, NR);
      std::vector<T> want(got.size());
      for (int64_t s = 0; s < strips; ++s)
        for (int64_t pp = 0; pp < pc; ++pp)
          for (int jj = 0; jj < NR; ++jj) {
            const int64_t t = s * NR + jj;
            want[(s * pc + pp) * NR + jj] =
                t < tn ? static_cast<T>(col[(t0 + t) * P + p0 + pp]) : T(0);
          }
      CAPTURE(sizeof(T));
      CAPTURE(NR);
      CAPTURE(p0);
      CAPTURE(pc);
      CAPTURE(t0);
      CAPTURE(tn);
      REQUIRE(got == want);
    };
    for (int NR : {8, 16, 48})
      for (int trial = 0; trial < 12; ++trial) {
        transposed_trial(0.0, x, NR);
        transposed_trial(0.0f, x32, NR);
      }
    // The whole transposed matrix in one block, float (every pixel, every tap).
    {
      const int NR = 48;
      const int64_t strips = (K + NR - 1) / NR;
      std::vector<float> got(strips * P * NR, -7.0f);
      cpu::pack_im2col_block_transposed(got.data(), x32.data(), sh.H, sh.W, sh.win, 0, P, 0, K,
                                        NR);
      for (int64_t t = 0; t < K; ++t)
        for (int64_t p = 0; p < P; ++p)
          CHECK(got[((t / NR) * P + p) * NR + t % NR] == static_cast<float>(col[t * P + p]));
    }
    // The whole matrix in one block, float.
    std::vector<float> xf(x.begin(), x.end());
    const int64_t strips = (P + 31) / 32;
    std::vector<float> got(strips * K * 32);
    cpu::pack_im2col_block(got.data(), xf.data(), sh.H, sh.W, sh.win, 0, K, 0, P, 32);
    for (int64_t j = 0; j < P; ++j)
      for (int64_t k = 0; k < K; ++k)
        CHECK(got[((j / 32) * K + k) * 32 + j % 32] == static_cast<float>(col[k * P + j]));
  }
}

}  // namespace

TEST_CASE("pack_im2col_block: the im2col matrix's blocks in the GEMM's strip layout") {
  // On each instruction-set path the CPU has: the packers have an AVX-512 build of their own.
  for_each_cpu_isa(check_im2col_packing);
}

TEST_CASE("Col2im: the adjoint of im2col, tap by tap in (ki, kj) order, scaled or not") {
  std::mt19937_64 rng(9);
  std::normal_distribution<double> normal;
  struct Shape {
    int64_t N, C, H, W;
    ConvWindow win;
  };
  const std::vector<Shape> shapes = {
      {2, 3, 9, 11, {3, 3, 1, 1, 1}},  {1, 2, 12, 7, {3, 3, 2, 1, 1}},
      {2, 2, 10, 13, {1, 1, 2, 0, 1}}, {1, 2, 9, 9, {3, 3, 1, 2, 2}},
      {1, 1, 23, 40, {7, 7, 2, 3, 1}}, {3, 3, 6, 5, {2, 3, 3, 1, 1}},
      {1, 2, 5, 70, {3, 3, 1, 1, 1}},  {2, 1, 11, 11, {5, 5, 3, 0, 1}},
  };
  for (const Shape& sh : shapes) {
    CAPTURE(sh.H);
    CAPTURE(sh.W);
    CAPTURE(sh.win.stride);
    const ConvWindow& w = sh.win;
    const int64_t Ho = w.out_h(sh.H), Wo = w.out_w(sh.W), P = Ho * Wo;
    const int64_t K = sh.C * w.kh * w.kw, X = sh.C * sh.H * sh.W;
    std::vector<double> dcol(sh.N * K * P), scale(X);
    for (double& v : dcol) v = normal(rng);
    for (double& v : scale) v = normal(rng);
    std::vector<double> want(sh.N * X, 0.0), want_scaled(sh.N * X);
    for (int64_t n = 0; n < sh.N; ++n)
      for (int64_t c = 0; c < sh.C; ++c)
        for (int64_t iy = 0; iy < sh.H; ++iy)
          for (int64_t ix = 0; ix < sh.W; ++ix) {
            double sum = 0;
            for (int64_t ki = 0; ki < w.kh; ++ki)
              for (int64_t kj = 0; kj < w.kw; ++kj)
                for (int64_t oy = 0; oy < Ho; ++oy)
                  for (int64_t ox = 0; ox < Wo; ++ox)
                    if (oy * w.stride - w.pad + ki * w.dilation == iy &&
                        ox * w.stride - w.pad + kj * w.dilation == ix)
                      sum += dcol[(n * K + (c * w.kh + ki) * w.kw + kj) * P + oy * Wo + ox];
            const int64_t i = (c * sh.H + iy) * sh.W + ix;
            want[n * X + i] = sum;
            want_scaled[n * X + i] = scale[i] * sum;
          }
    std::vector<double> got(sh.N * X, -5.0);
    launch<Col2im, double>(Device::cpu, got.data(), dcol.data(), sh.N, sh.C, sh.H, sh.W, w,
                           static_cast<const double*>(nullptr), int64_t(0));
    CHECK(got == want);
    launch<Col2im, double>(Device::cpu, got.data(), dcol.data(), sh.N, sh.C, sh.H, sh.W, w,
                           static_cast<const double*>(scale.data()), int64_t(0));
    CHECK(got == want_scaled);
  }
}

TEST_CASE("conv2d forward and weight gradient: implicit im2col gives the explicit path's numbers") {
  std::mt19937_64 rng(21);
  struct Shape {
    int64_t N, C, H, W, O, kh, kw, stride, pad, dilation;
  };
  const std::vector<Shape> shapes = {
      {2, 5, 17, 19, 7, 3, 3, 1, 1, 1}, {1, 3, 40, 37, 9, 7, 7, 2, 3, 1},
      {2, 4, 15, 15, 6, 3, 3, 2, 1, 1}, {1, 6, 13, 11, 5, 3, 3, 1, 2, 2},
      {1, 3, 9, 30, 4, 1, 3, 1, 1, 1},  {3, 8, 6, 6, 70, 3, 3, 1, 1, 1},
      {1, 2, 64, 64, 3, 3, 3, 1, 1, 1},
  };
  for (const Shape& sh : shapes) {
    for (DType dt : {DType::f32, DType::f64}) {
      CAPTURE(sh.H);
      CAPTURE(sh.kh);
      CAPTURE(sh.stride);
      const Tensor x = Tensor::randn({sh.N, sh.C, sh.H, sh.W}, rng, dt);
      const Tensor w = Tensor::randn({sh.O, sh.C, sh.kh, sh.kw}, rng, dt);
      const Tensor b = Tensor::randn({sh.O}, rng, dt);
      Conv2dOptions opt;
      opt.stride = sh.stride;
      opt.padding = sh.pad;
      opt.dilation = sh.dilation;
      const Tensor implicit = conv2d_forward(x, w, b, opt);
      const Tensor g = Tensor::randn(implicit.shape(), rng, dt);
      const Tensor dw_implicit = conv2d_backward_weight(g, x, w.shape(), opt);
      set_conv_images_per_chunk_for_testing(1);
      const Tensor explicit_path = conv2d_forward(x, w, b, opt);
      const Tensor dw_explicit = conv2d_backward_weight(g, x, w.shape(), opt);
      set_conv_images_per_chunk_for_testing(0);
      REQUIRE(implicit.shape() == explicit_path.shape());
      CHECK(implicit.to_vector() == explicit_path.to_vector());
      CHECK(dw_implicit.to_vector() == dw_explicit.to_vector());
      // And a naive convolution (double sums), to a tolerance.
      const std::vector<double> xv = x.to_vector(), wv = w.to_vector(), bv = b.to_vector();
      const int64_t Ho = implicit.size(2), Wo = implicit.size(3);
      std::vector<double> want(implicit.numel());
      for (int64_t n = 0; n < sh.N; ++n)
        for (int64_t o = 0; o < sh.O; ++o)
          for (int64_t oy = 0; oy < Ho; ++oy)
            for (int64_t ox = 0; ox < Wo; ++ox) {
              double sum = bv[o];
              for (int64_t c = 0; c < sh.C; ++c)
                for (int64_t ki = 0; ki < sh.kh; ++ki)
                  for (int64_t kj = 0; kj < sh.kw; ++kj) {
                    const int64_t iy = oy * sh.stride - sh.pad + ki * sh.dilation;
                    const int64_t ix = ox * sh.stride - sh.pad + kj * sh.dilation;
                    if (iy < 0 || iy >= sh.H || ix < 0 || ix >= sh.W) continue;
                    sum += wv[((o * sh.C + c) * sh.kh + ki) * sh.kw + kj] *
                           xv[((n * sh.C + c) * sh.H + iy) * sh.W + ix];
                  }
              want[((n * sh.O + o) * Ho + oy) * Wo + ox] = sum;
            }
      check_close(implicit.to_vector(), want, dt == DType::f32 ? 1e-4 : 1e-12,
                  dt == DType::f32 ? 1e-4 : 1e-12);
    }
  }
}

TEST_CASE("pack_product_block: the element-wise product's blocks in the strip layout") {
  std::mt19937_64 rng(4);
  std::normal_distribution<float> normal;
  const int64_t rows = 7, ld = 53;
  std::vector<float> a(rows * ld), b(rows * ld);
  for (float& v : a) v = normal(rng);
  for (float& v : b) v = normal(rng);
  for (int NR : {8, 48}) {
    for (int trial = 0; trial < 20; ++trial) {
      const int64_t k0 = static_cast<int64_t>(rng() % rows);
      const int64_t kc = 1 + static_cast<int64_t>(rng() % (rows - k0));
      const int64_t j0 = static_cast<int64_t>(rng() % ld);
      const int64_t nc = 1 + static_cast<int64_t>(rng() % (ld - j0));
      const int64_t strips = (nc + NR - 1) / NR;
      std::vector<float> got(strips * kc * NR, -3.0f);
      cpu::pack_product_block(got.data(), a.data(), b.data(), ld, k0, kc, j0, nc, NR);
      for (int64_t s = 0; s < strips; ++s)
        for (int64_t kk = 0; kk < kc; ++kk)
          for (int jj = 0; jj < NR; ++jj) {
            const int64_t j = s * NR + jj;
            const int64_t i = (k0 + kk) * ld + j0 + j;
            CHECK(got[(s * kc + kk) * NR + jj] == (j < nc ? a[i] * b[i] : 0.0f));
          }
    }
  }
}
