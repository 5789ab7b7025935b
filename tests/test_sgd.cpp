// SGD against steps computed by hand (the torch.optim.SGD rule written out in the comments), and
// the CUDA update kernel against the CPU one.
#include <cstring>
#include <random>

#include "helpers.h"
#include "kernels/sgd.h"
#include "layers/sgd.h"

using namespace prm;

namespace {

Tensor param(std::vector<double> v, DType dt = DType::f64) {
  Tensor p = Tensor::from_vector(v, {static_cast<int64_t>(v.size())}, dt);
  p.set_requires_grad(true);
  return p;
}

void set_grad(Tensor& p, std::vector<double> g) {
  p.set_grad(Tensor::from_vector(g, p.shape(), p.dtype(), p.device()));
}

}  // namespace

TEST_CASE("sgd: momentum and weight decay, two steps by hand") {
  // lr 0.1, momentum 0.9, weight decay 0.01, p = [1, -2], g = [0.5, 1] at both steps.
  // Step 1: d = g + 0.01 p = [0.51, 0.98]; buf = d; p = p - 0.1 d = [0.949, -2.098].
  // Step 2: d = [0.5 + 0.00949, 1 - 0.02098] = [0.50949, 0.97902];
  //         buf = 0.9 [0.51, 0.98] + d = [0.96849, 1.86102]; p = [0.852151, -2.284102].
  for (DType dt : {DType::f64, DType::f32}) {
    Tensor p = param({1, -2}, dt);
    SGD opt({p}, SGDOptions{0.1, 0.9, 0.0, 0.01, false});
    set_grad(p, {0.5, 1});
    opt.step();
    const double tol = dt == DType::f64 ? 1e-14 : 1e-6;
    check_close(p, {0.949, -2.098}, tol, 0);
    check_close(opt.momentum_buffer(0, 0), {0.51, 0.98}, tol, 0);
    set_grad(p, {0.5, 1});
    opt.step();
    check_close(p, {0.852151, -2.284102}, tol, 0);
    check_close(opt.momentum_buffer(0, 0), {0.96849, 1.86102}, tol, 0);
    CHECK(p.is_leaf());
    CHECK(p.requires_grad());
  }
}

TEST_CASE("sgd: parameter groups, skipped parameters, plain SGD") {
  // No momentum: p = p - lr * mult * g. Backbone group at lr 0.2 * 0.1, classifier at 0.2.
  Tensor backbone = param({1, 1});
  Tensor head = param({3});
  Tensor frozen = param({5});  // never gets a gradient: untouched
  SGD opt({ParamGroup{"features", {backbone, frozen}, 0.1}, ParamGroup{"classifier", {head}, 1.0}},
          SGDOptions{0.2, 0, 0, 0, false});
  set_grad(backbone, {1, -4});
  set_grad(head, {2});
  opt.step();
  check_close(backbone, {1 - 0.02, 1 + 0.08}, 1e-14, 0);
  check_close(head, {3 - 0.4}, 1e-14, 0);
  check_close(frozen, {5}, 0, 0);
  opt.zero_grad();
  CHECK_FALSE(backbone.grad().defined());
  opt.step();  // no gradients: nothing moves
  check_close(head, {2.6}, 1e-14, 0);
  opt.set_lr(0.1);
  CHECK(opt.lr() == 0.1);
}

TEST_CASE("sgd: dampening and nesterov") {
  // Dampening 0.5, momentum 0.5, lr 1, g = 2 then 4, p0 = 0:
  //   step 1: buf = 2 (no dampening on the first step); p = -2
  //   step 2: buf = 0.5 * 2 + 0.5 * 4 = 3; p = -5
  Tensor p = param({0});
  SGD damp({p}, SGDOptions{1, 0.5, 0.5, 0, false});
  set_grad(p, {2});
  damp.step();
  check_close(p, {-2}, 1e-15, 0);
  set_grad(p, {4});
  damp.step();
  check_close(p, {-5}, 1e-15, 0);
  // Nesterov, momentum 0.5, lr 1, g = 2 then 4, p0 = 0:
  //   step 1: buf = 2; d = 2 + 0.5 * 2 = 3; p = -3
  //   step 2: buf = 0.5 * 2 + 4 = 5; d = 4 + 0.5 * 5 = 6.5; p = -9.5
  Tensor q = param({0});
  SGD nesterov({q}, SGDOptions{1, 0.5, 0, 0, true});
  set_grad(q, {2});
  nesterov.step();
  check_close(q, {-3}, 1e-15, 0);
  set_grad(q, {4});
  nesterov.step();
  check_close(q, {-9.5}, 1e-15, 0);
}

TEST_CASE("sgd: a long parameter, every setting, three steps: torch's rule in a plain loop, bit "
          "for bit") {
  // 10007 values: several of the CPU kernel's blocks of 4096 and a tail that is no whole vector.
  // The expected values come from torch 1.13's _single_tensor_sgd rule written out below in the
  // parameter's own type, operation by operation (the build does not contract to FMAs).
  const int64_t n = 10007;
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> p0(n), grads[3];
  for (float& v : p0) v = u(rng);
  for (auto& g : grads) {
    g.resize(n);
    for (float& v : g) v = u(rng);
  }
  struct Setting {
    double momentum, dampening, weight_decay;
    bool nesterov;
  };
  for (const Setting& st : {Setting{0.9, 0.0, 1e-4, false}, Setting{0.9, 0.0, 0.0, true},
                            Setting{0.0, 0.0, 5e-4, false}, Setting{0.5, 0.25, 1e-3, false},
                            Setting{0.5, 0.0, 1e-3, true}}) {
    CAPTURE(st.momentum);
    CAPTURE(st.nesterov);
    const float lr = 0.05f, mom = static_cast<float>(st.momentum),
                damp = static_cast<float>(st.dampening), wd = static_cast<float>(st.weight_decay);
    std::vector<float> want = p0, buf(n);
    Tensor p = Tensor::from_vector(std::vector<double>(p0.begin(), p0.end()), {n}, DType::f32);
    p.set_requires_grad(true);
    SGD opt({p}, SGDOptions{0.05, st.momentum, st.dampening, st.weight_decay, st.nesterov});
    for (int step = 0; step < 3; ++step) {
      for (int64_t i = 0; i < n; ++i) {
        float d = grads[step][i];
        if (wd != 0.0f) d = d + wd * want[i];
        if (mom != 0.0f) {
          buf[i] = step == 0 ? d : mom * buf[i] + (1.0f - damp) * d;
          d = st.nesterov ? d + mom * buf[i] : buf[i];
        }
        want[i] = want[i] - lr * d;
      }
      p.set_grad(Tensor::from_vector(std::vector<double>(grads[step].begin(), grads[step].end()),
                                     {n}, DType::f32));
      opt.step();
    }
    const float* got = p.data<float>();
    int64_t differ = 0;
    for (int64_t i = 0; i < n; ++i) differ += std::memcmp(&got[i], &want[i], sizeof(float)) != 0;
    CHECK(differ == 0);
  }
}

TEST_CASE("sgd: bad arguments") {
  Tensor p = param({1});
  CHECK_THROWS_AS(SGD({p}, SGDOptions{-1, 0, 0, 0, false}), Error);
  CHECK_THROWS_AS(SGD({p}, SGDOptions{0.1, 0, 0, 0, true}), Error);
  Tensor not_trainable = Tensor::zeros({1});
  CHECK_THROWS_AS(SGD({not_trainable}, SGDOptions{}), Error);
  SGD opt({p}, SGDOptions{});
  p.set_grad(Tensor::zeros({2}, DType::f64));
  CHECK_THROWS_WITH_AS(opt.step(), doctest::Contains("does not match"), Error);
}

TEST_SUITE("cuda") {
  TEST_CASE("sgd: the CUDA update kernel matches the CPU one") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    std::mt19937_64 rng(7);
    const int64_t n = 1000003;
    Tensor p = Tensor::randn({n}, rng), g = Tensor::randn({n}, rng), b = Tensor::randn({n}, rng);
    for (bool first : {true, false}) {
      SgdHyper<float> h{0.1f, 0.9f, 0.1f, 1e-4f, false, first};
      Tensor pc = p.clone(), bc = b.clone();
      Tensor pg = p.to(Device::cuda), bg = b.to(Device::cuda), gg = g.to(Device::cuda);
      launch<SgdStep, float>(Device::cpu, pc.data<float>(), bc.data<float>(), g.data<float>(), n, h);
      launch<SgdStep, float>(Device::cuda, pg.data<float>(), bg.data<float>(), gg.data<float>(), n,
                             h);
      // The kernel is the same math on both devices; nvcc contracts p - lr * d into an FMA (one
      // rounding) where g++ (-std=c++17: no contraction) rounds twice. The difference is about
      // one ulp of the OPERANDS (|p| ~ 1: 1.2e-7), not of the result, which can be small after
      // cancellation: the H200 run failed at p = -0.00213486 vs -0.00213476 (1e-7 apart, 5e-5
      // relative). So the absolute tolerance is a few operand ulps: 1e-6.
      check_close(pg.to_vector(), pc.to_vector(), 1e-6, 1e-6);
      check_close(bg.to_vector(), bc.to_vector(), 1e-6, 1e-7);
    }
    // Through the optimizer, parameters on the GPU.
    Tensor q = p.to(Device::cuda).detach();
    q.set_requires_grad(true);
    Tensor qc = p.clone().detach();
    qc.set_requires_grad(true);
    SGD og({q}, SGDOptions{0.1, 0.9, 0, 1e-4, false}),
        oc({qc}, SGDOptions{0.1, 0.9, 0, 1e-4, false});
    for (int s = 0; s < 2; ++s) {
      q.set_grad(g.to(Device::cuda));
      qc.set_grad(g.clone());
      og.step();
      oc.step();
    }
    check_close(q.to_vector(), qc.to_vector(), 1e-6, 1e-7);
  }
}
