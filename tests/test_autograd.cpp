// The autograd engine on hand-made nodes, so these tests depend on no op under test:
// "scale(k)" multiplies by k and its backward multiplies the gradient by k.
#include "helpers.h"
#include "tensor/autograd.h"

using namespace prm;

namespace {

Tensor scale(const Tensor& x, double k) {
  std::vector<double> v = x.to_vector();
  for (double& e : v) e *= k;
  Tensor out = Tensor::from_vector(v, x.shape(), x.dtype(), x.device());
  attach_grad_fn(out, "scale", "scale", {x}, [k](const Tensor& g) {
    std::vector<double> gv = g.to_vector();
    for (double& e : gv) e *= k;
    return std::vector<Tensor>{Tensor::from_vector(gv, g.shape(), g.dtype(), g.device())};
  });
  return out;
}

// out = a + b elementwise, with a node of two inputs.
Tensor plus(const Tensor& a, const Tensor& b) {
  std::vector<double> va = a.to_vector(), vb = b.to_vector();
  for (size_t i = 0; i < va.size(); ++i) va[i] += vb[i];
  Tensor out = Tensor::from_vector(va, a.shape(), a.dtype(), a.device());
  attach_grad_fn(out, "plus", "plus", {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
  return out;
}

}  // namespace

TEST_CASE("tensor basics") {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  CHECK(t.numel() == 6);
  CHECK(t.size(-1) == 3);
  CHECK(t.shape_str() == "[2, 3]");
  CHECK(t.to(DType::f32).to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(Tensor::full({2}, 2.5).to_vector() == std::vector<double>{2.5, 2.5});
  Tensor c = t.clone();
  c.fill_(0);
  CHECK(t.to_vector()[5] == 6);  // clone does not share storage
  Tensor d = t.detach();
  d.fill_(1);
  CHECK(t.to_vector()[5] == 1);  // detach does
  CHECK_THROWS_WITH_AS(Tensor::zeros({2}).item(), doctest::Contains("2 elements"), Error);
  CHECK_THROWS_AS(t.data<float>(), Error);
}

TEST_CASE("backward through a diamond sums both paths") {
  Tensor x = Tensor::from_vector({1, 2}, {2}, DType::f64).set_requires_grad(true);
  Tensor y = plus(scale(x, 2), scale(x, 5));  // dy/dx = 7
  y.backward(Tensor::full({2}, 1.0, DType::f64));
  CHECK(x.grad().to_vector() == std::vector<double>{7, 7});
}

TEST_CASE("leaf gradients accumulate across backward calls; retain_graph") {
  Tensor x = Tensor::from_vector({3}, {1}, DType::f64).set_requires_grad(true);
  Tensor y = scale(scale(x, 2), 3);
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  CHECK(x.grad().item() == 12);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("already freed"), Error);
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("non-scalar backward needs a gradient of the output's shape") {
  Tensor x = Tensor::from_vector({1, 2, 3}, {3}, DType::f64).set_requires_grad(true);
  Tensor y = scale(x, 2);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("non-scalar"), Error);
  CHECK_THROWS_WITH_AS(y.backward(Tensor::zeros({2}, DType::f64)), doctest::Contains("[2]"),
                       Error);
  y.backward(Tensor::from_vector({1, 0, -1}, {3}, DType::f64));
  CHECK(x.grad().to_vector() == std::vector<double>{2, 0, -2});
}

TEST_CASE("no-grad scope, detach and requires_grad") {
  Tensor x = Tensor::from_vector({1}, {1}, DType::f64).set_requires_grad(true);
  {
    NoGradGuard guard;
    CHECK_FALSE(scale(x, 2).requires_grad());
  }
  CHECK(scale(x, 2).requires_grad());
  CHECK_FALSE(scale(x.detach(), 2).requires_grad());
  Tensor plain = Tensor::zeros({1}, DType::f64);
  CHECK_FALSE(scale(plain, 2).requires_grad());
  CHECK_THROWS_AS(plain.backward(), Error);
  CHECK_THROWS_AS(scale(x, 2).set_requires_grad(true), Error);  // not a leaf
}

TEST_CASE("gradient flows through dtype conversion and clone") {
  Tensor x = Tensor::from_vector({1, 2}, {2}, DType::f64).set_requires_grad(true);
  Tensor y = scale(x.to(DType::f32).clone(), 4).to(DType::f64);
  y.backward(Tensor::full({2}, 1.0, DType::f64));
  CHECK(x.grad().dtype() == DType::f64);
  CHECK(x.grad().to_vector() == std::vector<double>{4, 4});
}

TEST_SUITE("cuda") {
  TEST_CASE("tensor round trip and gradient across devices") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    Tensor x = Tensor::from_vector({1, 2, 3}, {3}, DType::f32).set_requires_grad(true);
    Tensor y = scale(x.to(Device::cuda), 3).to(Device::cpu);
    CHECK(y.to_vector() == std::vector<double>{3, 6, 9});
    y.backward(Tensor::full({3}, 1.0));
    CHECK(x.grad().to_vector() == std::vector<double>{3, 3, 3});
    Tensor z = Tensor::full({1000}, 2.0, DType::f64, Device::cuda);
    CHECK(z.to_vector()[999] == 2.0);
    CHECK(cuda_memory_stats().allocated_bytes > 0);
  }
}

TEST_CASE("two gradients meeting at a node are summed into fresh storage, not into either") {
  // plus(x2, x2) hands the same gradient g to both edges of x2 = scale(x, 1): the two meet at x2
  // and their sum must not be written into g, which is also the caller's seed (and, in a wider
  // graph, another node's gradient). x's gradient is 2 * seed, and the seed stays as it was.
  Tensor x = Tensor::from_vector({1, 2}, {2}, DType::f64).set_requires_grad(true);
  Tensor x2 = scale(x, 1);
  Tensor y = plus(x2, x2);
  const Tensor seed = Tensor::from_vector({3, 4}, {2}, DType::f64);
  y.backward(seed);
  CHECK(x.grad().to_vector() == std::vector<double>{6, 8});
  CHECK(seed.to_vector() == std::vector<double>{3, 4});
}

TEST_CASE("a leaf's .grad shares storage with nothing: not the seed, not another leaf's") {
  // scale's backward makes a fresh tensor that only the engine holds.
  Tensor x = Tensor::from_vector({1, 2}, {2}, DType::f64).set_requires_grad(true);
  scale(x, 3).backward(Tensor::from_vector({1, 1}, {2}, DType::f64));
  CHECK(x.grad().to_vector() == std::vector<double>{3, 3});
  // Shared: plus hands its grad_output (the caller's seed) to both leaves a and b, the same
  // tensor twice. Each leaf gets its own copy: the seed, and the other leaf's gradient, stay as
  // they were when one leaf's gradient is accumulated into or written.
  Tensor a = Tensor::from_vector({1, 2}, {2}, DType::f64).set_requires_grad(true);
  Tensor b = Tensor::from_vector({5, 6}, {2}, DType::f64).set_requires_grad(true);
  const Tensor seed = Tensor::from_vector({3, 4}, {2}, DType::f64);
  plus(a, b).backward(seed, /*retain_graph=*/false);
  CHECK(a.grad().to_vector() == std::vector<double>{3, 4});
  CHECK(b.grad().to_vector() == std::vector<double>{3, 4});
  a.grad().fill_(9);
  CHECK(b.grad().to_vector() == std::vector<double>{3, 4});
  CHECK(seed.to_vector() == std::vector<double>{3, 4});
  // A leaf as the root: the seed is the caller's, so .grad is a copy of it.
  Tensor r = Tensor::from_vector({1, 1}, {2}, DType::f64).set_requires_grad(true);
  Tensor s = Tensor::from_vector({7, 8}, {2}, DType::f64);
  r.backward(s);
  s.fill_(0);
  CHECK(r.grad().to_vector() == std::vector<double>{7, 8});
}

TEST_CASE("gradients meeting at a node: summed over a fresh one in place, the shared left alone") {
  // x2 = scale(x, 1) gets 2g and 3g from two scale nodes, both made by their backwards and held
  // by nothing else: their sum may overwrite one of them. x's gradient is 5 * seed; the seed,
  // which plus hands to both of its inputs, is not written.
  Tensor x = Tensor::from_vector({1, 2}, {2}, DType::f64).set_requires_grad(true);
  Tensor x2 = scale(x, 1);
  Tensor y = plus(scale(x2, 2), scale(x2, 3));
  const Tensor seed = Tensor::from_vector({3, 4}, {2}, DType::f64);
  y.backward(seed);
  CHECK(x.grad().to_vector() == std::vector<double>{15, 20});
  CHECK(seed.to_vector() == std::vector<double>{3, 4});
}
