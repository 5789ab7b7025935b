#include "layers/layers.h"

#include <cmath>

#include "tensor/autograd.h"
#include "tensor/ops.h"

namespace prm {

// ---- Conv2d ----

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, std::mt19937_64& rng,
               const Conv2dOptions& opts, bool with_bias)
    : options(opts) {
  PRM_CHECK(in_channels > 0 && out_channels > 0 && kernel_size > 0, "Conv2d: bad sizes in ",
            in_channels, " out ", out_channels, " kernel ", kernel_size);
  weight = Tensor::zeros({out_channels, in_channels, kernel_size, kernel_size});
  register_parameter("weight", &weight);
  if (with_bias) {
    bias = Tensor::zeros({out_channels});
    register_parameter("bias", &bias);
  }
  init_kaiming_normal_fan_out(rng);
}

void Conv2d::init_kaiming_normal_fan_out(std::mt19937_64& rng) {
  NoGradGuard no_grad;
  const int64_t fan_out = weight.size(0) * weight.size(2) * weight.size(3);
  const double std = std::sqrt(2.0 / static_cast<double>(fan_out));
  weight.copy_(Tensor::randn(weight.shape(), rng, DType::f64) * std);
  if (bias.defined()) bias.fill_(0);
}

void Conv2d::init_conv_torch_default(std::mt19937_64& rng) {
  NoGradGuard no_grad;
  const int64_t fan_in = weight.size(1) * weight.size(2) * weight.size(3);
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  weight.copy_(Tensor::uniform(weight.shape(), -bound, bound, rng, DType::f64));
  if (bias.defined()) bias.copy_(Tensor::uniform(bias.shape(), -bound, bound, rng, DType::f64));
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, options); }

void set_conv_engine(Module& root, ConvEngine engine) {
  if (auto* conv = dynamic_cast<Conv2d*>(&root)) conv->options.engine = engine;
  for (const auto& [name, child] : root.named_children()) set_conv_engine(*child, engine);
}

void set_batch_norm_group(Module& root, BatchNormGroup* group) {
  if (auto* bn = dynamic_cast<BatchNorm2d*>(&root)) bn->group = group;
  for (const auto& [name, child] : root.named_children()) set_batch_norm_group(*child, group);
}

// ---- BatchNorm2d ----

BatchNorm2d::BatchNorm2d(int64_t channels, double eps_, double momentum_)
    : eps(eps_), momentum(momentum_) {
  PRM_CHECK(channels > 0, "BatchNorm2d: bad channel count ", channels);
  weight = Tensor::full({channels}, 1.0);
  bias = Tensor::zeros({channels});
  running_mean = Tensor::zeros({channels});
  running_var = Tensor::full({channels}, 1.0);
  num_batches_tracked = Tensor::zeros({}, DType::i64);
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
  register_buffer("running_mean", &running_mean);
  register_buffer("running_var", &running_var);
  register_buffer("num_batches_tracked", &num_batches_tracked);
}

Tensor BatchNorm2d::forward(const Tensor& x) { return forward_with(x, {}); }

Tensor BatchNorm2d::forward_relu(const Tensor& x, const Tensor& residual) {
  return forward_with(x, {residual, true});
}

Tensor BatchNorm2d::forward_with(const Tensor& x, const BatchNormEpilogue& epilogue) {
  PRM_CHECK(x.dim() == 4 && x.size(1) == weight.size(0), "BatchNorm2d: input ", x.shape_str(),
            " does not have ", weight.size(0), " channels (expected [N, ", weight.size(0),
            ", H, W])");
  Tensor y = batch_norm_act(x, weight, bias, running_mean, running_var, is_training(), epilogue,
                            momentum, eps, group);
  if (is_training()) num_batches_tracked.fill_(static_cast<double>(++batches_tracked_));
  return y;
}

void BatchNorm2d::after_load() {
  batches_tracked_ = static_cast<int64_t>(num_batches_tracked.item());
}

Tensor conv_batch_norm(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, bool relu,
                       const Tensor& residual) {
  PRM_CHECK(relu || !residual.defined(), "conv_batch_norm: a residual comes with the ReLU");
  if (!grad_mode_enabled() && !bn.is_training() && !conv.bias.defined())
    return conv2d_batch_norm_eval_forward(x, conv.weight, conv.options, bn.weight, bn.bias,
                                          bn.running_mean, bn.running_var, bn.eps,
                                          BatchNormEpilogue{residual, relu});
  const Tensor y = conv.forward(x);
  return relu ? bn.forward_relu(y, residual) : bn.forward(y);
}

// ---- ReLU, MaxPool2d ----

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, kernel_size, stride, padding); }

// ---- Sequential ----

Sequential::Sequential(const std::vector<std::shared_ptr<Module>>& modules) {
  for (const auto& m : modules) push_back(m);
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& m : modules_) y = m->forward(y);
  return y;
}

}  // namespace prm
