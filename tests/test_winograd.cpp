// Winograd's F(2x2, 3x3) on the CPU (kernels/cpu/winograd.h, and conv2d's use of it): each
// transform against its matrix definition written here (Bᵀ d B, G g Gᵀ, Aᵀ m A as plain matrix
// products in double, the patches cut from a zero-padded copy of the image); the convolution
// against the naive seven loops, within a bound on its rounding stated below; which convolutions
// take it; and that the fused inference op still equals its separate ops bit for bit.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "helpers.h"
#include "winograd_reference.h"
#include "kernels/cpu/winograd.h"
#include "tensor/ops/batch_norm.h"
#include "tensor/ops/conv2d.h"

using namespace prm;
using namespace winograd_reference;

namespace {

const Mat kBt = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
const Mat kG = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
const Mat kAt = {{1, 1, 1, 0}, {0, 1, -1, -1}};

// y = conv(x, w), 3x3, stride 1, padding 1, and the scale Σ |w| |x| of each output's sum.
void naive_conv3x3(const std::vector<double>& x, const std::vector<double>& w, int64_t C,
                   int64_t O, int64_t H, int64_t W, std::vector<double>* y,
                   std::vector<double>* scale) {
  y->assign(O * H * W, 0.0);
  scale->assign(O * H * W, 0.0);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t oy = 0; oy < H; ++oy)
      for (int64_t ox = 0; ox < W; ++ox) {
        double acc = 0, abs_acc = 0;
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = 0; i < 3; ++i)
            for (int64_t j = 0; j < 3; ++j) {
              const int64_t iy = oy - 1 + i, ix = ox - 1 + j;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              const double p = w[((o * C + c) * 3 + i) * 3 + j] * x[(c * H + iy) * W + ix];
              acc += p;
              abs_acc += std::abs(p);
            }
        (*y)[(o * H + oy) * W + ox] = acc;
        (*scale)[(o * H + oy) * W + ox] = abs_acc;
      }
}

}  // namespace

TEST_CASE("winograd_weights is G g Gᵀ for every (o, c)") {
  std::mt19937_64 rng(1);
  const int64_t O = 3, C = 70;  // C past one block of 64 channels
  const std::vector<double> w = normal(O * C * 9, rng);
  std::vector<double> U(16 * O * C);
  cpu::winograd_weights(U.data(), w.data(), O, C);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c) {
      Mat g(3, std::vector<double>(3));
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) g[i][j] = w[(o * C + c) * 9 + i * 3 + j];
      const Mat u = product(product(kG, g), transposed(kG));
      for (int xi = 0; xi < 16; ++xi) {
        CAPTURE(o);
        CAPTURE(c);
        CAPTURE(xi);
        CHECK(U[(xi * O + o) * C + c] == doctest::Approx(u[xi / 4][xi % 4]).epsilon(1e-14));
      }
    }
}

TEST_CASE("winograd_input is Bᵀ d B of each tile's zero-padded 4x4 patch, for any tile rows") {
  std::mt19937_64 rng(2);
  for (const auto& [H, W] : {std::pair<int64_t, int64_t>{6, 8}, {7, 5}, {1, 1}, {2, 9}}) {
    const int64_t C = 3, tw = (W + 1) / 2, th = (H + 1) / 2;
    const std::vector<double> x = normal(C * H * W, rng);
    for (const auto& [ty0, ty1] : tile_row_ranges(th)) {
      CAPTURE(H);
      CAPTURE(W);
      CAPTURE(ty0);
      CAPTURE(ty1);
      const int64_t tiles = (ty1 - ty0) * tw, ldv = tiles + 3;  // rows of V 3 apart
      std::vector<double> V(16 * C * ldv);
      cpu::winograd_input(V.data(), ldv, x.data(), C, H, W, 0, C, ty0, ty1);
      for (int64_t c = 0; c < C; ++c)
        for (int64_t t = 0; t < tiles; ++t) {
          const int64_t ty = ty0 + t / tw, tx = t % tw;
          Mat d(4, std::vector<double>(4, 0.0));
          for (int r = 0; r < 4; ++r)
            for (int s = 0; s < 4; ++s) {
              const int64_t iy = 2 * ty - 1 + r, ix = 2 * tx - 1 + s;
              if (iy >= 0 && iy < H && ix >= 0 && ix < W) d[r][s] = x[(c * H + iy) * W + ix];
            }
          const Mat v = product(product(kBt, d), transposed(kBt));
          for (int xi = 0; xi < 16; ++xi) {
            CAPTURE(c);
            CAPTURE(t);
            CAPTURE(xi);
            CHECK(V[(xi * C + c) * ldv + t] ==
                  doctest::Approx(v[xi / 4][xi % 4]).epsilon(1e-14));
          }
        }
    }
  }
}

TEST_CASE("the Winograd transforms refuse channel or tile-row ranges outside the image") {
  std::vector<double> V(16 * 2 * 12), x(2 * 5 * 6), y(2 * 5 * 6), M(16 * 2 * 12);
  // 5 x 6: 3 tile rows of 3 tiles.
  CHECK_NOTHROW(cpu::winograd_input(V.data(), 9, x.data(), 2, 5, 6, 0, 2, 0, 3));
  CHECK_THROWS_WITH_AS(cpu::winograd_input(V.data(), 9, x.data(), 2, 5, 6, 0, 2, 2, 4),
                       "winograd_input: channels [0, 2) of 2, tile rows [2, 4) of 3", Error);
  CHECK_THROWS_AS(cpu::winograd_input(V.data(), 9, x.data(), 2, 5, 6, 1, 3, 0, 1), Error);
  CHECK_THROWS_AS(cpu::winograd_input(V.data(), 9, x.data(), 2, 5, 6, 0, 1, 2, 1), Error);
  CHECK_NOTHROW(cpu::winograd_output(y.data(), M.data(), 9, 2, 5, 6, 0, 2, 0, 3, {}));
  CHECK_THROWS_WITH_AS(cpu::winograd_output(y.data(), M.data(), 9, 2, 5, 6, 0, 2, 1, 4, {}),
                       "winograd_output: channels [0, 2) of 2, tile rows [1, 4) of 3", Error);
  CHECK_THROWS_AS(cpu::winograd_output(y.data(), M.data(), 9, 2, 5, 6, 0, 3, 0, 1, {}), Error);
  CHECK_THROWS_AS(cpu::winograd_output(y.data(), M.data(), 9, 2, 5, 6, -1, 1, 0, 1, {}), Error);
}

TEST_CASE("winograd_output is Aᵀ m A cut at the image's edge, the epilogue on each pixel once") {
  std::mt19937_64 rng(3);
  for (const auto& [H, W] : {std::pair<int64_t, int64_t>{6, 8}, {7, 5}, {1, 1}, {3, 2}}) {
    const int64_t O = 3, tw = (W + 1) / 2, th = (H + 1) / 2;
    for (const auto& [ty0, ty1] : tile_row_ranges(th)) {
      CAPTURE(H);
      CAPTURE(W);
      CAPTURE(ty0);
      CAPTURE(ty1);
      const int64_t tiles = (ty1 - ty0) * tw, ldm = tiles + 2;  // rows of M 2 apart
      const std::vector<double> M = normal(16 * O * ldm, rng);
      std::vector<double> y(O * H * W, std::nan(""));
      std::vector<int> seen(O * H * W, 0);
      cpu::winograd_output(y.data(), M.data(), ldm, O, H, W, 0, O, ty0, ty1,
                           counting_epilogue(y, seen, H, W));
      // The range's output rows [2 ty0, min(2 ty1, H)): each written and seen once; no other.
      check_rows_covered(y, seen, O, H, W, 2 * ty0, 2 * ty1);
      for (int64_t o = 0; o < O; ++o)
        for (int64_t t = 0; t < tiles; ++t) {
          const int64_t ty = ty0 + t / tw, tx = t % tw;
          Mat m(4, std::vector<double>(4));
          for (int xi = 0; xi < 16; ++xi) m[xi / 4][xi % 4] = M[(xi * O + o) * ldm + t];
          const Mat out = product(product(kAt, m), transposed(kAt));
          for (int r = 0; r < 2; ++r)
            for (int s = 0; s < 2; ++s) {
              const int64_t oy = 2 * ty + r, ox = 2 * tx + s;
              if (oy >= H || ox >= W) continue;
              CAPTURE(o);
              CAPTURE(t);
              CHECK(y[(o * H + oy) * W + ox] == doctest::Approx(out[r][s]).epsilon(1e-14));
            }
        }
    }
  }
}

TEST_CASE("conv2d with Winograd's F(2x2, 3x3) matches the naive convolution within its bound") {
  // Rounding bound, per output: |y - exact| <= 4 * (9 C) * eps * Σ |w| |x|, four times the
  // classical bound of a dot product of 9 C terms; the transforms' sums (up to 4 terms in and
  // 9 out, halvings exact) are what the factor 4 allows for. Odd and even sizes, so the last
  // row and column of tiles are cut; 64 or more channels in and out and 128 or more tiles, the
  // smallest convolutions that take it, in both of its ways.
  set_conv_winograd(true);
  std::mt19937_64 rng(4);
  struct Case {
    int64_t C, O, H, W;
  };
  // 64 channels: chunks of tile rows, each on one thread; 128: the whole image at once.
  for (const Case& k : {Case{64, 64, 23, 24}, Case{64, 96, 31, 25}, Case{128, 128, 24, 25}}) {
    const int64_t C = k.C, O = k.O, H = k.H, W = k.W;
    CAPTURE(C);
    CAPTURE(O);
    CAPTURE(H);
    CAPTURE(W);
    const std::vector<double> xv = normal(C * H * W, rng), wv = normal(O * C * 9, rng);
    std::vector<double> ref, scale;
    naive_conv3x3(xv, wv, C, O, H, W, &ref, &scale);
    Conv2dOptions opt;
    opt.padding = 1;
    const Tensor x = Tensor::from_vector(xv, {1, C, H, W});
    const Tensor w = Tensor::from_vector(wv, {O, C, 3, 3});
    const std::vector<double> y = conv2d_forward(x, w, Tensor(), opt).to_vector();
    const double eps = std::ldexp(1.0, -24);
    double worst = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      const double bound = 4.0 * 9 * C * eps * scale[i];
      worst = std::max(worst, std::abs(y[i] - ref[i]) / bound);
      if (!(std::abs(y[i] - ref[i]) <= bound))
        FAIL_CHECK("element " << i << ": " << y[i] << " vs " << ref[i] << ", bound " << bound);
    }
    MESSAGE("largest error: " << worst << " of the bound");
    // Not the GEMM path's bits: Winograd ran.
    set_conv_winograd(false);
    const std::vector<double> gemm = conv2d_forward(x, w, Tensor(), opt).to_vector();
    set_conv_winograd(true);
    CHECK(gemm != y);
  }
}

TEST_CASE("conv2d takes Winograd only for 3x3, stride 1, padding 1, >= 64 channels, >= 128 tiles") {
  // The GEMM path's bits where any condition fails; other bits where all hold.
  struct Case {
    int64_t C, O, H, W, stride, pad, dilation;
    DType dtype;
    bool winograd;
  };
  const Case cases[] = {
      {128, 128, 22, 23, 1, 1, 1, DType::f32, true},    // 11 x 12 = 132 tiles
      {128, 128, 22, 22, 1, 1, 1, DType::f32, false},   // 121 tiles
      {128, 128, 16, 32, 1, 1, 1, DType::f32, true},    // 8 x 16 = 128 tiles
      {128, 128, 2, 254, 1, 1, 1, DType::f32, false},   // 1 x 127 tiles
      {63, 128, 24, 24, 1, 1, 1, DType::f32, false},    // 63 input channels
      {128, 63, 24, 24, 1, 1, 1, DType::f32, false},    // 63 output channels
      {64, 64, 24, 24, 1, 1, 1, DType::f32, true},      // 64 and 64: chunked
      {128, 128, 48, 48, 2, 1, 1, DType::f32, false},   // stride 2
      {128, 128, 26, 26, 1, 0, 1, DType::f32, false},   // unpadded
      {128, 128, 28, 28, 1, 2, 2, DType::f32, false},   // dilation 2
      {128, 128, 24, 24, 1, 1, 1, DType::f64, false},   // double: the exact path
  };
  std::mt19937_64 rng(5);
  struct Restore {
    ~Restore() { set_conv_winograd(true); }
  } restore;
  for (const Case& c : cases) {
    CAPTURE(c.C);
    CAPTURE(c.O);
    CAPTURE(c.H);
    CAPTURE(c.stride);
    CAPTURE(c.pad);
    const Tensor x = Tensor::randn({1, c.C, c.H, c.W}, rng, c.dtype);
    const Tensor w = Tensor::randn({c.O, c.C, 3, 3}, rng, c.dtype);
    Conv2dOptions opt;
    opt.stride = c.stride;
    opt.padding = c.pad;
    opt.dilation = c.dilation;
    set_conv_winograd(true);
    const std::vector<double> on = conv2d_forward(x, w, Tensor(), opt).to_vector();
    set_conv_winograd(false);
    const std::vector<double> off = conv2d_forward(x, w, Tensor(), opt).to_vector();
    CHECK((on != off) == c.winograd);
  }
}

TEST_CASE("conv2d_batch_norm_eval_forward with Winograd is its separate ops, bit for bit") {
  // The batch norm, the residual and the ReLU on each pair of output rows as Winograd's output
  // transform writes them: the same numbers as the forward, then the batch norm's own pass.
  set_conv_winograd(true);
  std::mt19937_64 rng(6);
  for (const int64_t C : {64, 128}) {  // chunked and whole
  CAPTURE(C);
  const int64_t N = 2, O = C, H = 24, W = 25;
  const Tensor x = Tensor::randn({N, C, H, W}, rng);
  const Tensor w = Tensor::randn({O, C, 3, 3}, rng);
  const Tensor gamma = Tensor::randn({O}, rng), beta = Tensor::randn({O}, rng);
  const Tensor mean = Tensor::randn({O}, rng);
  const Tensor var = Tensor::uniform({O}, 0.5, 2.0, rng);
  BatchNormEpilogue epilogue;
  epilogue.residual = Tensor::randn({N, O, H, W}, rng);
  epilogue.relu = true;
  Conv2dOptions opt;
  opt.padding = 1;
  const Tensor fused =
      conv2d_batch_norm_eval_forward(x, w, opt, gamma, beta, mean, var, 1e-5, epilogue);
  const Tensor apart = batch_norm_forward(conv2d_forward(x, w, Tensor(), opt), gamma, beta, mean,
                                          var, false, 0.1, 1e-5, nullptr, nullptr, epilogue);
  CHECK(fused.to_vector() == apart.to_vector());
  }
}

TEST_CASE("PRM_WINOGRAD: prm --version reports it, anything but 0 or 1 is a one-line error") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const CommandResult on = run_command(prm_bin() + " --version");
  REQUIRE_MESSAGE(on.exit_code == 0, on.err);
  CHECK(on.out.find("CPU Winograd F(4x4, 3x3) and F(2x2, 3x3) for large 3x3 convolutions: on") !=
        std::string::npos);
  const CommandResult off = run_command("PRM_WINOGRAD=0 " + prm_bin() + " --version");
  REQUIRE_MESSAGE(off.exit_code == 0, off.err);
  CHECK(off.out.find("3x3 convolutions: off") != std::string::npos);
  const CommandResult one = run_command("PRM_WINOGRAD=1 " + prm_bin() + " --version");
  CHECK(one.out.find("3x3 convolutions: on") != std::string::npos);
  const CommandResult bad = run_command("PRM_WINOGRAD=yes " + prm_bin() + " --version");
  CHECK(bad.exit_code != 0);
  CHECK(bad.err.find("PRM_WINOGRAD=yes is not 0 (off) or 1") != std::string::npos);
  CHECK(std::count(bad.err.begin(), bad.err.end(), '\n') == 1);
}

TEST_CASE("Winograd's two ways, chunks of tile rows and the whole image, give the same bits") {
  // Each output element is the same dot products over C in the same order either way (a GEMM's
  // columns are independent of how its columns are split), the same transforms around them.
  set_conv_winograd(true);
  struct Restore {
    ~Restore() { set_conv_winograd_way_for_testing(0); }
  } restore;
  std::mt19937_64 rng(9);
  for (const int64_t C : {64, 128}) {
    CAPTURE(C);
    const Tensor x = Tensor::randn({2, C, 30, 29}, rng);
    const Tensor w = Tensor::randn({C, C, 3, 3}, rng);
    Conv2dOptions opt;
    opt.padding = 1;
    std::vector<std::vector<double>> ways;
    for (int way : {0, 1, 2}) {
      set_conv_winograd_way_for_testing(way);
      ways.push_back(conv2d_forward(x, w, Tensor(), opt).to_vector());
    }
    CHECK(ways[1] == ways[0]);
    CHECK(ways[2] == ways[0]);
  }
}
