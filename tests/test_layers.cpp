// Module bookkeeping (names, modes, moves, state dicts and their load reports) and the layers'
// construction and initialisation; the layers' numbers against PyTorch are in test_resnet.cpp.
#include <cmath>
#include <cstdio>
#include <random>

#include "helpers.h"
#include "layers/resnet.h"
#include "prm/weights.h"
#include "tensor/ops.h"

using namespace prm;

namespace {

// A two-level module: "stem" (Conv2d with bias), "bn" (BatchNorm2d), "head" (Sequential).
class Toy : public Module {
 public:
  explicit Toy(std::mt19937_64& rng) {
    stem = register_module("stem",
                           std::make_shared<Conv2d>(3, 4, 3, rng, Conv2dOptions{1, 1, 1}, true));
    bn = register_module("bn", std::make_shared<BatchNorm2d>(4));
    head = register_module("head", std::make_shared<Sequential>());
    head->push_back(std::make_shared<ReLU>());
    head->push_back(std::make_shared<Conv2d>(4, 2, 1, rng));
    scale = Tensor::full({1}, 2.0);
    register_parameter("scale", &scale);
  }
  Tensor forward(const Tensor& x) override {
    return mul(head->forward(bn->forward(stem->forward(x))), scale);
  }
  std::shared_ptr<Conv2d> stem;
  std::shared_ptr<BatchNorm2d> bn;
  std::shared_ptr<Sequential> head;
  Tensor scale;
};

std::vector<std::string> names(const NamedTensors& ts) {
  std::vector<std::string> out;
  for (const auto& [n, t] : ts) out.push_back(n);
  return out;
}

}  // namespace

TEST_CASE("module: dotted names, parameters, buffers and modes") {
  std::mt19937_64 rng(1);
  Toy toy(rng);
  CHECK(names(toy.named_parameters()) == std::vector<std::string>{"scale", "stem.weight",
                                                                  "stem.bias", "bn.weight",
                                                                  "bn.bias", "head.1.weight"});
  CHECK(names(toy.named_buffers()) ==
        std::vector<std::string>{"bn.running_mean", "bn.running_var", "bn.num_batches_tracked"});
  CHECK(toy.parameters().size() == 6);
  for (const Tensor& p : toy.parameters()) {
    CHECK(p.requires_grad());
    CHECK(p.is_leaf());
  }
  CHECK(toy.state_dict().size() == 9);
  CHECK(toy.bn->is_training());
  toy.eval();
  CHECK_FALSE(toy.bn->is_training());
  CHECK_FALSE((*toy.head)[0]->is_training());
  toy.train();
  CHECK((*toy.head)[1]->is_training());
  CHECK_THROWS_WITH_AS(Module().forward(Tensor::zeros({1})), doctest::Contains("no single-input"),
                       Error);
}

TEST_CASE("module: batch norm counts batches in training only; gradients reach every parameter") {
  std::mt19937_64 rng(2);
  Toy toy(rng);
  toy.to(DType::f64);
  Tensor x = Tensor::randn({2, 3, 5, 4}, rng, DType::f64);
  sum(toy.forward(x)).backward();
  sum(toy.forward(x)).backward();
  CHECK(toy.bn->num_batches_tracked.item() == 2);
  for (const auto& [name, p] : toy.named_parameters()) CHECK_MESSAGE(p.grad().defined(), name);
  toy.zero_grad();
  for (const Tensor& p : toy.parameters()) CHECK_FALSE(p.grad().defined());
  toy.eval();
  const std::vector<double> mean_before = toy.bn->running_mean.to_vector();
  toy.forward(x);
  CHECK(toy.bn->num_batches_tracked.item() == 2);
  CHECK(toy.bn->running_mean.to_vector() == mean_before);
}

TEST_CASE("module: to(dtype) keeps leaves and integer buffers") {
  std::mt19937_64 rng(3);
  Toy toy(rng);
  const std::vector<double> w = toy.stem->weight.to_vector();
  toy.to(DType::f64);
  CHECK(toy.stem->weight.dtype() == DType::f64);
  CHECK(toy.stem->weight.to_vector() == w);
  CHECK(toy.stem->weight.requires_grad());
  CHECK(toy.stem->weight.is_leaf());
  CHECK(toy.bn->running_var.dtype() == DType::f64);
  CHECK(toy.bn->num_batches_tracked.dtype() == DType::i64);
  // The registry follows the members: named_parameters sees the converted tensors.
  for (const auto& [name, p] : toy.named_parameters()) CHECK(p.dtype() == DType::f64);
  CHECK_THROWS_AS(toy.to(DType::i64), Error);
}

TEST_CASE("module: state dict round trip through a .safetensors file, with a load report") {
  std::mt19937_64 rng(4);
  Toy a(rng), b(rng);
  a.bn->running_mean.copy_(Tensor::from_vector({1, 2, 3, 4}, {4}));
  a.bn->num_batches_tracked.fill_(41);
  const std::string path = "test_layers_state.safetensors";
  save_weights(a, path, {{"arch", "toy"}});
  CHECK(load_safetensors(path).metadata.at("arch") == "toy");
  LoadReport r = load_weights(b, path);
  CHECK(r.ok());
  CHECK(r.loaded.size() == 9);
  CHECK(r.summary() == "all 9 tensors loaded");
  for (const auto& [name, t] : a.state_dict())
    CHECK_MESSAGE(b.state_dict().at(name).to_vector() == t.to_vector(), name);
  // The host copy of num_batches_tracked follows the load.
  b.forward(Tensor::zeros({2, 3, 4, 4}));
  CHECK(b.bn->num_batches_tracked.item() == 42);

  // Loading converts dtype: a float64 module from a float32 file.
  Toy c(rng);
  c.to(DType::f64);
  CHECK(load_weights(c, path).ok());
  CHECK(c.stem->weight.dtype() == DType::f64);
  CHECK(c.stem->weight.to_vector() == a.stem->weight.to_vector());
  std::remove(path.c_str());
}

TEST_CASE("module: missing, unexpected and mis-shaped names, strict and not") {
  std::mt19937_64 rng(5);
  Toy toy(rng);
  TensorMap sd = toy.state_dict();
  const std::vector<double> stem_before = toy.stem->weight.to_vector();
  sd.erase("stem.bias");
  sd["extra.weight"] = Tensor::zeros({3});
  sd["head.1.weight"] = Tensor::zeros({2, 5, 1, 1});
  sd["stem.weight"] = Tensor::zeros({4, 3, 3, 3});
  try {
    toy.load_state_dict(sd, {}, "some.safetensors");
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("some.safetensors") != std::string::npos);
    CHECK(msg.find("missing: stem.bias") != std::string::npos);
    CHECK(msg.find("unexpected: extra.weight") != std::string::npos);
    CHECK(msg.find("head.1.weight: some.safetensors has [2, 5, 1, 1], the module [2, 4, 1, 1]") !=
          std::string::npos);
  }
  CHECK(toy.stem->weight.to_vector() == stem_before);  // a failed strict load changes nothing

  LoadOptions lenient;
  lenient.strict = false;
  LoadReport r = toy.load_state_dict(sd, lenient);
  CHECK(r.missing == std::vector<std::string>{"stem.bias"});
  CHECK(r.unexpected == std::vector<std::string>{"extra.weight"});
  CHECK(r.shape_mismatch.size() == 1);
  CHECK(toy.stem->weight.to_vector() == std::vector<double>(108, 0.0));  // the rest did load

  // Skipped prefixes are neither loaded nor reported; optional suffixes may be absent.
  LoadOptions skip;
  skip.skip_prefixes = {"head.", "extra.", "stem."};
  sd.erase("bn.num_batches_tracked");
  CHECK(toy.load_state_dict(sd, skip).ok());
}

TEST_CASE("layers: initialisation as torchvision's") {
  std::mt19937_64 rng(6);
  Conv2d conv(64, 256, 3, rng);
  // Kaiming normal, fan_out: std = sqrt(2 / (256 * 9)).
  const std::vector<double> w = conv.weight.to_vector();
  double s = 0, s2 = 0;
  for (double v : w) {
    s += v;
    s2 += v * v;
  }
  const double mean = s / w.size(), std = std::sqrt(s2 / w.size() - mean * mean);
  CHECK(std::abs(mean) < 0.002);
  CHECK(std == doctest::Approx(std::sqrt(2.0 / (256 * 9))).epsilon(0.02));
  CHECK_FALSE(conv.bias.defined());

  // The classifier: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
  ResNet net(ResNetOptions{"resnet18", 20, 8, 3});
  const double bound = 1.0 / std::sqrt(64.0);
  double lo = 1, hi = -1;
  for (double v : net.classifier->weight.to_vector()) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(hi - lo > bound);  // spread over the interval
  for (double v : net.classifier->bias.to_vector()) CHECK(std::abs(v) <= bound);
  BatchNorm2d bn(5);
  CHECK(bn.weight.to_vector() == std::vector<double>(5, 1.0));
  CHECK(bn.bias.to_vector() == std::vector<double>(5, 0.0));
  CHECK(bn.running_var.to_vector() == std::vector<double>(5, 1.0));
  // Same seed, same network.
  ResNet again(ResNetOptions{"resnet18", 20, 8, 3});
  CHECK(again.layer3->named_parameters()[0].second.to_vector() ==
        net.layer3->named_parameters()[0].second.to_vector());
}

TEST_CASE("layers: ResNet parameter groups for SGD") {
  ResNet net(ResNetOptions{"resnet18", 20, 4, 0});
  std::vector<ParamGroup> groups = net.param_groups(0.1);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].lr_mult == 0.1);
  CHECK(groups[1].params.size() == 2);
  CHECK(groups[0].params.size() + 2 == net.parameters().size());
  CHECK(groups[1].params[0].impl_ptr() == net.classifier->weight.impl_ptr());
}

TEST_CASE("layers: errors name the layer and the shapes") {
  std::mt19937_64 rng(7);
  BatchNorm2d bn(4);
  CHECK_THROWS_WITH_AS(bn.forward(Tensor::zeros({2, 3, 2, 2})), doctest::Contains("[2, 3, 2, 2]"),
                       Error);
  CHECK_THROWS_AS(Conv2d(0, 4, 3, rng), Error);
  Sequential seq;
  seq.push_back(std::make_shared<MaxPool2d>(2, 2));
  seq.push_back(std::make_shared<ReLU>());
  Tensor y = seq.forward(Tensor::from_vector({-1, 2, -3, -4}, {1, 1, 2, 2}));
  CHECK(y.to_vector() == std::vector<double>{2});
  CHECK(seq.size() == 2);
}
