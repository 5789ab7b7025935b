// The elementwise, reduction, shape and loss ops against hand-computed values, naive loops
// written here, and numbers computed by PyTorch (the expression is given next to each).
#include <numeric>

#include "helpers.h"
#include "tensor/autograd.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/loss.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/shape.h"

using namespace prm;

namespace {

template <typename T>
Tensor make(const std::vector<double>& v, const Shape& shape, Device device = Device::cpu) {
  return Tensor::from_vector(v, shape, dtype_of<T>::value, device);
}

// 0, 1, 2, ... in the given shape.
template <typename T>
Tensor iota(const Shape& shape, Device device = Device::cpu) {
  std::vector<double> v(shape_numel(shape));
  std::iota(v.begin(), v.end(), 0.0);
  return make<T>(v, shape, device);
}

// Tolerance for a dtype: float32 results are compared at float32 precision.
template <typename T>
double rtol() { return sizeof(T) == 4 ? 1e-6 : 1e-12; }

}  // namespace

TEST_CASE_TEMPLATE("binary ops broadcast as NumPy", T, float, double) {
  // [2,1,3] + [2,1] -> [2,2,3]: out[i][j][k] = a[i][0][k] + b[j][0].
  Tensor a = make<T>({1, 2, 3, 4, 5, 6}, {2, 1, 3});
  Tensor b = make<T>({10, 20}, {2, 1});
  Tensor c = add(a, b);
  CHECK(c.shape() == Shape{2, 2, 3});
  check_close(c, {11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26}, rtol<T>());
  // Per-channel [N,C,H,W] * [C,1,1] with N=2, C=2, H=1, W=2.
  Tensor x = make<T>({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 1, 2});
  Tensor s = make<T>({10, -1}, {2, 1, 1});
  check_close(mul(x, s), {10, 20, -3, -4, 50, 60, -7, -8}, rtol<T>());
  // [3] against [2,3] on either side.
  Tensor row = make<T>({1, 2, 4}, {3});
  Tensor m = make<T>({2, 4, 8, 3, 6, 12}, {2, 3});
  check_close(sub(m, row), {1, 2, 4, 2, 4, 8}, rtol<T>());
  check_close(sub(row, m), {-1, -2, -4, -2, -4, -8}, rtol<T>());
  check_close(div(m, row), {2, 2, 2, 3, 3, 3}, rtol<T>());
  // A 0-dim tensor broadcasts to anything.
  check_close(mul(Tensor::full({}, 3.0, dtype_of<T>::value), row), {3, 6, 12}, rtol<T>());
}

TEST_CASE("broadcasting over tensors large enough to run in parallel matches a naive loop") {
  // [4,1,17,1] + [33,1,19] -> [4,33,17,19] (42636 elements: the parallel row-by-row path), and
  // the network's per-channel pattern [4,33,17,19] * [33,1,1]; backward of the sum to [33,1,19].
  std::mt19937_64 rng(9);
  const int64_t N = 4, C = 33, H = 17, W = 19;
  Tensor a = Tensor::randn({N, 1, H, 1}, rng, DType::f64);
  Tensor b = Tensor::randn({C, 1, W}, rng, DType::f64).set_requires_grad(true);
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  std::vector<double> expected;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) expected.push_back(va[n * H + h] + vb[c * W + w]);
  Tensor s = add(a, b);
  CHECK(s.shape() == Shape{N, C, H, W});
  check_close(s, expected, 1e-15);
  Tensor scale = Tensor::randn({C, 1, 1}, rng, DType::f64);
  const std::vector<double> vs = scale.to_vector();
  std::vector<double> scaled = expected;
  for (size_t i = 0; i < scaled.size(); ++i) scaled[i] *= vs[(i / (H * W)) % C];
  check_close(mul(s, scale), scaled, 1e-15);
  // d sum(a + b) / db[c][0][w] = N * H (every b element was used N * H times).
  sum(s).backward();
  check_close(b.grad(), std::vector<double>(C * W, N * H));
}

TEST_CASE("scalar ops, operators, relu and sigmoid") {
  Tensor x = make<double>({-2, -0.5, 0, 1, 3}, {5});
  check_close(add_scalar(x, 1.5), {-0.5, 1, 1.5, 2.5, 4.5});
  check_close(mul_scalar(x, -2), {4, 1, 0, -2, -6});
  check_close(pow_scalar(x, 2), {4, 0.25, 0, 1, 9});
  check_close(pow_scalar(make<double>({4, 9}, {2}), 0.5), {2, 3});
  check_close(relu(x), {0, 0, 0, 1, 3});
  // sigmoid(x) = 1/(1+exp(-x)), written out; also far into both tails, where it must not
  // overflow to NaN.
  std::vector<double> expected;
  for (double v : x.to_vector()) expected.push_back(1 / (1 + std::exp(-v)));
  check_close(sigmoid(x), expected, 1e-14);
  check_close(sigmoid(make<float>({-200, 200}, {2})), {0, 1}, 0, 1e-30);
  Tensor y = make<double>({1, 2, 4, 8, 16}, {5});
  check_close(x + y, {-1, 1.5, 4, 9, 19});
  check_close(x - y, {-3, -2.5, -4, -7, -13});
  check_close(x * y, {-2, -1, 0, 8, 48});
  check_close(x / y, {-2, -0.25, 0, 0.125, 0.1875});
  check_close(1.0 - x, {3, 1.5, 1, 0, -2});
  check_close(8.0 / y, {8, 4, 2, 1, 0.5});
  check_close(-x * 2.0 + 1.0, {5, 2, 1, -1, -5});
  check_close(y / 2.0 - 1.0, {-0.5, 0, 1, 3, 7});
}

TEST_CASE("backward of broadcasting sums the gradient back to each input's shape") {
  // L = sum(a * b), a [2,3], b [3]: dL/da[i][j] = b[j], dL/db[j] = sum_i a[i][j].
  Tensor a = make<double>({1, 2, 3, 4, 5, 6}, {2, 3}).set_requires_grad(true);
  Tensor b = make<double>({10, 20, 30}, {3}).set_requires_grad(true);
  sum(a * b).backward();
  check_close(a.grad(), {10, 20, 30, 10, 20, 30});
  check_close(b.grad(), {5, 7, 9});
  // L = sum(a / c - c), c [2,1]: dL/dc[i] = -sum_j a[i][j] / c[i]^2 - 3.
  a.zero_grad();
  Tensor c = make<double>({2, 4}, {2, 1}).set_requires_grad(true);
  sum(a / c - c).backward();
  check_close(a.grad(), {0.5, 0.5, 0.5, 0.25, 0.25, 0.25});
  check_close(c.grad(), {-6.0 / 4 - 3, -15.0 / 16 - 3});
  // relu's gradient is 0 at the kink, as torch.
  Tensor r = make<double>({-1, 0, 2}, {3}).set_requires_grad(true);
  sum(relu(r)).backward();
  check_close(r.grad(), {0, 0, 1});
}

TEST_CASE_TEMPLATE("sum and mean over dims match a naive loop", T, float, double) {
  const Shape shape{3, 5, 7, 2};
  Tensor x = iota<T>(shape);
  const std::vector<double> v = x.to_vector();
  auto at = [&](int64_t i, int64_t j, int64_t k, int64_t l) {
    return v[((i * 5 + j) * 7 + k) * 2 + l];
  };
  // sum over dims {0, 2} -> [5, 2]
  std::vector<double> expected(10, 0.0);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 5; ++j)
      for (int64_t k = 0; k < 7; ++k)
        for (int64_t l = 0; l < 2; ++l) expected[j * 2 + l] += at(i, j, k, l);
  Tensor s = sum(x, {0, 2});
  CHECK(s.shape() == Shape{5, 2});
  check_close(s, expected, rtol<T>());
  Tensor sk = sum(x, {2, 0}, /*keepdim=*/true);
  CHECK(sk.shape() == Shape{1, 5, 1, 2});
  check_close(sk, expected, rtol<T>());
  std::vector<double> expected_mean = expected;
  for (double& e : expected_mean) e /= 21;
  check_close(mean(x, {0, -2}), expected_mean, rtol<T>());
  // sum over the last dim, keepdim -> [3, 5, 7, 1]
  std::vector<double> last;
  for (size_t i = 0; i < v.size(); i += 2) last.push_back(v[i] + v[i + 1]);
  Tensor sl = sum(x, {-1}, true);
  CHECK(sl.shape() == Shape{3, 5, 7, 1});
  check_close(sl, last, rtol<T>());
  // every element: n (n - 1) / 2; an empty dim list also means every dim
  const double n = static_cast<double>(x.numel());
  Tensor all = sum(x);
  CHECK(all.shape() == Shape{});
  CHECK(all.item() == doctest::Approx(n * (n - 1) / 2));
  CHECK(sum(x, {}).item() == doctest::Approx(n * (n - 1) / 2));
  CHECK(mean(x).item() == doctest::Approx((n - 1) / 2));
}

TEST_CASE("sum of many float32 elements keeps its precision (chunked, double accumulation)") {
  // 1e6 values of 0.1f summed naively in float drift by ~1e-3 relative; the kernel is exact to
  // float rounding of the final result.
  const int64_t n = 1000003;
  Tensor x = Tensor::full({n}, 0.1, DType::f32);
  const double expected = n * static_cast<double>(0.1f);
  CHECK(sum(x).item() == doctest::Approx(expected).epsilon(1e-7));
  CHECK(sum(x, {0}).item() == doctest::Approx(expected).epsilon(1e-7));
}

TEST_CASE("sum backward broadcasts the gradient over the summed dims") {
  Tensor x = iota<double>({2, 3}).set_requires_grad(true);
  Tensor s = sum(x, {1});  // [2]
  s.backward(make<double>({1, 10}, {2}));
  check_close(x.grad(), {1, 1, 1, 10, 10, 10});
  x.zero_grad();
  mean(x, {0}, true).backward(make<double>({2, 4, 6}, {1, 3}));
  check_close(x.grad(), {1, 2, 3, 1, 2, 3});
}

TEST_CASE("reshape is a view; -1 is inferred") {
  Tensor x = iota<float>({2, 3, 4});
  Tensor v = reshape(x, {4, -1});
  CHECK(v.shape() == Shape{4, 6});
  CHECK(v.raw_data() == x.raw_data());
  v.fill_(7);  // writes through the view are seen by x
  CHECK(x.to_vector()[23] == 7);
  CHECK(reshape(x, {-1}).shape() == Shape{24});
  CHECK(reshape(Tensor::zeros({0, 3}), {-1, 3}).shape() == Shape{0, 3});
  CHECK_THROWS_WITH_AS(reshape(x, {5, -1}), doctest::Contains("reshape: cannot view [2, 3, 4]"),
                       Error);
  CHECK_THROWS_WITH_AS(reshape(x, {-1, -1}), doctest::Contains("more than one -1"), Error);
  CHECK_THROWS_WITH_AS(reshape(x, {5, 5}), doctest::Contains("[5, 5]"), Error);
  // The gradient comes back in the input's shape.
  Tensor leaf = iota<double>({2, 3}).set_requires_grad(true);
  reshape(leaf, {3, 2}).backward(iota<double>({3, 2}));
  CHECK(leaf.grad().shape() == Shape{2, 3});
  check_close(leaf.grad(), {0, 1, 2, 3, 4, 5});
}

TEST_CASE("concat along dim 0 and 1, and its backward") {
  Tensor a = make<double>({1, 2, 3, 4}, {2, 2}).set_requires_grad(true);
  Tensor b = make<double>({5, 6}, {1, 2}).set_requires_grad(true);
  Tensor c0 = concat({a, b}, 0);
  CHECK(c0.shape() == Shape{3, 2});
  check_close(c0, {1, 2, 3, 4, 5, 6});
  Tensor d = make<double>({7, 8, 9, 10, 11, 12}, {2, 3});
  Tensor c1 = concat({a, d}, -1);
  CHECK(c1.shape() == Shape{2, 5});
  check_close(c1, {1, 2, 7, 8, 9, 3, 4, 10, 11, 12});
  c0.backward(iota<double>({3, 2}));
  check_close(a.grad(), {0, 1, 2, 3});
  check_close(b.grad(), {4, 5});
  a.zero_grad();
  c1.backward(iota<double>({2, 5}));
  check_close(a.grad(), {0, 1, 5, 6});
  CHECK_THROWS_WITH_AS(concat({a, d}, 0),
                       doctest::Contains("concat: tensor 1 of shape [2, 3] does not match "
                                         "tensor 0 of shape [2, 2]"),
                       Error);
  CHECK_THROWS_WITH_AS(concat({a, b}, 2), doctest::Contains("dim 2 out of range"), Error);
  CHECK_THROWS_AS(concat({}, 0), Error);
}

TEST_CASE("errors name the op and the shapes") {
  Tensor a = Tensor::zeros({2, 3});
  Tensor b = Tensor::zeros({4});
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add: shapes [2, 3] and [4]"), Error);
  CHECK_THROWS_WITH_AS(mul(a, b), doctest::Contains("mul: shapes [2, 3] and [4]"), Error);
  CHECK_THROWS_WITH_AS(div(b, a), doctest::Contains("div: shapes [4] and [2, 3]"), Error);
  CHECK_THROWS_WITH_AS(sub(a, Tensor::zeros({2, 3}, DType::f64)),
                       doctest::Contains("sub: dtype mismatch"), Error);
  CHECK_THROWS_WITH_AS(sum(a, {2}), doctest::Contains("sum: dim 2 out of range for shape [2, 3]"),
                       Error);
  CHECK_THROWS_WITH_AS(mean(a, {1, -1}), doctest::Contains("mean: dim -1 given twice"), Error);
  CHECK_THROWS_WITH_AS(relu(Tensor::zeros({2}, DType::i64)), doctest::Contains("relu"), Error);
  CHECK_THROWS_WITH_AS(expand(a, {3, 3}), doctest::Contains("expand: cannot expand shape [2, 3]"),
                       Error);
  CHECK_THROWS_WITH_AS(bce_with_logits(a, b),
                       doctest::Contains("bce_with_logits: logits [2, 3] and targets [4]"), Error);
  CHECK_THROWS_WITH_AS(multilabel_soft_margin(Tensor::zeros({6}), Tensor::zeros({6})),
                       doctest::Contains("multilabel_soft_margin"), Error);
}

TEST_CASE_TEMPLATE("losses match torch", T, float, double) {
  // torch.nn.MultiLabelSoftMarginLoss()(x, y) and F.binary_cross_entropy_with_logits(x, y) with
  // x = [[1.5, -0.3, 2.0], [-1.2, 0.0, 4.0]], y = [[1, 0, 1], [0, 1, 0]] (float64): both
  // 0.9762126848850065; x.grad after .backward() below.
  Tensor x = make<T>({1.5, -0.3, 2.0, -1.2, 0.0, 4.0}, {2, 3}).set_requires_grad(true);
  Tensor y = make<T>({1, 0, 1, 0, 1, 0}, {2, 3});
  const std::vector<double> torch_grad = {-0.030404253968, 0.070926247198, -0.019867153670,
                                          0.038579202750,  -0.083333333333, 0.163668965006};
  Tensor loss = multilabel_soft_margin(x, y);
  CHECK(loss.shape() == Shape{});
  CHECK(loss.item() == doctest::Approx(0.9762126848850065).epsilon(rtol<T>() * 10));
  loss.backward();
  check_close(x.grad(), torch_grad, 1e-6, 1e-10);
  x.zero_grad();
  Tensor bce = bce_with_logits(x, y);
  CHECK(bce.item() == doctest::Approx(0.9762126848850065).epsilon(rtol<T>() * 10));
  bce.backward();
  check_close(x.grad(), torch_grad, 1e-6, 1e-10);

  // Extreme logits must not overflow: F.binary_cross_entropy_with_logits(
  //   torch.tensor([50., -60., 30., -0.5]), torch.tensor([0., 1., 1., 0.25])) = 27.64976924604505
  // (float64), gradient [0.25, -0.25, -2.337e-14, 0.03188516719954].
  Tensor big = make<T>({50, -60, 30, -0.5}, {4}).set_requires_grad(true);
  Tensor soft = make<T>({0, 1, 1, 0.25}, {4});
  Tensor l = bce_with_logits(big, soft);
  CHECK(l.item() == doctest::Approx(27.64976924604505).epsilon(rtol<T>() * 10));
  l.backward();
  check_close(big.grad(), {0.25, -0.25, -2.337019466836e-14, 0.03188516719954}, 1e-6, 1e-9);
}

TEST_CASE("targets get no gradient from the losses") {
  Tensor x = make<double>({0.5, -1}, {1, 2}).set_requires_grad(true);
  Tensor y = make<double>({1, 0}, {1, 2}).set_requires_grad(true);
  multilabel_soft_margin(x, y).backward();
  CHECK(x.grad().defined());
  CHECK_FALSE(y.grad().defined());
}

TEST_SUITE("cuda") {
  TEST_CASE_TEMPLATE("cuda elementwise and reductions match the cpu", T, float, double) {
    PRM_REQUIRE_CUDA_OR_SKIP();
    std::mt19937_64 rng(3);
    Tensor a = Tensor::randn({3, 37, 9, 11}, rng, dtype_of<T>::value);
    Tensor b = Tensor::randn({37, 1, 1}, rng, dtype_of<T>::value);
    Tensor ga = a.to(Device::cuda), gb = b.to(Device::cuda);
    const double tol = sizeof(T) == 4 ? 1e-5 : 1e-12;
    check_close(mul(ga, gb), mul(a, b).to_vector(), tol, tol);
    check_close(div(ga, add_scalar(gb, 10.0)), div(a, add_scalar(b, 10.0)).to_vector(), tol, tol);
    check_close(sum(ga, {0, 2, 3}), sum(a, {0, 2, 3}).to_vector(), tol, tol);
    check_close(sum(ga, {1}, true), sum(a, {1}, true).to_vector(), tol, tol);
    check_close(concat({ga, ga}, 1), concat({a, a}, 1).to_vector(), tol, tol);
    check_close(sigmoid(ga), sigmoid(a).to_vector(), tol, tol);
    // The all-elements sum takes the shared-memory path: many blocks, a grid-stride share
    // per thread (n > 256 threads * 1024 blocks), then one block over the partials.
    for (int64_t n : {1, 255, 257, 100000, 3000001}) {
      CAPTURE(n);
      Tensor x = Tensor::uniform({n}, -1, 1, rng, dtype_of<T>::value);
      const std::vector<double> v = x.to_vector();
      double expected = 0;
      for (double e : v) expected += e;
      CHECK(sum(x.to(Device::cuda)).item() ==
            doctest::Approx(expected).epsilon(tol).scale(static_cast<double>(n)));
    }
  }

  TEST_CASE("cuda losses and their gradients match the cpu") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    std::mt19937_64 rng(5);
    Tensor x = mul_scalar(Tensor::randn({16, 20}, rng), 5.0);
    Tensor y = Tensor::uniform({16, 20}, 0, 1, rng);
    Tensor xc = x.detach().set_requires_grad(true);
    Tensor xg = x.to(Device::cuda).detach().set_requires_grad(true);
    Tensor lc = multilabel_soft_margin(xc, y);
    Tensor lg = multilabel_soft_margin(xg, y.to(Device::cuda));
    CHECK(lg.item() == doctest::Approx(lc.item()).epsilon(1e-6));
    lc.backward();
    lg.backward();
    check_close(xg.grad(), xc.grad().to_vector(), 1e-5, 1e-8);
  }
}

TEST_CASE("narrow: a slice along any dim, its gradient back in place (also K batched cotangents)") {
  using namespace prm;
  // x[i][j][k] = 100 i + 10 j + k, shape [2, 4, 3]; the slice j in [1, 3).
  std::vector<double> v;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 3; ++k) v.push_back(100 * i + 10 * j + k);
  const Tensor x = Tensor::from_vector(v, {2, 4, 3}, DType::f64).set_requires_grad(true);
  const Tensor y = narrow(x, 1, 1, 2);
  CHECK(y.shape() == Shape{2, 2, 3});
  CHECK(y.to_vector() == std::vector<double>{10, 11, 12, 20, 21, 22, 110, 111, 112, 120, 121, 122});
  CHECK(narrow(x, -1, 2, 1).to_vector() == std::vector<double>{2, 12, 22, 32, 102, 112, 122, 132});
  CHECK(narrow(x, 0, 1, 1).to_vector() ==
        std::vector<double>(v.begin() + 12, v.end()));  // the second row
  // dx: g in the slice, zeros elsewhere.
  std::vector<double> g(12);
  for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<double>(i + 1);
  run_backward(y, Tensor::from_vector(g, {2, 2, 3}, DType::f64), false);
  std::vector<double> expected(24, 0.0);
  for (int i = 0; i < 2; ++i)
    for (int j = 1; j < 3; ++j)
      for (int k = 0; k < 3; ++k) expected[(i * 4 + j) * 3 + k] = g[(i * 2 + (j - 1)) * 3 + k];
  CHECK(x.grad().to_vector() == expected);
  // K = 2 cotangents of a batch-1 input: each lands in its own copy of x's shape.
  const NarrowSaved s = narrow_layout(Tensor::zeros({1, 4, 3}, DType::f64), 1, 2, 2);
  BatchedCotangents batched(2);
  std::vector<double> gk(12);
  for (size_t i = 0; i < gk.size(); ++i) gk[i] = static_cast<double>(i + 1);
  const Tensor dx = narrow_backward(Tensor::from_vector(gk, {2, 2, 3}, DType::f64), s);
  CHECK(dx.shape() == Shape{2, 4, 3});
  std::vector<double> ek(24, 0.0);
  for (int kk = 0; kk < 2; ++kk)
    for (int j = 2; j < 4; ++j)
      for (int k = 0; k < 3; ++k) ek[(kk * 4 + j) * 3 + k] = gk[(kk * 2 + (j - 2)) * 3 + k];
  CHECK(dx.to_vector() == ek);
  CHECK_THROWS_WITH_AS(narrow(x, 1, 3, 2), doctest::Contains("is not inside dim 1"), Error);
  CHECK_THROWS_WITH_AS(narrow(x, 3, 0, 1), doctest::Contains("out of range"), Error);
}
