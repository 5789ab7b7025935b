// ResNet-18/34/50/101 as fully convolutional classifiers, with torchvision's module names (so a
// torchvision state dict loads by name) and torchvision's ResNet v1.5 structure:
//   conv1 (7x7, stride 2, pad 3) -> bn1 -> relu -> maxpool (3x3, stride 2, pad 1)
//   -> layer1 .. layer4 (stride 1, 2, 2, 2; the stride of a block sits on its 3x3 conv)
//   -> classifier (1x1 conv with bias to num_classes): class response maps at stride 32.
// There is no avgpool and no fc: the output is [N, C, H/32, W/32] (rounded up at each stride).
//
//   BasicBlock:  relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))             expansion 1
//   Bottleneck:  relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))
//                (1x1 -> 3x3 -> 1x1, expansion 4)
//   shortcut = x, or downsample = Sequential(conv 1x1 stride s, BatchNorm2d) ("downsample.0",
//   "downsample.1") when the stride or the channel count changes.
// Every relu(bn(.)) and relu(bn(.) + shortcut) above runs as one fused op
// (BatchNorm2d::forward_relu), with the same numbers as the three ops.
//
// `width` is the stem width (64 in torchvision); stage widths are width * {1, 2, 4, 8}, so tests
// can build tiny networks (width 4 or 8) with the real layout.
//
// Initialisation: torchvision's (every backbone conv Kaiming normal fan_out, every BN weight 1 and
// bias 0). The classifier, which torchvision does not have, gets torch.nn.Conv2d's default
// initialisation (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias), which is what the
// official PRM code does by appending a fresh nn.Conv2d to the pretrained features.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "layers/layers.h"
#include "layers/sgd.h"

namespace prm {

class BasicBlock : public Module {
 public:
  static constexpr int64_t expansion = 1;
  BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, std::mt19937_64& rng);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Sequential> downsample;  // null for an identity shortcut
};

class Bottleneck : public Module {
 public:
  static constexpr int64_t expansion = 4;
  Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, std::mt19937_64& rng);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> conv1, conv2, conv3;
  std::shared_ptr<BatchNorm2d> bn1, bn2, bn3;
  std::shared_ptr<Sequential> downsample;
};

struct ResNetOptions {
  std::string arch = "resnet50";  // resnet18 | resnet34 | resnet50 | resnet101
  int64_t num_classes = 20;
  int64_t width = 64;  // stem width; torchvision's networks have 64
  uint64_t seed = 0;   // initialisation
};

class ResNet : public Module {
 public:
  explicit ResNet(const ResNetOptions& options = {});

  Tensor forward(const Tensor& x) override;  // class response maps [N, C, h, w]
  Tensor features(const Tensor& x);          // backbone output [N, feature_channels, h, w]
  int64_t feature_channels() const { return feature_channels_; }
  const ResNetOptions& options() const { return options_; }

  // Two SGD groups: "features" (every backbone parameter, lr * backbone_lr_mult) and
  // "classifier" (lr * 1).
  std::vector<ParamGroup> param_groups(double backbone_lr_mult) const;

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<MaxPool2d> maxpool;
  std::shared_ptr<Sequential> layer1, layer2, layer3, layer4;
  std::shared_ptr<Conv2d> classifier;

 private:
  ResNetOptions options_;
  int64_t feature_channels_ = 0;
};

// The block counts of an architecture name; prm::Error for an unknown one.
struct ResNetLayout {
  bool bottleneck;
  int64_t blocks[4];
};
ResNetLayout resnet_layout(const std::string& arch);

// How a ResNet loads a state dict by torchvision names: `fc.*` is always ignored. With
// fresh_classifier, `classifier.*` is ignored too (the normal case when fine-tuning from
// ImageNet weights); otherwise the classifier must be in the source. Strict: any missing
// backbone tensor, unexpected name or wrong shape is an error naming the source and the tensors.
// (Loading from a file: load_resnet_weights in prm/weights.h.)
LoadOptions resnet_load_options(bool fresh_classifier, bool strict = true);

}  // namespace prm
