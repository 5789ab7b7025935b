// Winograd's F(4x4, 3x3) on the CPU (kernels/cpu/winograd.h, and conv2d's choice of it): each
// transform against its matrix definition written here (Bᵀ d B, G g Gᵀ, Aᵀ m A as plain
// matrix products in double, the 6x6 patches cut from a zero-padded copy of the image), for any
// tile rows and sizes that cut the last tiles; the convolution against the naive loops within
// a rounding bound derived below; which convolutions take F(4x4, 3x3) rather than F(2x2, 3x3);
// and its two ways, the fused batch norm and the constant-weights cache, each bit for bit.
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

Mat absolute(Mat a) {
  for (auto& row : a)
    for (double& v : row) v = std::abs(v);
  return a;
}

// Lavin and Gray's F(4x4, 3x3), written out here from the paper, not from the code under test.
const Mat kBt = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                 {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
const Mat kG = {{1.0 / 4, 0, 0},
                {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                {1.0 / 24, 1.0 / 12, 1.0 / 6},
                {1.0 / 24, -1.0 / 12, 1.0 / 6},
                {0, 0, 1}};
const Mat kAt = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};

// The 6x6 patch of channel c under tile (ty, tx), zero outside the image.
Mat patch(const std::vector<double>& x, int64_t c, int64_t H, int64_t W, int64_t ty,
          int64_t tx) {
  Mat d(6, std::vector<double>(6, 0.0));
  for (int r = 0; r < 6; ++r)
    for (int s = 0; s < 6; ++s) {
      const int64_t iy = 4 * ty - 1 + r, ix = 4 * tx - 1 + s;
      if (iy >= 0 && iy < H && ix >= 0 && ix < W) d[r][s] = x[(c * H + iy) * W + ix];
    }
  return d;
}

struct TileRestore {
  ~TileRestore() {
    set_conv_winograd_tile_for_testing(0);
    set_conv_winograd_way_for_testing(0);
    set_conv_winograd(true);
  }
};

}  // namespace

TEST_CASE("the F(4x4, 3x3) matrices convolve: Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A is the 3x3 correlation") {
  // The matrices above checked against their meaning before they judge the code.
  std::mt19937_64 rng(10);
  const std::vector<double> dv = normal(36, rng), gv = normal(9, rng);
  Mat d(6, std::vector<double>(6)), g(3, std::vector<double>(3));
  for (int i = 0; i < 36; ++i) d[i / 6][i % 6] = dv[i];
  for (int i = 0; i < 9; ++i) g[i / 3][i % 3] = gv[i];
  const Mat u = product(product(kG, g), transposed(kG));
  const Mat v = product(product(kBt, d), transposed(kBt));
  Mat m(6, std::vector<double>(6));
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j) m[i][j] = u[i][j] * v[i][j];
  const Mat y = product(product(kAt, m), transposed(kAt));
  for (int r = 0; r < 4; ++r)
    for (int s = 0; s < 4; ++s) {
      double want = 0;
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) want += d[r + i][s + j] * g[i][j];
      CHECK(y[r][s] == doctest::Approx(want).epsilon(1e-12));
    }
}

TEST_CASE("winograd4_weights is G g Gᵀ for every (o, c)") {
  std::mt19937_64 rng(11);
  const int64_t O = 3, C = 70;
  const std::vector<double> w = normal(O * C * 9, rng);
  std::vector<double> U(36 * O * C);
  cpu::winograd4_weights(U.data(), w.data(), O, C);
  int64_t bad = 0;
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c) {
      Mat g(3, std::vector<double>(3));
      for (int i = 0; i < 9; ++i) g[i / 3][i % 3] = w[(o * C + c) * 9 + i];
      const Mat u = product(product(kG, g), transposed(kG));
      for (int xi = 0; xi < 36; ++xi)
        bad += !(std::abs(U[(xi * O + o) * C + c] - u[xi / 6][xi % 6]) <=
                 1e-14 * (1 + std::abs(u[xi / 6][xi % 6])));
    }
  CHECK(bad == 0);
}

TEST_CASE("winograd4_input is Bᵀ d B of each tile's zero-padded 6x6 patch, for any tile rows") {
  std::mt19937_64 rng(12);
  for (const auto& [H, W] : {std::pair<int64_t, int64_t>{8, 8}, {9, 7}, {1, 1}, {5, 13},
                             {4, 3}, {11, 10}, {6, 2}}) {
    const int64_t C = 3, tw = (W + 3) / 4, th = (H + 3) / 4;
    const std::vector<double> x = normal(C * H * W, rng);
    for (const auto& [ty0, ty1] : tile_row_ranges(th)) {
      CAPTURE(H);
      CAPTURE(W);
      CAPTURE(ty0);
      CAPTURE(ty1);
      const int64_t tiles = (ty1 - ty0) * tw, ldv = tiles + 3;
      std::vector<double> V(36 * C * ldv, std::nan(""));
      cpu::winograd4_input(V.data(), ldv, x.data(), C, H, W, 0, C, ty0, ty1);
      int64_t bad = 0;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t t = 0; t < tiles; ++t) {
          const Mat v =
              product(product(kBt, patch(x, c, H, W, ty0 + t / tw, t % tw)), transposed(kBt));
          for (int xi = 0; xi < 36; ++xi) {
            const double want = v[xi / 6][xi % 6];
            bad += !(std::abs(V[(xi * C + c) * ldv + t] - want) <= 1e-13 * (1 + std::abs(want)));
          }
        }
      CHECK(bad == 0);
    }
  }
  // A channel range: only its rows of V are written.
  const int64_t C = 4, H = 9, W = 9, tiles = 9;
  const std::vector<double> x = normal(C * H * W, rng);
  std::vector<double> V(36 * C * tiles, 7.0);
  cpu::winograd4_input(V.data(), tiles, x.data(), C, H, W, 1, 3, 0, 3);
  int64_t outside_written = 0;
  for (int xi = 0; xi < 36; ++xi)
    for (int64_t c : {0, 3})
      for (int64_t t = 0; t < tiles; ++t) outside_written += V[(xi * C + c) * tiles + t] != 7.0;
  CHECK(outside_written == 0);
}

TEST_CASE("winograd4_output is Aᵀ m A cut at the image's edge, the epilogue on each pixel once") {
  std::mt19937_64 rng(13);
  for (const auto& [H, W] : {std::pair<int64_t, int64_t>{8, 8}, {9, 7}, {1, 1}, {6, 13},
                             {3, 2}, {11, 10}}) {
    const int64_t O = 3, tw = (W + 3) / 4, th = (H + 3) / 4;
    for (const auto& [ty0, ty1] : tile_row_ranges(th)) {
      CAPTURE(H);
      CAPTURE(W);
      CAPTURE(ty0);
      CAPTURE(ty1);
      const int64_t tiles = (ty1 - ty0) * tw, ldm = tiles + 2;
      const std::vector<double> M = normal(36 * O * ldm, rng);
      std::vector<double> y(O * H * W, std::nan(""));
      std::vector<int> seen(O * H * W, 0);
      cpu::winograd4_output(y.data(), M.data(), ldm, O, H, W, 0, O, ty0, ty1,
                            counting_epilogue(y, seen, H, W));
      // The range's output rows [4 ty0, min(4 ty1, H)): each written and seen once; no other.
      check_rows_covered(y, seen, O, H, W, 4 * ty0, 4 * ty1);
      int64_t bad = 0;
      for (int64_t o = 0; o < O; ++o)
        for (int64_t t = 0; t < tiles; ++t) {
          const int64_t ty = ty0 + t / tw, tx = t % tw;
          Mat m(6, std::vector<double>(6));
          for (int xi = 0; xi < 36; ++xi) m[xi / 6][xi % 6] = M[(xi * O + o) * ldm + t];
          const Mat out = product(product(kAt, m), transposed(kAt));
          for (int r = 0; r < 4; ++r)
            for (int s = 0; s < 4; ++s) {
              const int64_t oy = 4 * ty + r, ox = 4 * tx + s;
              if (oy >= H || ox >= W) continue;
              bad += !(std::abs(y[(o * H + oy) * W + ox] - out[r][s]) <=
                       1e-13 * (1 + std::abs(out[r][s])));
            }
        }
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("the F(4x4, 3x3) transforms refuse channel or tile-row ranges outside the image") {
  std::vector<double> V(36 * 2 * 12), x(2 * 9 * 10), y(2 * 9 * 10), M(36 * 2 * 12);
  // 9 x 10: 3 tile rows of 3 tiles.
  CHECK_NOTHROW(cpu::winograd4_input(V.data(), 9, x.data(), 2, 9, 10, 0, 2, 0, 3));
  CHECK_THROWS_WITH_AS(cpu::winograd4_input(V.data(), 9, x.data(), 2, 9, 10, 0, 2, 2, 4),
                       "winograd4_input: channels [0, 2) of 2, tile rows [2, 4) of 3", Error);
  CHECK_THROWS_AS(cpu::winograd4_input(V.data(), 9, x.data(), 2, 9, 10, 1, 3, 0, 1), Error);
  CHECK_THROWS_AS(cpu::winograd4_input(V.data(), 9, x.data(), 2, 9, 10, 0, 1, 2, 1), Error);
  CHECK_NOTHROW(cpu::winograd4_output(y.data(), M.data(), 9, 2, 9, 10, 0, 2, 0, 3, {}));
  CHECK_THROWS_WITH_AS(cpu::winograd4_output(y.data(), M.data(), 9, 2, 9, 10, 0, 2, 1, 4, {}),
                       "winograd4_output: channels [0, 2) of 2, tile rows [1, 4) of 3", Error);
  CHECK_THROWS_AS(cpu::winograd4_output(y.data(), M.data(), 9, 2, 9, 10, 0, 3, 0, 1, {}), Error);
  CHECK_THROWS_AS(cpu::winograd4_output(y.data(), M.data(), 9, 2, 9, 10, -1, 1, 0, 1, {}), Error);
}

TEST_CASE("conv2d with Winograd's F(4x4, 3x3) matches the naive convolution within its bound") {
  // The bound, per output, from the standard forward error analysis: a value computed by n
  // rounded operations from exact inputs is within γ_n = n u / (1 - n u) (u = 2^-24) of the
  // exact one, times the same expression with every coefficient and input taken in absolute
  // value. Here that expression is |Aᵀ| [Σ_c (|G| |g_c| |G|ᵀ) ⊙ (|Bᵀ| |d_c| |B|)] |A| and n is
  // at most 10 (the weight transform: two passes of up to 5 operations) + 8 (the input's: two of
  // 4) + C + 2C/128 + 4 (the GEMM's products and sums, its bound in test_gemm_isa.cpp) + 8 (the
  // output's: two of 4); the check allows twice that. Sizes that cut the last tiles; chunked
  // (64 channels) and whole (128).
  TileRestore restore;
  set_conv_winograd(true);
  set_conv_winograd_tile_for_testing(4);
  std::mt19937_64 rng(14);
  struct Case {
    int64_t C, O, H, W;
  };
  const Mat absG = absolute(kG), absBt = absolute(kBt), absAt = absolute(kAt);
  for (const Case& k : {Case{64, 64, 23, 26}, Case{64, 72, 33, 30}, Case{128, 128, 25, 22}}) {
    const int64_t C = k.C, O = k.O, H = k.H, W = k.W;
    CAPTURE(C);
    CAPTURE(O);
    CAPTURE(H);
    CAPTURE(W);
    const std::vector<double> xv = normal(C * H * W, rng), wv = normal(O * C * 9, rng);
    Conv2dOptions opt;
    opt.padding = 1;
    const Tensor x = Tensor::from_vector(xv, {1, C, H, W});
    const Tensor w = Tensor::from_vector(wv, {O, C, 3, 3});
    const std::vector<double> y = conv2d_forward(x, w, Tensor(), opt).to_vector();
    // The float32-rounded inputs, as the convolution saw them.
    const std::vector<double> xr = x.to_vector(), wr = w.to_vector();
    const int64_t th = (H + 3) / 4, tw = (W + 3) / 4;
    std::vector<Mat> abs_u(O * C), abs_v(C * th * tw);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t c = 0; c < C; ++c) {
        Mat g(3, std::vector<double>(3));
        for (int i = 0; i < 9; ++i) g[i / 3][i % 3] = std::abs(wr[(o * C + c) * 9 + i]);
        abs_u[o * C + c] = product(product(absG, g), transposed(absG));
      }
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < th * tw; ++t)
        abs_v[c * th * tw + t] = product(
            product(absBt, absolute(patch(xr, c, H, W, t / tw, t % tw))), transposed(absBt));
    const double u = std::ldexp(1.0, -24);
    const double n = 10 + 8 + (C + 2.0 * C / 128 + 4) + 8;
    const double gamma = n * u / (1 - n * u);
    double worst = 0;
    int64_t over = 0;
    for (int64_t o = 0; o < O; ++o)
      for (int64_t t = 0; t < th * tw; ++t) {
        Mat s(6, std::vector<double>(6, 0.0));
        for (int64_t c = 0; c < C; ++c)
          for (int i = 0; i < 6; ++i)
            for (int j = 0; j < 6; ++j)
              s[i][j] += abs_u[o * C + c][i][j] * abs_v[c * th * tw + t][i][j];
        const Mat scale = product(product(absAt, s), transposed(absAt));
        for (int r = 0; r < 4; ++r)
          for (int q = 0; q < 4; ++q) {
            const int64_t oy = 4 * (t / tw) + r, ox = 4 * (t % tw) + q;
            if (oy >= H || ox >= W) continue;
            double exact = 0;  // the naive convolution of the rounded inputs, in double
            for (int64_t c = 0; c < C; ++c)
              for (int i = 0; i < 3; ++i)
                for (int j = 0; j < 3; ++j) {
                  const int64_t iy = oy - 1 + i, ix = ox - 1 + j;
                  if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                  exact += wr[((o * C + c) * 3 + i) * 3 + j] * xr[(c * H + iy) * W + ix];
                }
            const double bound = 2 * gamma * scale[r][q];
            const double err = std::abs(y[(o * H + oy) * W + ox] - exact);
            worst = std::max(worst, err / bound);
            over += !(err <= bound);
          }
      }
    CHECK(over == 0);
    MESSAGE("largest error: " << worst << " of the bound");
    // Not F(2x2, 3x3)'s bits, nor the GEMM's: F(4x4, 3x3) ran.
    set_conv_winograd_tile_for_testing(2);
    const std::vector<double> two = conv2d_forward(x, w, Tensor(), opt).to_vector();
    set_conv_winograd_tile_for_testing(4);
    CHECK(two != y);
  }
}

TEST_CASE("conv2d takes F(4x4, 3x3) from 128 of its tiles, F(2x2, 3x3) below while it has 128") {
  // The bits tell which ran: each forced in turn, then the default compared with them.
  TileRestore restore;
  set_conv_winograd(true);
  struct Case {
    int64_t C, H, W;
    int tile;  // what the default takes
  };
  const Case cases[] = {
      {64, 44, 48, 4},   // 11 x 12 = 132 tiles of 4x4
      {64, 40, 40, 2},   // 10 x 10 = 100 tiles of 4x4; 400 of 2x2
      {64, 32, 64, 4},   // 8 x 16 = 128 of 4x4: the least that takes it
      {64, 29, 60, 2},   // 8 x 15 = 120 of 4x4 (the last row and column cut); 450 of 2x2
      {128, 24, 24, 2},  // 36 of 4x4; 144 of 2x2
  };
  std::mt19937_64 rng(15);
  for (const Case& c : cases) {
    CAPTURE(c.C);
    CAPTURE(c.H);
    CAPTURE(c.W);
    const int expected = c.tile;
    const Tensor x = Tensor::randn({1, c.C, c.H, c.W}, rng);
    const Tensor w = Tensor::randn({c.C, c.C, 3, 3}, rng);
    Conv2dOptions opt;
    opt.padding = 1;
    set_conv_winograd_tile_for_testing(0);
    const std::vector<double> chosen = conv2d_forward(x, w, Tensor(), opt).to_vector();
    set_conv_winograd_tile_for_testing(2);
    const std::vector<double> two = conv2d_forward(x, w, Tensor(), opt).to_vector();
    set_conv_winograd_tile_for_testing(4);
    const std::vector<double> four = conv2d_forward(x, w, Tensor(), opt).to_vector();
    CHECK(two != four);
    CHECK((chosen == four) == (expected == 4));
    CHECK((chosen == two) == (expected == 2));
  }
}

TEST_CASE("F(4x4, 3x3): its two ways, the fused batch norm and ConstantWeights, bit for bit") {
  TileRestore restore;
  set_conv_winograd(true);
  set_conv_winograd_tile_for_testing(4);
  std::mt19937_64 rng(16);
  for (const int64_t C : {64, 128}) {
    CAPTURE(C);
    const int64_t N = 2, O = C, H = 26, W = 23;
    const Tensor x = Tensor::randn({N, C, H, W}, rng);
    const Tensor w = Tensor::randn({O, C, 3, 3}, rng);
    Conv2dOptions opt;
    opt.padding = 1;
    std::vector<std::vector<double>> ways;
    for (int way : {0, 1, 2}) {
      set_conv_winograd_way_for_testing(way);
      ways.push_back(conv2d_forward(x, w, Tensor(), opt).to_vector());
    }
    set_conv_winograd_way_for_testing(0);
    CHECK(ways[1] == ways[0]);
    CHECK(ways[2] == ways[0]);
    const Tensor gamma = Tensor::randn({O}, rng), beta = Tensor::randn({O}, rng);
    const Tensor mean = Tensor::randn({O}, rng);
    const Tensor var = Tensor::uniform({O}, 0.5, 2.0, rng);
    BatchNormEpilogue epilogue;
    epilogue.residual = Tensor::randn({N, O, H, W}, rng);
    epilogue.relu = true;
    const std::vector<double> apart =
        batch_norm_forward(conv2d_forward(x, w, Tensor(), opt), gamma, beta, mean, var, false,
                           0.1, 1e-5, nullptr, nullptr, epilogue)
            .to_vector();
    CHECK(conv2d_batch_norm_eval_forward(x, w, opt, gamma, beta, mean, var, 1e-5, epilogue)
              .to_vector() == apart);
    const ConstantWeights scope;
    for (int call = 0; call < 2; ++call) {
      CHECK(conv2d_forward(x, w, Tensor(), opt).to_vector() == ways[0]);
      CHECK(conv2d_batch_norm_eval_forward(x, w, opt, gamma, beta, mean, var, 1e-5, epilogue)
                .to_vector() == apart);
    }
  }
}
