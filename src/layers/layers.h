// The basic layers, each a Module over one functional op (src/tensor/ops), with torch.nn's
// parameter names and defaults. Parameters are created float32 on the CPU; move a finished
// network with Module::to(device) / to(dtype).
//
// Initialisation (random draws on the CPU from the generator passed in, so a seed gives the
// same network on every device):
//   Conv2d: Kaiming normal, mode fan_out, ReLU gain: w ~ N(0, 2 / (Cout * kh * kw)), as
//           torchvision's ResNet initialises every convolution; bias (if any) 0.
//           init_conv_torch_default() gives instead torch.nn.Conv2d's own default
//           (kaiming_uniform with a = sqrt(5)): w, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
//           fan_in = Cin * kh * kw.
//   BatchNorm2d: weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0.
#pragma once
#include <memory>
#include <random>
#include <vector>

#include "layers/module.h"
#include "tensor/ops/batch_norm.h"
#include "tensor/ops/conv2d.h"

namespace prm {

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, std::mt19937_64& rng,
         const Conv2dOptions& options = {}, bool bias = false);
  Tensor forward(const Tensor& x) override;
  void init_kaiming_normal_fan_out(std::mt19937_64& rng);
  void init_conv_torch_default(std::mt19937_64& rng);

  Tensor weight;  // [Cout, Cin, k, k]
  Tensor bias;    // [Cout], or undefined
  Conv2dOptions options;
};

// Sets the CUDA convolution engine of every Conv2d in `root` and below (per module, not global).
void set_conv_engine(Module& root, ConvEngine engine);

// Makes every BatchNorm2d in `root` and below take its training statistics over `group`
// (synchronised batch norm, tensor/ops/batch_norm.h); nullptr: each rank its own batch.
void set_batch_norm_group(Module& root, BatchNormGroup* group);

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, double eps = 1e-5, double momentum = 0.1);
  // Training: batch statistics, running buffers updated, num_batches_tracked += 1.
  // Eval: running statistics.
  Tensor forward(const Tensor& x) override;
  // relu(forward(x) + residual) as one fused op (tensor/ops/batch_norm.h, batch_norm_act): the
  // residual may be undefined (relu(forward(x))).
  Tensor forward_relu(const Tensor& x, const Tensor& residual = Tensor());

  Tensor weight, bias;               // parameters [C]
  Tensor running_mean, running_var;  // buffers [C]
  Tensor num_batches_tracked;        // buffer, int64 scalar (torch's)
  double eps, momentum;
  // Synchronised statistics in training (--sync-bn): the ranks' group, or nullptr (this batch's).
  BatchNormGroup* group = nullptr;

 protected:
  void after_load() override;

 private:
  Tensor forward_with(const Tensor& x, const BatchNormEpilogue& epilogue);
  int64_t batches_tracked_ = 0;  // host copy of num_batches_tracked (no device sync per step)
};

// bn(conv(x)), then the residual add and the ReLU when asked (relu(bn(conv(x)) + residual); a
// residual needs relu). When nothing records a graph (inference), bn is in eval mode and conv has
// no bias: one op, conv2d_batch_norm_eval_forward (the same numbers, without a pass of its own
// over the output for the batch norm). Otherwise the two modules' own forwards.
Tensor conv_batch_norm(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, bool relu,
                       const Tensor& residual = Tensor());

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class MaxPool2d : public Module {
 public:
  MaxPool2d(int64_t kernel_size, int64_t stride, int64_t padding = 0)
      : kernel_size(kernel_size), stride(stride), padding(padding) {}
  Tensor forward(const Tensor& x) override;
  int64_t kernel_size, stride, padding;
};

// Children named "0", "1", ... applied in order (torch.nn.Sequential's names).
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(const std::vector<std::shared_ptr<Module>>& modules);
  void push_back(std::shared_ptr<Module> module);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return modules_.size(); }
  const std::shared_ptr<Module>& operator[](size_t i) const { return modules_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace prm
