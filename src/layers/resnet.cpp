#include "layers/resnet.h"

#include "tensor/ops.h"

namespace prm {

namespace {

std::shared_ptr<Sequential> make_downsample(int64_t inplanes, int64_t outplanes, int64_t stride,
                                            std::mt19937_64& rng) {
  if (stride == 1 && inplanes == outplanes) return nullptr;
  auto seq = std::make_shared<Sequential>();
  seq->push_back(
      std::make_shared<Conv2d>(inplanes, outplanes, 1, rng, Conv2dOptions{stride, 0, 1}));
  seq->push_back(std::make_shared<BatchNorm2d>(outplanes));
  return seq;
}

// The block's shortcut: x, or its downsampling (1x1 conv, then batch norm).
Tensor shortcut_of(const std::shared_ptr<Sequential>& downsample, const Tensor& x) {
  if (!downsample) return x;
  auto& conv = static_cast<Conv2d&>(*(*downsample)[0]);
  auto& bn = static_cast<BatchNorm2d&>(*(*downsample)[1]);
  return conv_batch_norm(conv, bn, x, /*relu=*/false);
}

template <typename Block>
std::shared_ptr<Sequential> make_stage(int64_t& inplanes, int64_t planes, int64_t blocks,
                                       int64_t stride, std::mt19937_64& rng) {
  auto stage = std::make_shared<Sequential>();
  for (int64_t i = 0; i < blocks; ++i) {
    stage->push_back(std::make_shared<Block>(inplanes, planes, i == 0 ? stride : 1, rng));
    inplanes = planes * Block::expansion;
  }
  return stage;
}

}  // namespace

// ---- Blocks ----

BasicBlock::BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, std::mt19937_64& rng) {
  conv1 = register_module(
      "conv1", std::make_shared<Conv2d>(inplanes, planes, 3, rng, Conv2dOptions{stride, 1, 1}));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  conv2 = register_module("conv2",
                          std::make_shared<Conv2d>(planes, planes, 3, rng, Conv2dOptions{1, 1, 1}));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  downsample = make_downsample(inplanes, planes * expansion, stride, rng);
  if (downsample) register_module("downsample", downsample);
}

// Each batch norm and the ReLU (and residual add) after it run as one fused op.
Tensor BasicBlock::forward(const Tensor& x) {
  const Tensor out = conv_batch_norm(*conv1, *bn1, x, true);
  const Tensor shortcut = shortcut_of(downsample, x);
  return conv_batch_norm(*conv2, *bn2, out, true, shortcut);
}

Bottleneck::Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, std::mt19937_64& rng) {
  conv1 = register_module("conv1", std::make_shared<Conv2d>(inplanes, planes, 1, rng));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  conv2 = register_module(
      "conv2", std::make_shared<Conv2d>(planes, planes, 3, rng, Conv2dOptions{stride, 1, 1}));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  conv3 = register_module("conv3", std::make_shared<Conv2d>(planes, planes * expansion, 1, rng));
  bn3 = register_module("bn3", std::make_shared<BatchNorm2d>(planes * expansion));
  downsample = make_downsample(inplanes, planes * expansion, stride, rng);
  if (downsample) register_module("downsample", downsample);
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor out = conv_batch_norm(*conv1, *bn1, x, true);
  out = conv_batch_norm(*conv2, *bn2, out, true);
  const Tensor shortcut = shortcut_of(downsample, x);
  return conv_batch_norm(*conv3, *bn3, out, true, shortcut);
}

// ---- ResNet ----

ResNetLayout resnet_layout(const std::string& arch) {
  if (arch == "resnet18") return {false, {2, 2, 2, 2}};
  if (arch == "resnet34") return {false, {3, 4, 6, 3}};
  if (arch == "resnet50") return {true, {3, 4, 6, 3}};
  if (arch == "resnet101") return {true, {3, 4, 23, 3}};
  throw Error(
      str_cat("ResNet: unknown arch '", arch, "' (resnet18, resnet34, resnet50, resnet101)"));
}

ResNet::ResNet(const ResNetOptions& options) : options_(options) {
  const ResNetLayout layout = resnet_layout(options.arch);
  PRM_CHECK(options.width > 0 && options.num_classes > 0, "ResNet: bad width ", options.width,
            " or class count ", options.num_classes);
  std::mt19937_64 rng(options.seed);
  const int64_t w = options.width;
  conv1 = register_module("conv1", std::make_shared<Conv2d>(3, w, 7, rng, Conv2dOptions{2, 3, 1}));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(w));
  maxpool = register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
  int64_t inplanes = w;
  auto stage = [&](int64_t planes, int64_t blocks, int64_t stride) {
    return layout.bottleneck ? make_stage<Bottleneck>(inplanes, planes, blocks, stride, rng)
                             : make_stage<BasicBlock>(inplanes, planes, blocks, stride, rng);
  };
  layer1 = register_module("layer1", stage(w, layout.blocks[0], 1));
  layer2 = register_module("layer2", stage(2 * w, layout.blocks[1], 2));
  layer3 = register_module("layer3", stage(4 * w, layout.blocks[2], 2));
  layer4 = register_module("layer4", stage(8 * w, layout.blocks[3], 2));
  feature_channels_ = inplanes;
  classifier =
      register_module("classifier", std::make_shared<Conv2d>(inplanes, options.num_classes, 1, rng,
                                                             Conv2dOptions{}, /*bias=*/true));
  classifier->init_conv_torch_default(rng);
}

Tensor ResNet::features(const Tensor& x) {
  PRM_CHECK(x.dim() == 4 && x.size(1) == 3, "ResNet: input ", x.shape_str(),
            " is not an image batch [N, 3, H, W]");
  Tensor y = maxpool->forward(conv_batch_norm(*conv1, *bn1, x, true));
  return layer4->forward(layer3->forward(layer2->forward(layer1->forward(y))));
}

Tensor ResNet::forward(const Tensor& x) { return classifier->forward(features(x)); }

std::vector<ParamGroup> ResNet::param_groups(double backbone_lr_mult) const {
  ParamGroup features{"features", {}, backbone_lr_mult};
  ParamGroup head{"classifier", {}, 1.0};
  for (auto& [name, p] : named_parameters())
    (name.rfind("classifier.", 0) == 0 ? head : features).params.push_back(p);
  return {features, head};
}

LoadOptions resnet_load_options(bool fresh_classifier, bool strict) {
  LoadOptions options;
  options.strict = strict;
  options.skip_prefixes = {"fc."};
  if (fresh_classifier) options.skip_prefixes.push_back("classifier.");
  return options;
}

}  // namespace prm
