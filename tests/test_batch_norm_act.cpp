// The fused batch-norm epilogue, batch_norm_act = relu(batch_norm(x) + residual), against the
// three ops it replaces (batch_norm, add, relu, each with its own kernels): bit for bit on the
// CPU in both float types, in training and eval, for every epilogue; its batched cotangents
// against one backward per cotangent; CUDA against the CPU. Its finite-difference checks are in
// the gradcheck registry (op "batch_norm_act").
#include <random>

#include "helpers.h"
#include "tensor/autograd.h"
#include "tensor/ops.h"

using namespace prm;

namespace {

struct Run {
  std::vector<double> y, dx, dweight, dbias, dres, running_mean, running_var;
};

struct Case {
  Shape shape;
  bool residual, relu, training;
};

// Fresh inputs from a seed: x, weight, bias, running_mean, running_var, residual, upstream g.
std::vector<Tensor> make_inputs(const Case& c, DType dt, Device dev, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t C = c.shape[1];
  return {Tensor::randn(c.shape, rng, dt).to(dev),
          Tensor::uniform({C}, 0.5, 1.5, rng, dt).to(dev),
          Tensor::randn({C}, rng, dt).to(dev),
          Tensor::randn({C}, rng, dt).to(dev),
          Tensor::uniform({C}, 0.5, 2.0, rng, dt).to(dev),
          Tensor::randn(c.shape, rng, dt).to(dev),
          Tensor::randn(c.shape, rng, dt).to(dev)};
}

// fused: batch_norm_act; else the three ops. Every input is a fresh leaf.
Run run(const Case& c, DType dt, Device dev, bool fused) {
  std::vector<Tensor> in = make_inputs(c, dt, dev, 77);
  for (int i : {0, 1, 2, 5}) in[i].set_requires_grad(true);
  const Tensor residual = c.residual ? in[5] : Tensor();
  Tensor y;
  if (fused) {
    y = batch_norm_act(in[0], in[1], in[2], in[3], in[4], c.training, {residual, c.relu});
  } else {
    y = batch_norm(in[0], in[1], in[2], in[3], in[4], c.training);
    if (c.residual) y = add(y, residual);
    if (c.relu) y = relu(y);
  }
  y.backward(in[6]);
  Run r{y.to_vector(),
        in[0].grad().to_vector(),
        in[1].grad().to_vector(),
        in[2].grad().to_vector(),
        {},
        in[3].to_vector(),
        in[4].to_vector()};
  if (c.residual) r.dres = in[5].grad().to_vector();
  return r;
}

void check_same(const Run& a, const Run& b, double tol) {
  auto same = [tol](const std::vector<double>& u, const std::vector<double>& v, const char* what) {
    INFO(std::string(what));
    if (tol == 0) {
      REQUIRE(u.size() == v.size());
      size_t differ = 0, first = 0;
      for (size_t i = u.size(); i-- > 0;) {
        if (u[i] != v[i] && !(std::isnan(u[i]) && std::isnan(v[i]))) differ++, first = i;
      }
      CHECK_MESSAGE(differ == 0, differ << " elements differ, first " << first << ": "
                                        << (differ ? u[first] : 0) << " vs "
                                        << (differ ? v[first] : 0));
    } else {
      check_close(u, v, tol, tol);
    }
  };
  same(a.y, b.y, "y");
  same(a.dx, b.dx, "dx");
  same(a.dweight, b.dweight, "dweight");
  same(a.dbias, b.dbias, "dbias");
  same(a.dres, b.dres, "dresidual");
  same(a.running_mean, b.running_mean, "running_mean");
  same(a.running_var, b.running_var, "running_var");
}

const Case kCases[] = {
    {{3, 5, 4, 7}, true, true, true},  {{3, 5, 4, 7}, false, true, true},
    {{3, 5, 4, 7}, true, false, true}, {{3, 5, 4, 7}, false, false, true},
    {{2, 6, 5, 3}, true, true, false}, {{2, 6, 5, 3}, false, true, false},
    {{4, 3, 1, 1}, true, true, true},  {{2, 33, 9, 11}, true, true, true},
};

}  // namespace

TEST_CASE("batch_norm_act: the same numbers as batch_norm, add and relu, bit for bit") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Case& c : kCases) {
      CAPTURE(std::string(dtype_name(dt)));
      CAPTURE(shape_str(c.shape));
      CAPTURE(c.residual);
      CAPTURE(c.relu);
      CAPTURE(c.training);
      check_same(run(c, dt, Device::cpu, true), run(c, dt, Device::cpu, false), 0.0);
    }
  }
}

TEST_CASE("batch_norm_act: the ReLU gates the gradient of x, weight, bias and the residual") {
  // Hand-checkable: one channel, eval mode, mean 0, var 1 - eps (invstd 1), weight 2, bias 0:
  // y = relu(2 x + r). With x = {1, -1, 0.5, -0.25} and r = {0, 1, -2, 1}: z = {2, -1, -1, 0.5},
  // so the gate is {1, 0, 0, 1}; g = {1, 1, 1, 1} gives dx = 2 * gate, dres = gate,
  // dweight = sum gate * x = 1 - 0.25, dbias = sum gate = 2.
  const double eps = 1e-5;
  Tensor x = Tensor::from_vector({1, -1, 0.5, -0.25}, {1, 1, 2, 2}, DType::f64);
  Tensor r = Tensor::from_vector({0, 1, -2, 1}, {1, 1, 2, 2}, DType::f64);
  Tensor w = Tensor::from_vector({2}, {1}, DType::f64), b = Tensor::zeros({1}, DType::f64);
  for (Tensor* t : {&x, &r, &w, &b}) t->set_requires_grad(true);
  const Tensor rm = Tensor::zeros({1}, DType::f64);
  const Tensor rv = Tensor::from_vector({1 - eps}, {1}, DType::f64);
  const Tensor y = batch_norm_act(x, w, b, rm, rv, false, {r, true}, 0.1, eps);
  check_close(y, {2, 0, 0, 0.5}, 1e-12, 1e-12);
  y.backward(Tensor::full({1, 1, 2, 2}, 1.0, DType::f64));
  check_close(x.grad(), {2, 0, 0, 2}, 1e-12, 1e-12);
  check_close(r.grad(), {1, 0, 0, 1}, 1e-12, 1e-12);
  check_close(w.grad(), {0.75}, 1e-12, 1e-12);
  check_close(b.grad(), {2}, 1e-12, 1e-12);
}

TEST_CASE("batch_norm_act: K batched cotangents give what K separate backwards give") {
  // Peak back-propagation's path: eval mode, batch 1, parameters frozen; the gradients of x and
  // the residual carry K cotangents as their batch.
  const int64_t K = 5;
  const Shape shape{1, 4, 3, 5}, batched{K, 4, 3, 5};
  std::mt19937_64 rng(5);
  const Tensor x0 = Tensor::randn(shape, rng, DType::f64);
  const Tensor r0 = Tensor::randn(shape, rng, DType::f64);
  const Tensor w = Tensor::uniform({4}, 0.5, 1.5, rng, DType::f64);
  const Tensor b = Tensor::randn({4}, rng, DType::f64);
  const Tensor rm = Tensor::randn({4}, rng, DType::f64);
  const Tensor rv = Tensor::uniform({4}, 0.5, 2.0, rng, DType::f64);
  const Tensor seeds = Tensor::randn(batched, rng, DType::f64);
  for (bool residual : {true, false}) {
    CAPTURE(residual);
    Tensor x = x0.clone().set_requires_grad(true), r = r0.clone().set_requires_grad(true);
    const Tensor y = batch_norm_act(x, w, b, rm, rv, false, {residual ? r : Tensor(), true});
    {
      BatchedCotangents scope(K);
      run_backward(y, seeds, false);
    }
    REQUIRE(x.grad().shape() == batched);
    const std::vector<double> dx = x.grad().to_vector();
    const std::vector<double> dres = residual ? r.grad().to_vector() : std::vector<double>();
    const int64_t per = shape_numel(shape);
    for (int64_t k = 0; k < K; ++k) {
      CAPTURE(k);
      Tensor xk = x0.clone().set_requires_grad(true), rk = r0.clone().set_requires_grad(true);
      const Tensor yk = batch_norm_act(xk, w, b, rm, rv, false, {residual ? rk : Tensor(), true});
      const std::vector<double> all = seeds.to_vector();
      yk.backward(Tensor::from_vector(
          std::vector<double>(all.begin() + k * per, all.begin() + (k + 1) * per), shape,
          DType::f64));
      const std::vector<double> want = xk.grad().to_vector();
      check_close(std::vector<double>(dx.begin() + k * per, dx.begin() + (k + 1) * per), want,
                  1e-14, 1e-14);
      if (residual) {
        const std::vector<double> want_r = rk.grad().to_vector();
        check_close(std::vector<double>(dres.begin() + k * per, dres.begin() + (k + 1) * per),
                    want_r, 1e-14, 1e-14);
      }
    }
  }
}

TEST_CASE("batch_norm_act: a residual of another shape, dtype or device is refused by name") {
  std::mt19937_64 rng(1);
  const Tensor x = Tensor::randn({2, 3, 4, 4}, rng);
  const Tensor rm = Tensor::zeros({3}), rv = Tensor::full({3}, 1.0);
  CHECK_THROWS_WITH_AS(
      batch_norm_act(x, Tensor(), Tensor(), rm, rv, true, {Tensor::zeros({2, 3, 4, 5}), true}),
      doctest::Contains("batch_norm: the residual is"), Error);
  CHECK_THROWS_WITH_AS(batch_norm_act(x, Tensor(), Tensor(), rm, rv, true,
                                      {Tensor::zeros({2, 3, 4, 4}, DType::f64), true}),
                       doctest::Contains("expected the input's"), Error);
}

namespace {

// Float32 activations with mean 1e5 and spread 1e-2 (channel 1 starts with an outlier 1e3 spreads
// away), [3, 2, 17, 19]: several blocks per plane. momentum 1 makes the running buffers the batch
// mean and the unbiased variance. Reference: two passes over the same floats in long double.
void check_stats_on_hard_data(Device dev) {
  const Shape shape{3, 2, 17, 19};
  const int64_t HW = 17 * 19, M = 3 * HW;
  std::mt19937_64 rng(9);
  std::normal_distribution<double> spread(0.0, 1e-2);
  std::vector<double> v(shape_numel(shape));
  for (double& x : v) x = static_cast<double>(static_cast<float>(1e5 + spread(rng)));
  v[1 * HW] = static_cast<double>(static_cast<float>(1e5 + 10.0));
  const Tensor x = Tensor::from_vector(v, shape, DType::f32, dev);
  const Tensor rm = Tensor::zeros({2}, DType::f32, dev), rv = Tensor::zeros({2}, DType::f32, dev);
  batch_norm_forward(x, Tensor(), Tensor(), rm, rv, true, 1.0, 1e-5, nullptr);
  const std::vector<double> got_mean = rm.to_vector(), got_var = rv.to_vector();
  for (int64_t c = 0; c < 2; ++c) {
    CAPTURE(c);
    long double sum = 0, sq = 0;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t j = 0; j < HW; ++j) sum += v[(n * 2 + c) * HW + j];
    const long double mean = sum / M;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t j = 0; j < HW; ++j) {
        const long double d = v[(n * 2 + c) * HW + j] - mean;
        sq += d * d;
      }
    const double want_var = static_cast<double>(sq / (M - 1));
    CHECK(got_mean[c] == doctest::Approx(static_cast<double>(mean)).epsilon(1e-7));
    // E[x^2] - mean^2 in double would be off by about 1e-16 * 1e10 = 1e-6 here, 1% of var.
    CHECK(got_var[c] == doctest::Approx(want_var).epsilon(1e-6));
  }
}

}  // namespace

TEST_CASE("batch_norm statistics: one pass, as exact as two on a large mean and small spread") {
  check_stats_on_hard_data(Device::cpu);
}

#if PRM_USE_CUDA
TEST_SUITE("cuda") {
  TEST_CASE("batch_norm statistics cuda: one pass, as exact as two on a large mean") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    check_stats_on_hard_data(Device::cuda);
  }

  TEST_CASE("batch_norm_act cuda: matches the CPU for every epilogue") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    for (const Case& c : kCases) {
      CAPTURE(shape_str(c.shape));
      CAPTURE(c.residual);
      CAPTURE(c.relu);
      CAPTURE(c.training);
      // float64 on both: the sums are formed in another order (block tree against a loop), and
      // nvcc contracts a * b + c into FMAs, so agreement is to a few units in the last place.
      check_same(run(c, DType::f64, Device::cuda, true), run(c, DType::f64, Device::cpu, true),
                 1e-12);
    }
  }
}
#endif

TEST_CASE("batch_norm_act: a weight wanting its gradient gets it when the bias does not") {
  // The node asks batch_norm_backward for the per-channel sums when either parameter wants a
  // gradient. Weight alone, then bias alone: each gets what both together get.
  std::mt19937_64 rng(21);
  const Tensor x0 = Tensor::randn({2, 3, 4, 5}, rng, DType::f64);
  const Tensor w0 = Tensor::randn({3}, rng, DType::f64), b0 = Tensor::randn({3}, rng, DType::f64);
  const Tensor seed = Tensor::randn({2, 3, 4, 5}, rng, DType::f64);
  auto grads = [&](bool want_w, bool want_b) {
    Tensor x = x0.detach().set_requires_grad(true);
    Tensor w = w0.clone().set_requires_grad(want_w), b = b0.clone().set_requires_grad(want_b);
    Tensor y = batch_norm_act(x, w, b, Tensor(), Tensor(), true, BatchNormEpilogue{Tensor(), true});
    run_backward(y, seed, false);
    return std::pair<Tensor, Tensor>{want_w ? w.grad() : Tensor(), want_b ? b.grad() : Tensor()};
  };
  const auto both = grads(true, true);
  const auto weight_only = grads(true, false);
  const auto bias_only = grads(false, true);
  REQUIRE(weight_only.first.defined());
  REQUIRE(bias_only.second.defined());
  CHECK(weight_only.first.to_vector() == both.first.to_vector());
  CHECK(bias_only.second.to_vector() == both.second.to_vector());
}
