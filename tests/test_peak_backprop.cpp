// Peak back-propagation (prm/peak_backprop.h) and its excitation rule (conv2d.h):
// hand-computed conv cases, the batched pass against the one-by-one loop, and a PyTorch fixture
// of the official method (tools/fixtures/make_prm_fixtures.py: peaks, scores and PRMs in float64).
#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "data/npy.h"
#include "helpers.h"
#include "layers/resnet.h"
#include "prm/peak_backprop.h"
#include "prm/weights.h"
#include "tensor/ops.h"

using namespace prm;

namespace {

const char* kFixtures = "tests/fixtures/prm/";

std::unique_ptr<ResNet> fixture_net(DType dtype, Device device) {
  ResNetOptions options;
  options.arch = "resnet18";
  options.width = 4;
  options.num_classes = 3;
  auto net = std::make_unique<ResNet>(options);
  load_resnet_weights(*net, std::string(kFixtures) + "weights.safetensors", false);
  net->to(dtype);
  net->to(device);
  return net;
}

}  // namespace

TEST_CASE("excitation rule: a hand-computed 2x2 window conserves the gradient") {
  // U = [[-1, 0], [1, 2]]: offset -1, Û = [[0, 1], [2, 3]]. W = [[1, -2], [0.5, 1]]:
  // W+ = [[1, 0], [0.5, 1]]. Z = 0*1 + 1*0 + 2*0.5 + 3*1 = 4; G = 2, so G / Z = 0.5 spreads as
  // 0.5 * W+ = [[0.5, 0], [0.25, 0.5]], and grad_U = Û * that = [[0, 0], [0.5, 1.5]] (sum 2 = G).
  Tensor u = Tensor::from_vector({-1, 0, 1, 2}, {1, 1, 2, 2}, DType::f64);
  Tensor w = Tensor::from_vector({1, -2, 0.5, 1}, {1, 1, 2, 2}, DType::f64);
  Tensor g = Tensor::from_vector({2}, {1, 1, 1, 1}, DType::f64);
  check_close(conv2d_backward_input_excitation(g, u, w), {0, 0, 0.5, 1.5}, 1e-9, 1e-12);
}

TEST_CASE("excitation rule: Z < 1e-10 passes nothing; K cotangents at once") {
  // U = [-1, -1, 5] (1x3), W = [1, 1] (1x2): Û = [0, 0, 6]; Z = [0 + 0, 0 + 6] = [0, 6].
  // G = [3, 4]: the first output has Z = 0 and passes nothing; the second sends 4/6 to taps 1
  // and 2: spread [0, 2/3, 2/3], grad_U = Û * spread = [0, 0, 4].
  Tensor u = Tensor::from_vector({-1, -1, 5}, {1, 1, 1, 3}, DType::f64);
  Tensor w = Tensor::from_vector({1, 1}, {1, 1, 1, 2}, DType::f64);
  check_close(conv2d_backward_input_excitation(
                  Tensor::from_vector({3, 4}, {1, 1, 1, 2}, DType::f64), u, w),
              {0, 0, 4}, 1e-9, 1e-12);
  // Two cotangents [3, 4] and [1, 0] in one call: the second gives [0, 0, 0].
  Tensor gk = Tensor::from_vector({3, 4, 1, 0}, {2, 1, 1, 2}, DType::f64);
  check_close(conv2d_backward_input_excitation(gk, u, w), {0, 0, 4, 0, 0, 0}, 1e-9, 1e-12);
}

TEST_CASE("excitation override: conv2d's node uses the rule only in the pass given it") {
  Tensor w = Tensor::from_vector({1, 1}, {1, 1, 1, 2}, DType::f64);
  const Tensor seed = Tensor::from_vector({3, 4}, {1, 1, 1, 2}, DType::f64);
  auto input_grad = [&](bool excitation) {
    Tensor u = Tensor::from_vector({-1, -1, 5}, {1, 1, 1, 3}, DType::f64).set_requires_grad(true);
    Tensor y = conv2d(u, w, Tensor());
    run_backward(y, seed, false, nullptr, nullptr,
                 excitation ? excitation_backprop_overrides() : BackwardOverrides{});
    return u.grad().to_vector();
  };
  check_close(input_grad(true), {0, 0, 4}, 1e-9, 1e-12);
  check_close(input_grad(false), {3, 7, 4}, 0, 0);  // the true gradient: G * W, overlapping
  check_close(input_grad(true), {0, 0, 4}, 1e-9, 1e-12);  // no state left between passes
  // An op that keeps no saved state cannot be overridden.
  Tensor a = Tensor::from_vector({1, 2}, {2}, DType::f64).set_requires_grad(true);
  BackwardOverrides bad{{"relu", [](const std::any&, const Tensor& g) {
                           return std::vector<Tensor>{g};
                         }}};
  CHECK_THROWS_WITH_AS(run_backward(relu(a), Tensor::from_vector({1, 1}, {2}, DType::f64), false,
                                    nullptr, nullptr, bad),
                       doctest::Contains("cannot be overridden"), Error);
}

TEST_CASE("peak back-propagation matches the PyTorch re-implementation of the official method") {
  auto net_ptr = fixture_net(DType::f64, Device::cpu);
  ResNet& net = *net_ptr;
  Tensor image = load_npy(std::string(kFixtures) + "input.npy");
  PeakBackpropOptions opts;
  opts.peak_threshold = load_npy(std::string(kFixtures) + "threshold.npy").item();
  const Tensor peaks = load_npy(std::string(kFixtures) + "peaks.npy");
  const std::vector<double> expected_prms = load_npy(std::string(kFixtures) + "prms.npy").to_vector();
  for (bool batched : {true, false}) {
    CAPTURE(batched);
    opts.batched = batched;
    PeakResponse r = peak_response_maps(net, image, opts);
    check_close(r.scores, load_npy(std::string(kFixtures) + "scores.npy").to_vector(), 1e-5,
                1e-10);
    const std::vector<int64_t> rows = peak_rows(r.peaks);
    std::vector<double> got_peaks(rows.begin(), rows.end());
    REQUIRE(r.count() == peaks.size(0));
    check_close(got_peaks, peaks.to_vector(), 0, 0);
    CHECK(r.prms.shape() == Shape{r.count(), 96, 96});
    check_close(r.prms.to_vector(), expected_prms, 1e-5, 1e-10);
  }
}

TEST_CASE("batched and one-by-one peak back-propagation agree; PRMs sum to 1") {
  auto net_ptr = fixture_net(DType::f64, Device::cpu);
  ResNet& net = *net_ptr;
  std::mt19937_64 rng(8);
  Tensor image = Tensor::randn({1, 3, 70, 83}, rng, DType::f64);
  PeakBackpropOptions opts;
  opts.peak_threshold = -1e9;
  opts.class_threshold = -1e9;  // every kept peak of every class
  PeakResponse batched = peak_response_maps(net, image, opts);
  opts.batched = false;
  PeakResponse single = peak_response_maps(net, image, opts);
  REQUIRE(batched.count() >= 3);
  CHECK(peak_rows(batched.peaks) == peak_rows(single.peaks));
  check_close(batched.prms.to_vector(), single.prms.to_vector(), 1e-6, 1e-12);
  const std::vector<double> v = batched.prms.to_vector();
  const int64_t HW = 70 * 83;
  for (int64_t k = 0; k < batched.count(); ++k) {
    double total = 0, lowest = 0;
    for (int64_t i = 0; i < HW; ++i) total += v[k * HW + i], lowest = std::min(lowest, v[k * HW + i]);
    CHECK(total == doctest::Approx(1.0).epsilon(1e-9));
    CHECK(lowest >= 0);
  }
  // The parameters require grad again afterwards.
  for (const Tensor& p : net.parameters()) CHECK(p.requires_grad());
}

TEST_CASE("peak back-propagation with no peak above the threshold gives no maps") {
  auto net_ptr = fixture_net(DType::f64, Device::cpu);
  ResNet& net = *net_ptr;
  Tensor image = load_npy(std::string(kFixtures) + "input.npy");
  PeakBackpropOptions opts;
  opts.peak_threshold = 1e9;
  PeakResponse r = peak_response_maps(net, image, opts);
  CHECK(r.count() == 0);
  CHECK(r.prms.shape() == Shape{0, 96, 96});
  CHECK(r.scores.shape() == Shape{1, 3});
  CHECK_THROWS_WITH_AS(peak_response_maps(net, Tensor::zeros({2, 3, 8, 8}, DType::f64)),
                       doctest::Contains("image must be [1, 3, H, W]"), Error);
}

TEST_SUITE("cuda") {
  TEST_CASE("peak back-propagation on cuda matches the cpu (batched and one by one)") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    Tensor image = load_npy(std::string(kFixtures) + "input.npy");
    PeakBackpropOptions opts;
    opts.peak_threshold = load_npy(std::string(kFixtures) + "threshold.npy").item();
    for (DType dt : {DType::f64, DType::f32}) {
      auto cpu_net = fixture_net(dt, Device::cpu), gpu_net = fixture_net(dt, Device::cuda);
      for (bool batched : {true, false}) {
        opts.batched = batched;
        PeakResponse c = peak_response_maps(*cpu_net, image.to(dt), opts);
        PeakResponse g = peak_response_maps(*gpu_net, image.to(dt).to(Device::cuda), opts);
        CHECK(peak_rows(c.peaks) == peak_rows(g.peaks));
        const double tol = dt == DType::f64 ? 1e-9 : 2e-4;
        check_close(g.prms.to_vector(), c.prms.to_vector(), tol, tol * 1e-3);
      }
    }
  }
}

TEST_CASE("PRMs keep only the positive part of the input gradient") {
  // With every batch-norm weight positive (the fixture) the excitation rule gives a non-negative
  // input gradient and the clamp does nothing. Flipping the sign of half of the stem's BN
  // weights makes the gradient reaching the image mixed in sign: the PRMs must still be >= 0,
  // and sum to 1.
  auto net_ptr = fixture_net(DType::f64, Device::cpu);
  ResNet& net = *net_ptr;
  Tensor w = net.state_dict().at("bn1.weight");
  std::vector<double> v = w.to_vector();
  for (size_t c = 0; c < v.size(); c += 2) v[c] = -v[c];
  w.copy_(Tensor::from_vector(v, w.shape(), DType::f64));
  PeakBackpropOptions opts;
  opts.peak_threshold = -1e9;
  opts.class_threshold = -1e9;
  PeakResponse r = peak_response_maps(net, load_npy(std::string(kFixtures) + "input.npy"), opts);
  REQUIRE(r.count() > 0);
  // The raw input gradient of the first peak has both signs (so the clamp is exercised).
  {
    FrozenParameters frozen(net);
    PeakGraph g = peak_forward(net, load_npy(std::string(kFixtures) + "input.npy"), opts);
    Tensor seed = Tensor::zeros(g.crm_graph.shape(), DType::f64);
    std::vector<double> s = seed.to_vector();
    const Peak& p = g.response.peaks.at(0);
    s[(p.c * seed.size(2) + p.y) * seed.size(3) + p.x] = 1;
    run_backward(g.crm_graph, Tensor::from_vector(s, seed.shape(), DType::f64), false, nullptr,
                 nullptr, excitation_backprop_overrides());
    const std::vector<double> grad = sum(g.input.grad(), {1}).to_vector();
    CHECK(*std::min_element(grad.begin(), grad.end()) < 0);
    CHECK(*std::max_element(grad.begin(), grad.end()) > 0);
  }
  const std::vector<double> maps = r.prms.to_vector();
  const int64_t HW = 96 * 96;
  for (int64_t k = 0; k < r.count(); ++k) {
    double total = 0, lowest = 0;
    for (int64_t i = 0; i < HW; ++i) total += maps[k * HW + i], lowest = std::min(lowest, maps[k * HW + i]);
    CHECK(lowest >= 0);
    CHECK(total == doctest::Approx(1.0).epsilon(1e-9));
  }
}

TEST_CASE("batched peak back-propagation: the batch norms' deferred scales change no bit") {
  // excitation_backprop_overrides(root) moves each eval-mode batch norm's per-channel scale
  // into the excitation rule of the conv2d that feeds it; the input gradient of K batched seeds
  // must be bit for bit what the plain rule (excitation_backprop_overrides()) gives. Two nets,
  // the fixture (width 4) and a random one (width 16), at sizes where the stem's convolution
  // takes one GEMM per image (the scale rides on the GEMM's packing of the cotangents) and the
  // deeper ones merge the K images into one GEMM (the scale rides on the copy into it); batch-norm
  // weights of both signs, and running statistics that are not 0 and 1.
  for (DType dt : {DType::f64, DType::f32}) {
    for (int variant = 0; variant < 2; ++variant) {
      CAPTURE(variant);
      std::mt19937_64 rng(40 + variant);
      std::unique_ptr<ResNet> net_ptr;
      Tensor image;
      if (variant == 0) {
        net_ptr = fixture_net(dt, Device::cpu);
        image = load_npy(std::string(kFixtures) + "input.npy").to(dt);
      } else {
        ResNetOptions options;
        options.arch = "resnet18";
        options.width = 16;
        options.num_classes = 3;
        options.seed = 5;
        net_ptr = std::make_unique<ResNet>(options);
        net_ptr->to(dt);
        image = Tensor::randn({1, 3, 112, 104}, rng, dt);
      }
      ResNet& net = *net_ptr;
      std::uniform_real_distribution<double> u(0.5, 2.0);
      for (auto& [name, t] : net.state_dict()) {
        if (name.find("running_var") == std::string::npos) continue;
        const std::string base = name.substr(0, name.size() - std::string("running_var").size());
        std::vector<double> var(static_cast<size_t>(t.numel())), mean(var.size()), w(var.size());
        for (size_t c = 0; c < var.size(); ++c) {
          var[c] = u(rng);
          mean[c] = u(rng) - 1.25;
          w[c] = (c % 3 == 1 ? -1 : 1) * u(rng);
        }
        t.copy_(Tensor::from_vector(var, t.shape(), dt));
        net.state_dict().at(base + "running_mean").copy_(Tensor::from_vector(mean, t.shape(), dt));
        net.state_dict().at(base + "weight").copy_(Tensor::from_vector(w, t.shape(), dt));
      }
      PeakBackpropOptions opts;
      opts.peak_threshold = -1e9;
      opts.class_threshold = -1e9;
      opts.max_peaks = 4;
      FrozenParameters frozen(net);
      PeakGraph g = peak_forward(net, image, opts);
      const int64_t K = g.response.count();
      REQUIRE(K >= 2);
      const Tensor& crm = g.crm_graph;
      const int64_t C = crm.size(1), H = crm.size(2), W = crm.size(3);
      std::vector<double> seeds(static_cast<size_t>(K * C * H * W), 0.0);
      for (int64_t k = 0; k < K; ++k) {
        const Peak& p = g.response.peaks[k];
        seeds[((k * C + p.c) * H + p.y) * W + p.x] = 1.0;
      }
      const Tensor seed = Tensor::from_vector(seeds, {K, C, H, W}, dt);
      BatchedCotangents cotangents(K);
      run_backward(crm, seed, /*retain_graph=*/true, nullptr, nullptr,
                   excitation_backprop_overrides(crm));
      const std::vector<double> deferred = g.input.grad().to_vector();
      g.input.impl().grad = nullptr;
      run_backward(crm, seed, false, nullptr, nullptr, excitation_backprop_overrides());
      const std::vector<double> plain = g.input.grad().to_vector();
      REQUIRE(deferred.size() == plain.size());
      CHECK(deferred == plain);
      CHECK(*std::max_element(plain.begin(), plain.end()) > 0);
    }
  }
}
