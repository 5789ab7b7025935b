// Every named backward function (src/tensor/ops/*.h), called directly rather than through
// autograd, on a small float64 CPU case whose expected numbers are worked out by hand in the
// comments (or by a few-line loop over plain doubles written here).
#include <cmath>
#include <vector>

#include "helpers.h"
#include "tensor/ops/batch_norm.h"
#include "tensor/ops/conv2d.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/loss.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/pooling.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/shape.h"
#include "tensor/ops/upsample.h"

using namespace prm;

namespace {

Tensor f64(const std::vector<double>& v, const Shape& shape) {
  return Tensor::from_vector(v, shape, DType::f64);
}

Tensor scalar(double v) { return Tensor::full({}, v, DType::f64); }

constexpr double kRtol = 1e-12;

}  // namespace

// Shared by the binary ops: a [2, 3] against b [1, 3], so b is broadcast over the rows and its
// gradient is the row-sum of the per-element term.

TEST_CASE("add_backward: da = g, db = g summed over the broadcast rows") {
  Tensor g = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  BinaryGrads d = add_backward(g, {2, 3}, {1, 3}, true, true);
  CHECK(d.da.shape() == Shape{2, 3});
  check_close(d.da, {1, 2, 3, 4, 5, 6}, kRtol);
  CHECK(d.db.shape() == Shape{1, 3});
  check_close(d.db, {1 + 4, 2 + 5, 3 + 6}, kRtol);
  BinaryGrads only_a = add_backward(g, {2, 3}, {1, 3}, true, false);
  CHECK(only_a.da.defined());
  CHECK_FALSE(only_a.db.defined());
}

TEST_CASE("sub_backward: da = g, db = -g summed over the broadcast rows") {
  Tensor g = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  BinaryGrads d = sub_backward(g, {2, 3}, {1, 3}, true, true);
  check_close(d.da, {1, 2, 3, 4, 5, 6}, kRtol);
  CHECK(d.db.shape() == Shape{1, 3});
  check_close(d.db, {-5, -7, -9}, kRtol);
  BinaryGrads only_b = sub_backward(g, {2, 3}, {1, 3}, false, true);
  CHECK_FALSE(only_b.da.defined());
  check_close(only_b.db, {-5, -7, -9}, kRtol);
}

TEST_CASE("mul_backward: da = g * b, db = sum over rows of g * a") {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = f64({10, 20, 30}, {1, 3});
  Tensor g = f64({1, -1, 2, 0, 3, 1}, {2, 3});
  BinaryGrads d = mul_backward(g, a, b, true, true);
  // da = g * b (b repeated on both rows): [1*10, -1*20, 2*30; 0*10, 3*20, 1*30].
  check_close(d.da, {10, -20, 60, 0, 60, 30}, kRtol);
  // db[j] = g[0][j] a[0][j] + g[1][j] a[1][j]: 1*1 + 0*4 = 1, -1*2 + 3*5 = 13, 2*3 + 1*6 = 12.
  CHECK(d.db.shape() == Shape{1, 3});
  check_close(d.db, {1, 13, 12}, kRtol);
  BinaryGrads only_a = mul_backward(g, a, b, true, false);
  check_close(only_a.da, {10, -20, 60, 0, 60, 30}, kRtol);
  CHECK_FALSE(only_a.db.defined());
}

TEST_CASE("div_backward: da = g / b, db = sum over rows of -g * a / b^2") {
  Tensor a = f64({2, 4, 6, 8, 10, 12}, {2, 3});
  Tensor b = f64({1, 2, 4}, {1, 3});
  Tensor g = f64({1, 1, 1, 2, -1, 4}, {2, 3});
  BinaryGrads d = div_backward(g, a, b, true, true);
  // da = g / b: [1/1, 1/2, 1/4; 2/1, -1/2, 4/4].
  check_close(d.da, {1, 0.5, 0.25, 2, -0.5, 1}, kRtol);
  // db[0] = -(1*2/1 + 2*8/1) = -18; db[1] = -(1*4/4 + (-1)*10/4) = -(1 - 2.5) = 1.5;
  // db[2] = -(1*6/16 + 4*12/16) = -(0.375 + 3) = -3.375.
  CHECK(d.db.shape() == Shape{1, 3});
  check_close(d.db, {-18, 1.5, -3.375}, kRtol);
  BinaryGrads only_b = div_backward(g, a, b, false, true);
  CHECK_FALSE(only_b.da.defined());
  check_close(only_b.db, {-18, 1.5, -3.375}, kRtol);
  BinaryGrads neither = div_backward(g, a, b, false, false);
  CHECK_FALSE(neither.da.defined());
  CHECK_FALSE(neither.db.defined());
}

TEST_CASE("add_scalar_backward: dx = g") {
  Tensor dx = add_scalar_backward(f64({1, -2, 3}, {3}));
  CHECK(dx.shape() == Shape{3});
  check_close(dx, {1, -2, 3}, kRtol);
}

TEST_CASE("mul_scalar_backward: dx = g * s") {
  check_close(mul_scalar_backward(f64({1, -2, 3}, {3}), 2.5), {2.5, -5, 7.5}, kRtol);
  check_close(mul_scalar_backward(f64({1, -2, 3}, {3}), -1), {-1, 2, -3}, kRtol);
}

TEST_CASE("pow_scalar_backward: dx = g * p * x^(p-1), 0 for p = 0") {
  // p = 3: 3 x^2 g = 3*1*1, 3*4*1, 3*9*2 = 3, 12, 54.
  check_close(pow_scalar_backward(f64({1, 1, 2}, {3}), f64({1, 2, 3}, {3}), 3), {3, 12, 54},
              kRtol);
  // p = 0.5: 0.5 / sqrt(x): 0.5 / 2 = 0.25, 0.5 / 3 = 1/6.
  check_close(pow_scalar_backward(f64({1, 1}, {2}), f64({4, 9}, {2}), 0.5), {0.25, 1.0 / 6},
              kRtol);
  // p = -1: -g / x^2 = -2 / 4 = -0.5.
  check_close(pow_scalar_backward(f64({2}, {1}), f64({2}, {1}), -1), {-0.5}, kRtol);
  // p = 0: x^0 is constant, so 0 everywhere, even at x = 0 (not 0 * 0^-1 = NaN).
  check_close(pow_scalar_backward(f64({1, 1}, {2}), f64({0, 2}, {2}), 0), {0, 0}, kRtol);
}

TEST_CASE("relu_backward: dx = g where x > 0, 0 at x = 0 exactly") {
  Tensor x = f64({-1, 0, 2, -0.5, 3}, {5});
  Tensor g = f64({1, 2, 3, 4, 5}, {5});
  check_close(relu_backward(g, x), {0, 0, 3, 0, 5}, kRtol);
}

TEST_CASE("sigmoid_backward: dx = g * y * (1 - y) from the saved output y") {
  // y = 0.5, 0.25, 0.9: y(1-y) = 0.25, 0.1875, 0.09; times g = 1, 2, -1.
  Tensor y = f64({0.5, 0.25, 0.9}, {3});
  Tensor g = f64({1, 2, -1}, {3});
  check_close(sigmoid_backward(g, y), {0.25, 0.375, -0.09}, kRtol);
}

TEST_CASE("expand_backward: g summed back to the input's shape") {
  Tensor g = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  // [2, 1] -> [2, 3]: each row sums, 1+2+3 = 6, 4+5+6 = 15.
  Tensor d1 = expand_backward(g, {2, 1});
  CHECK(d1.shape() == Shape{2, 1});
  check_close(d1, {6, 15}, kRtol);
  // [3] -> [2, 3] (a missing leading dim): each column sums, 5, 7, 9.
  Tensor d2 = expand_backward(g, {3});
  CHECK(d2.shape() == Shape{3});
  check_close(d2, {5, 7, 9}, kRtol);
  // [1, 1] -> [2, 3]: everything, 21.
  check_close(expand_backward(g, {1, 1}), {21}, kRtol);
}

TEST_CASE("sum_backward: the scalar gradient in every position") {
  Tensor dx = sum_backward(scalar(1.5), {2, 2});
  CHECK(dx.shape() == Shape{2, 2});
  check_close(dx, {1.5, 1.5, 1.5, 1.5}, kRtol);
}

TEST_CASE("sum_dims_backward: g repeated along the summed dims") {
  // x [2, 3] summed over dim 1 -> g [2]: dx[i][j] = g[i].
  Tensor d1 = sum_dims_backward(f64({10, 20}, {2}), {2, 3}, {1});
  CHECK(d1.shape() == Shape{2, 3});
  check_close(d1, {10, 10, 10, 20, 20, 20}, kRtol);
  // The same with -1 and a keepdim-shaped g [2, 1].
  check_close(sum_dims_backward(f64({10, 20}, {2, 1}), {2, 3}, {-1}), {10, 10, 10, 20, 20, 20},
              kRtol);
  // Over dim 0 -> g [3]: dx[i][j] = g[j].
  check_close(sum_dims_backward(f64({1, 2, 3}, {3}), {2, 3}, {0}), {1, 2, 3, 1, 2, 3}, kRtol);
  // x [2, 2, 2] over dims {0, 2} -> g [2]: dx[i][j][k] = g[j].
  check_close(sum_dims_backward(f64({5, 7}, {2}), {2, 2, 2}, {0, 2}), {5, 5, 7, 7, 5, 5, 7, 7},
              kRtol);
}

TEST_CASE("reshape_backward: g with the input's shape, same values in order") {
  Tensor dx = reshape_backward(f64({0, 1, 2, 3, 4, 5}, {2, 3}), {3, 2});
  CHECK(dx.shape() == Shape{3, 2});
  check_close(dx, {0, 1, 2, 3, 4, 5}, kRtol);
  CHECK(reshape_backward(f64({0, 1, 2, 3, 4, 5}, {2, 3}), {6}).shape() == Shape{6});
}

TEST_CASE("concat_backward: each input gets the slice of g it filled") {
  // a [2, 1] and b [2, 2] along dim 1 -> [2, 3]; g = [1 2 3; 4 5 6]:
  // da = column 0 = [1; 4], db = columns 1..2 = [2 3; 5 6].
  Tensor a = Tensor::zeros({2, 1}, DType::f64).set_requires_grad(true);
  Tensor b = Tensor::zeros({2, 2}, DType::f64).set_requires_grad(true);
  const ConcatSaved saved = concat_layout({a, b}, 1);
  std::vector<Tensor> d = concat_backward(f64({1, 2, 3, 4, 5, 6}, {2, 3}), saved);
  REQUIRE(d.size() == 2);
  CHECK(d[0].shape() == Shape{2, 1});
  check_close(d[0], {1, 4}, kRtol);
  CHECK(d[1].shape() == Shape{2, 2});
  check_close(d[1], {2, 3, 5, 6}, kRtol);
  // Along dim 0 (-2): p [1, 2] then q [2, 2] -> [3, 2]; p gets row 0, q rows 1..2. p needs no
  // gradient, so it gets an undefined tensor.
  Tensor p = Tensor::zeros({1, 2}, DType::f64);
  Tensor q = Tensor::zeros({2, 2}, DType::f64).set_requires_grad(true);
  std::vector<Tensor> e =
      concat_backward(f64({1, 2, 3, 4, 5, 6}, {3, 2}), concat_layout({p, q}, -2));
  REQUIRE(e.size() == 2);
  CHECK_FALSE(e[0].defined());
  CHECK(e[1].shape() == Shape{2, 2});
  check_close(e[1], {3, 4, 5, 6}, kRtol);
}

TEST_CASE("matmul_backward: da = g bᵀ, db = aᵀ g") {
  Tensor a = f64({1, 2, 3, 4}, {2, 2});
  Tensor b = f64({5, 6, 7, 8}, {2, 2});
  Tensor g = f64({1, 0, 2, -1}, {2, 2});
  MatmulGrads d = matmul_backward(g, a, b, true, true);
  // bᵀ = [5 7; 6 8]: row [1 0] -> [5 7]; row [2 -1] -> [10-6, 14-8] = [4 6].
  check_close(d.da, {5, 7, 4, 6}, kRtol);
  // aᵀ = [1 3; 2 4]: row [1 3] -> [1+6, 0-3] = [7 -3]; row [2 4] -> [2+8, 0-4] = [10 -4].
  check_close(d.db, {7, -3, 10, -4}, kRtol);
  MatmulGrads only_b = matmul_backward(g, a, b, false, true);
  CHECK_FALSE(only_b.da.defined());
  check_close(only_b.db, {7, -3, 10, -4}, kRtol);
  // Non-square: a [1, 2] · b [2, 3], g [1, 3] = [1 2 3]; b = [1 0 2; 0 1 -1]:
  // da = g bᵀ = [1+0+6, 0+2-3] = [7 -1]; db = aᵀ g with a = [2 5] = [2 4 6; 5 10 15].
  MatmulGrads r = matmul_backward(f64({1, 2, 3}, {1, 3}), f64({2, 5}, {1, 2}),
                                  f64({1, 0, 2, 0, 1, -1}, {2, 3}), true, true);
  CHECK(r.da.shape() == Shape{1, 2});
  check_close(r.da, {7, -1}, kRtol);
  CHECK(r.db.shape() == Shape{2, 3});
  check_close(r.db, {2, 4, 6, 5, 10, 15}, kRtol);
}

TEST_CASE("max_pool2d_backward: overlapping windows and a tie route to the first argmax") {
  // Kernel 2, stride 1 on 4x4 -> 3x3 windows, window (i, j) covering rows i..i+1, cols j..j+1.
  //   x = | 1 5 2 0 |   window (0,0): {1 5 3 4} -> 5 at (0,1)
  //       | 3 4 5 1 |   window (0,1): {5 2 4 5} -> tie 5 at (0,1) and (1,2): the first, (0,1)
  //       | 0 2 9 6 |   window (0,2): {2 0 5 1} -> (1,2); (1,0): {3 4 0 2} -> (1,1)
  //       | 7 1 3 8 |   (1,1), (1,2), (2,1), (2,2) all -> 9 at (2,2); (2,0): {0 2 7 1} -> (3,0)
  Tensor x = f64({1, 5, 2, 0, 3, 4, 5, 1, 0, 2, 9, 6, 7, 1, 3, 8}, {1, 1, 4, 4});
  MaxPool2dSaved saved;
  max_pool2d_forward(x, 2, 1, 0, &saved);
  check_close(saved.argmax, {1, 1, 6, 5, 10, 10, 12, 10, 10}, 0);
  // g = powers of two, so every sum below is unambiguous:
  //   g = |  1   2   4 |     dx(0,1) = 1 + 2 = 3, dx(1,2) = 4, dx(1,1) = 8, dx(3,0) = 64,
  //       |  8  16  32 |     dx(2,2) = 16 + 32 + 128 + 256 = 432, every other pixel 0.
  //       | 64 128 256 |
  Tensor g = f64({1, 2, 4, 8, 16, 32, 64, 128, 256}, {1, 1, 3, 3});
  Tensor dx = max_pool2d_backward(g, saved);
  CHECK(dx.shape() == Shape{1, 1, 4, 4});
  check_close(dx, {0, 3, 0, 0, 0, 8, 4, 0, 0, 0, 432, 0, 64, 0, 0, 0}, kRtol);
}

TEST_CASE("adaptive_avg_pool2d_backward: overlapping windows of unequal size") {
  // 3 -> 2 per axis: windows [floor(0), ceil(1.5)) = rows {0, 1} and [floor(1.5), ceil(3)) =
  // rows {1, 2}; every window is 2x2 (area 4). g = [4 8; 12 16] -> g / 4 = [1 2; 3 4], added into
  // each pixel once per window containing it:
  //   dx = | 1    1+2      2   |   = | 1  3 2 |
  //        | 1+3  1+2+3+4  2+4 |     | 4 10 6 |
  //        | 3    3+4      4   |     | 3  7 4 |
  Tensor dx = adaptive_avg_pool2d_backward(f64({4, 8, 12, 16}, {1, 1, 2, 2}), {1, 1, 3, 3});
  CHECK(dx.shape() == Shape{1, 1, 3, 3});
  check_close(dx, {1, 3, 2, 4, 10, 6, 3, 7, 4}, kRtol);
  // 5 -> 3 rows (1 column): [0, ceil(5/3)=2) = {0,1}, [floor(5/3)=1, ceil(10/3)=4) = {1,2,3},
  // [floor(10/3)=3, 5) = {3,4}: areas 2, 3, 2. g = [2 3 4] -> [1 1 2] per pixel;
  // dx = [1, 1+1, 1, 1+2, 2].
  Tensor d5 = adaptive_avg_pool2d_backward(f64({2, 3, 4}, {1, 1, 3, 1}), {1, 1, 5, 1});
  check_close(d5, {1, 2, 1, 3, 2}, kRtol);
}

TEST_CASE("upsample_bilinear_backward: the transpose of the per-axis weight matrices") {
  // The map is separable: y = A x Bᵀ per plane with A [out_h, in_h], B [out_w, in_w] the
  // per-axis tap weights, so dx = Aᵀ g B.
  SUBCASE("2x2 -> 3x3, align_corners=true") {
    // src = o * (2-1)/(3-1) = 0, 0.5, 1 -> taps: o=0: 1 on 0; o=1: 0.5 on 0, 0.5 on 1;
    // o=2: 1 on 1. A = B = [1 0; 0.5 0.5; 0 1].
    // g = [1 2 3; 4 5 6; 7 8 9]; g B = [1+1, 1+3; 4+2.5, 2.5+6; 7+4, 4+9] = [2 4; 6.5 8.5; 11 13];
    // Aᵀ (g B): row 0 = r0 + 0.5 r1 = [5.25 8.25]; row 1 = 0.5 r1 + r2 = [14.25 17.25]
    // (total 45 = sum of g).
    UpsampleSaved s;
    s.out_h = 3;
    s.out_w = 3;
    s.align_corners = true;
    Tensor g = f64({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
    Tensor dx = upsample_bilinear_backward(g, {1, 1, 2, 2}, s);
    CHECK(dx.shape() == Shape{1, 1, 2, 2});
    check_close(dx, {5.25, 8.25, 14.25, 17.25}, kRtol);
  }
  SUBCASE("2x2 -> 4x4, align_corners=false") {
    // r = 2/4: src = max((o + 0.5) * 0.5 - 0.5, 0) = 0 (clamped from -0.25), 0.25, 0.75, 1.25.
    // o=0: 1 on 0; o=1: 0.75 on 0, 0.25 on 1; o=2: 0.25 on 0, 0.75 on 1; o=3: i0 = 1 and
    // i1 = min(2, 1) = 1, so both taps (0.75 and 0.25) land on 1: 1 on 1.
    // A = B = [1 0; 0.75 0.25; 0.25 0.75; 0 1].
    // g = 1..16 row-major; per row [a b c d]: (g B) = [a + .75b + .25c, .25b + .75c + d]:
    //   [3.25 6.75; 11.25 14.75; 19.25 22.75; 27.25 30.75]
    // Aᵀ: row 0 = r0 + .75 r1 + .25 r2 = [3.25 + 8.4375 + 4.8125, 6.75 + 11.0625 + 5.6875]
    //           = [16.5 23.5];
    //     row 1 = .25 r1 + .75 r2 + r3 = [2.8125 + 14.4375 + 27.25, 3.6875 + 17.0625 + 30.75]
    //           = [44.5 51.5]   (total 136 = 1 + ... + 16).
    UpsampleSaved s;
    s.out_h = 4;
    s.out_w = 4;
    s.align_corners = false;
    std::vector<double> gv(16);
    for (int i = 0; i < 16; ++i) gv[i] = i + 1;
    Tensor dx = upsample_bilinear_backward(f64(gv, {1, 1, 4, 4}), {1, 1, 2, 2}, s);
    check_close(dx, {16.5, 23.5, 44.5, 51.5}, kRtol);
  }
}

TEST_CASE("bce_with_logits_backward: dx = g * (sigmoid(x) - y) / n") {
  // sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4.
  // x = [0, ln3, -ln3, ln3], y = [1, 0, 1, 0.5]: s - y = [-0.5, 0.75, -0.75, 0.25];
  // n = 4, g = 2: dx = (s - y) / 2 = [-0.25, 0.375, -0.375, 0.125].
  const double l3 = std::log(3.0);
  Tensor x = f64({0, l3, -l3, l3}, {2, 2});
  Tensor y = f64({1, 0, 1, 0.5}, {2, 2});
  Tensor dx = bce_with_logits_backward(scalar(2), x, y);
  CHECK(dx.shape() == Shape{2, 2});
  check_close(dx, {-0.25, 0.375, -0.375, 0.125}, kRtol);
}

TEST_CASE("multilabel_soft_margin_backward: dx = g * (sigmoid(x) - y) / (N * C)") {
  // x [2, 3] = [0, ln3, -ln3; 0, 0, ln3], y = [0 1 0; 1 1 1]:
  // s = [.5 .75 .25; .5 .5 .75], s - y = [.5 -.25 .25; -.5 -.5 -.25];
  // n = N * C = 6 (not N = 2), g = 3: dx = (s - y) / 2.
  const double l3 = std::log(3.0);
  Tensor x = f64({0, l3, -l3, 0, 0, l3}, {2, 3});
  Tensor y = f64({0, 1, 0, 1, 1, 1}, {2, 3});
  Tensor dx = multilabel_soft_margin_backward(scalar(3), x, y);
  CHECK(dx.shape() == Shape{2, 3});
  check_close(dx, {0.25, -0.125, 0.125, -0.25, -0.25, -0.125}, kRtol);
}

TEST_CASE("batch_norm_backward: training and eval against the closed form in plain doubles") {
  // x [2, 1, 1, 2]: one channel with M = 4 values.
  const std::vector<double> xv = {1, 2, 4, 9}, gv = {1, -2, 0.5, 3};
  const double w = 2.0;
  Tensor x = f64(xv, {2, 1, 1, 2});
  Tensor weight = f64({w}, {1});
  Tensor bias = f64({0.5}, {1});
  Tensor g = f64(gv, {2, 1, 1, 2});

  SUBCASE("training") {
    const double eps = 1e-5;
    BatchNormSaved saved;
    batch_norm_forward(x, weight, bias, Tensor(), Tensor(), true, 0.1, eps, &saved);
    // mean = 16 / 4 = 4, var = (9 + 4 + 0 + 25) / 4 = 9.5 (biased).
    const double mean = 4.0, invstd = 1.0 / std::sqrt(9.5 + eps);
    check_close(saved.mean, {mean}, kRtol);
    check_close(saved.invstd, {invstd}, kRtol);
    double sum_g = 0, sum_gx = 0;
    std::vector<double> xhat(4);
    for (int i = 0; i < 4; ++i) {
      xhat[i] = (xv[i] - mean) * invstd;
      sum_g += gv[i];
      sum_gx += gv[i] * xhat[i];
    }
    std::vector<double> dx(4);
    for (int i = 0; i < 4; ++i)
      dx[i] = w * invstd * (gv[i] - sum_g / 4 - xhat[i] * sum_gx / 4);
    BatchNormGrads d = batch_norm_backward(g, x, weight, saved);
    CHECK(d.dx.shape() == Shape{2, 1, 1, 2});
    check_close(d.dx, dx, 1e-10);
    check_close(d.dbias, {2.5}, kRtol);  // 1 - 2 + 0.5 + 3
    check_close(d.dweight, {sum_gx}, 1e-10);
    // In training dx sums to 0 (the mean term), and sum dx * xhat = w invstd sum_gx (1 - var
    // invstd^2), as sum xhat^2 = M var invstd^2: 0 but for eps (the variance term).
    const std::vector<double> got = d.dx.to_vector();
    double s0 = 0, s1 = 0;
    for (int i = 0; i < 4; ++i) {
      s0 += got[i];
      s1 += got[i] * xhat[i];
    }
    CHECK(std::abs(s0) < 1e-12);
    CHECK(std::abs(s1 - w * invstd * sum_gx * (1 - 9.5 * invstd * invstd)) < 1e-12);
  }
  SUBCASE("eval") {
    // Running mean 1.5, var 3.99, eps 0.01: invstd = 1 / sqrt(4) = 0.5, constants.
    Tensor running_mean = f64({1.5}, {1});
    Tensor running_var = f64({3.99}, {1});
    BatchNormSaved saved;
    batch_norm_forward(x, weight, bias, running_mean, running_var, false, 0.1, 0.01, &saved);
    CHECK_FALSE(saved.training);
    BatchNormGrads d = batch_norm_backward(g, x, weight, saved);
    // dx = w * invstd * g = g (w = 2, invstd = 0.5): no mean/var terms.
    // To make w and invstd each visible, use w = 3 below as well.
    check_close(d.dx, gv, 1e-10);
    // xhat = (x - 1.5) / 2 = [-0.25, 0.25, 1.25, 3.75];
    // dweight = 1*-0.25 + -2*0.25 + 0.5*1.25 + 3*3.75 = -0.25 - 0.5 + 0.625 + 11.25 = 11.125.
    check_close(d.dweight, {11.125}, 1e-10);
    check_close(d.dbias, {2.5}, kRtol);
    BatchNormGrads d3 = batch_norm_backward(g, x, f64({3}, {1}), saved);
    check_close(d3.dx, {1.5, -3, 0.75, 4.5}, 1e-10);  // 3 * 0.5 * g
    // Affine off (weight undefined = 1): dx = 0.5 g.
    BatchNormGrads d1 = batch_norm_backward(g, x, Tensor(), saved);
    check_close(d1.dx, {0.5, -1, 0.25, 1.5}, 1e-10);
  }
}

// docs/conv2d.md's worked example: x = [1 2 3; 4 5 6; 7 8 9], w = [1 2; 0 -1], b = 1, stride 1,
// no padding -> y = [1 3; 7 9]; with dy = [1 -1; 2 0]: dW = [7 9; 13 15], db = 2,
// dx = [1 1 -2; 2 3 1; 0 -2 0] (each dy[oy][ox] stamps dy * w onto its window; the stamps add).
namespace {
struct ConvExample {
  Tensor x = f64({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w = f64({1, 2, 0, -1}, {1, 1, 2, 2});
  Tensor b = f64({1}, {1});
  Tensor dy = f64({1, -1, 2, 0}, {1, 1, 2, 2});
};
}  // namespace

TEST_CASE("conv2d_backward_input: dx of the docs/conv2d.md example") {
  ConvExample e;
  check_close(conv2d_forward(e.x, e.w, e.b), {1, 3, 7, 9}, kRtol);
  Tensor dx = conv2d_backward_input(e.dy, e.w, {1, 1, 3, 3});
  CHECK(dx.shape() == Shape{1, 1, 3, 3});
  // Stamps: 1*w at (0,0), -1*w at (0,1), 2*w at (1,0): e.g. dx[1][1] = -1 + 0 + 4 + 0 = 3.
  check_close(dx, {1, 1, -2, 2, 3, 1, 0, -2, 0}, kRtol);
  // Padding 1 on a 1x1 input x = [3], w = [1 2; 3 4] -> 2x2 output, output (oy, ox) reads x
  // through tap (1 - oy, 1 - ox); dy = [1 2; 3 4]: dx = 1*4 + 2*3 + 3*2 + 4*1 = 20.
  Conv2dOptions pad1;
  pad1.padding = 1;
  Tensor dxp = conv2d_backward_input(f64({1, 2, 3, 4}, {1, 1, 2, 2}),
                                     f64({1, 2, 3, 4}, {1, 1, 2, 2}), {1, 1, 1, 1}, pad1);
  check_close(dxp, {20}, kRtol);
}

TEST_CASE("conv2d_backward_weight: dW of the docs/conv2d.md example") {
  ConvExample e;
  Tensor dw = conv2d_backward_weight(e.dy, e.x, {1, 1, 2, 2});
  CHECK(dw.shape() == Shape{1, 1, 2, 2});
  // dW[ki][kj] = sum dy[oy][ox] x[oy+ki][ox+kj]: (0,0): 1 - 2 + 8 = 7; (0,1): 2 - 3 + 10 = 9;
  // (1,0): 4 - 5 + 14 = 13; (1,1): 5 - 6 + 16 = 15.
  check_close(dw, {7, 9, 13, 15}, kRtol);
  // The padded case above: dW[ki][kj] = dy[1-ki][1-kj] * 3 = [12 9; 6 3].
  Conv2dOptions pad1;
  pad1.padding = 1;
  Tensor dwp = conv2d_backward_weight(f64({1, 2, 3, 4}, {1, 1, 2, 2}), f64({3}, {1, 1, 1, 1}),
                                      {1, 1, 2, 2}, pad1);
  check_close(dwp, {12, 9, 6, 3}, kRtol);
}

TEST_CASE("conv2d_backward_bias: db = dy summed over batch and pixels") {
  ConvExample e;
  Tensor db = conv2d_backward_bias(e.dy);
  CHECK(db.shape() == Shape{1});
  check_close(db, {2}, kRtol);  // 1 - 1 + 2 + 0
  // Two images, two output channels: dy [2, 2, 1, 2]; channel 0 gets 1+2 + 5+6 = 14,
  // channel 1 gets 3+4 + 7+8 = 22.
  check_close(conv2d_backward_bias(f64({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 1, 2})), {14, 22}, kRtol);
}
