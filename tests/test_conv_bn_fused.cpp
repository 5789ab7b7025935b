// conv2d_batch_norm_eval_forward (tensor/ops/conv2d.h): inference's convolution with the eval-mode
// batch norm, residual add and ReLU applied to each block of the output as the CPU GEMM finishes
// it (cpu::GemmEpilogue). It must give bit for bit what conv2d_forward then batch_norm_forward
// give: 1x1 (the GEMM on x itself) and k x k windows (implicit im2col), strides 1 and 2, K over
// several of the GEMM's K slices (the epilogue must wait for the last), ragged M and N, batch 1
// and 3, each part of the epilogue on and off, float and double, on each instruction-set path the
// CPU has (the epilogue has an AVX-512 build of its own, taken on that path). And a whole ResNet's inference
// forward (which takes this path) must equal its graph-recording forward (which does not).
#include <random>
#include <vector>

#include "cpu_paths.h"
#include "helpers.h"
#include "layers/resnet.h"
#include "tensor/autograd.h"
#include "tensor/ops/batch_norm.h"
#include "tensor/ops/conv2d.h"

using namespace prm;

namespace {

struct Case {
  int64_t N, C, H, W, O, k, stride, pad;
};

Tensor positive(const Shape& shape, std::mt19937_64& rng, DType dt) {
  std::uniform_real_distribution<double> u(0.3, 2.0);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) x = u(rng);
  return Tensor::from_vector(v, shape, dt);
}

void check_case(const Case& c, DType dt, int variant) {
  CAPTURE(c.C);
  CAPTURE(c.H);
  CAPTURE(c.O);
  CAPTURE(c.k);
  CAPTURE(c.stride);
  CAPTURE(variant);
  std::mt19937_64 rng(static_cast<uint64_t>(c.C * 100 + c.k * 10 + variant));
  Conv2dOptions opt;
  opt.stride = c.stride;
  opt.padding = c.pad;
  const Tensor x = Tensor::randn({c.N, c.C, c.H, c.W}, rng, dt);
  const Tensor w = Tensor::randn({c.O, c.C, c.k, c.k}, rng, dt);
  const bool affine = variant != 1;
  const Tensor gamma = affine ? Tensor::randn({c.O}, rng, dt) : Tensor();
  const Tensor beta = affine ? Tensor::randn({c.O}, rng, dt) : Tensor();
  const Tensor mean = Tensor::randn({c.O}, rng, dt);
  const Tensor var = positive({c.O}, rng, dt);
  const int64_t Ho = (c.H + 2 * c.pad - c.k) / c.stride + 1;
  const int64_t Wo = (c.W + 2 * c.pad - c.k) / c.stride + 1;
  BatchNormEpilogue ep;
  ep.relu = variant >= 1;
  if (variant == 2) ep.residual = Tensor::randn({c.N, c.O, Ho, Wo}, rng, dt);
  const Tensor fused = conv2d_batch_norm_eval_forward(x, w, opt, gamma, beta, mean, var, 1e-5, ep);
  const Tensor y = conv2d_forward(x, w, Tensor(), opt);
  const Tensor apart =
      batch_norm_forward(y, gamma, beta, mean, var, false, 0.1, 1e-5, nullptr, nullptr, ep);
  REQUIRE(fused.shape() == apart.shape());
  CHECK(fused.to_vector() == apart.to_vector());
}

}  // namespace

TEST_CASE("conv2d_batch_norm_eval_forward: bit for bit the convolution, then the batch norm") {
  const std::vector<Case> cases = {
      {1, 64, 12, 11, 13, 3, 1, 1},   // K = 576: three K slices before the epilogue
      {3, 8, 9, 10, 20, 3, 2, 1},     // batch 3, stride 2
      {1, 3, 21, 23, 16, 7, 2, 3},    // a stem: 7x7, stride 2
      {2, 300, 6, 7, 9, 1, 1, 0},     // 1x1 (the GEMM reads x): K = 300, two slices
      {1, 40, 9, 9, 50, 1, 2, 0},     // 1x1 stride 2 (im2col path)
      {1, 5, 70, 70, 3, 3, 1, 1},     // many pixels, few channels
  };
  for_each_cpu_isa([&] {
    for (const Case& c : cases)
      for (int variant = 0; variant < 3; ++variant) {
        check_case(c, DType::f32, variant);
        check_case(c, DType::f64, variant);
      }
  });
}

TEST_CASE("conv2d_batch_norm_eval_forward: refuses what the two ops refuse") {
  std::mt19937_64 rng(2);
  const Tensor x = Tensor::randn({1, 4, 6, 6}, rng);
  const Tensor w = Tensor::randn({5, 4, 3, 3}, rng);
  const Tensor m = Tensor::randn({5}, rng), v = positive({5}, rng, DType::f32);
  Conv2dOptions opt;
  opt.padding = 1;
  CHECK(error_of([&] {
          conv2d_batch_norm_eval_forward(x, w, opt, Tensor(), Tensor(), m, v, 1e-5,
                                         {Tensor::randn({1, 5, 6, 5}, rng), true});
        }).find("batch_norm: the residual is") != std::string::npos);
  CHECK(error_of([&] {
          conv2d_batch_norm_eval_forward(x, w, opt, Tensor::randn({4}, rng), Tensor(), m, v,
                                         1e-5, {});
        }).find("weight") != std::string::npos);
  CHECK(error_of([&] {
          conv2d_batch_norm_eval_forward(x, w, opt, Tensor(), Tensor(), m, v, 0.0, {});
        }).find("eps must be positive") != std::string::npos);
}

TEST_CASE("ResNet inference forward (fused conv + batch norm) equals the graph-recording one") {
  for (const char* arch : {"resnet18", "resnet50"}) {
    CAPTURE(arch);
    ResNetOptions options;
    options.arch = arch;
    options.width = 8;
    options.num_classes = 4;
    options.seed = 3;
    ResNet net(options);
    std::mt19937_64 rng(9);
    for (auto& [name, t] : net.state_dict()) {  // running statistics that are not 0 and 1
      if (name.find("running_var") != std::string::npos) t.copy_(positive(t.shape(), rng, DType::f32));
      if (name.find("running_mean") != std::string::npos) t.copy_(Tensor::randn(t.shape(), rng));
    }
    net.eval();
    const Tensor image = Tensor::randn({2, 3, 67, 75}, rng);
    Tensor inference;
    {
      NoGradGuard no_graph;
      inference = net.forward(image);
    }
    const Tensor graph = net.forward(image.detach().set_requires_grad(true));
    REQUIRE(graph.requires_grad());  // the graph path was taken
    CHECK(inference.to_vector() == graph.to_vector());
  }
}

TEST_SUITE("cuda") {
  TEST_CASE("conv2d_batch_norm_eval_forward on cuda (the two ops there) matches the cpu") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    std::mt19937_64 rng(31);
    Conv2dOptions opt;
    opt.stride = 2;
    opt.padding = 1;
    const Tensor x = Tensor::randn({2, 16, 21, 19}, rng);
    const Tensor w = Tensor::randn({24, 16, 3, 3}, rng);
    const Tensor g = Tensor::randn({24}, rng), b = Tensor::randn({24}, rng);
    const Tensor m = Tensor::randn({24}, rng), v = positive({24}, rng, DType::f32);
    const Tensor res = Tensor::randn({2, 24, 11, 10}, rng);
    const Tensor cpu = conv2d_batch_norm_eval_forward(x, w, opt, g, b, m, v, 1e-5, {res, true});
    auto on = [](const Tensor& t) { return t.to(Device::cuda); };
    const Tensor gpu = conv2d_batch_norm_eval_forward(on(x), on(w), opt, on(g), on(b), on(m),
                                                      on(v), 1e-5, {on(res), true});
    check_close(gpu.to(Device::cpu).to_vector(), cpu.to_vector(), 1e-4, 1e-4);
  }
}
