// Stochastic gradient descent exactly as torch.optim.SGD (1.13) computes it, per parameter p
// with gradient g, in the parameter's dtype, on its device (kernels/sgd_math.h):
//   d = g + weight_decay * p
//   buf = d on the first step, then buf = momentum * buf + (1 - dampening) * d
//   d = nesterov ? d + momentum * buf : buf          (when momentum != 0)
//   p = p - lr_group * d,   lr_group = lr * group.lr_mult
// Parameters without a gradient are skipped (their buffer is not touched), as torch does.
// Parameter groups share momentum / weight decay and differ by a learning-rate multiplier (PRM
// trains the pretrained backbone with a smaller rate than the fresh classifier).
#pragma once
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace prm {

struct ParamGroup {
  std::string name;  // for messages ("features", "classifier")
  std::vector<Tensor> params;
  double lr_mult = 1.0;
};

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

class SGD {
 public:
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options);
  SGD(const std::vector<Tensor>& params, const SGDOptions& options);

  void step();       // updates every parameter with a gradient, in place, with no graph
  void zero_grad();  // drops every parameter's gradient

  void set_lr(double lr) { options_.lr = lr; }  // base rate (schedules)
  double lr() const { return options_.lr; }
  const SGDOptions& options() const { return options_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  // Undefined until the parameter's first step with momentum.
  const Tensor& momentum_buffer(size_t group, size_t index) const;
  // Restores a buffer (a checkpoint): copied into a tensor of the parameter's dtype and device.
  void set_momentum_buffer(size_t group, size_t index, const Tensor& buffer);

 private:
  std::vector<ParamGroup> groups_;
  std::vector<std::vector<Tensor>> buffers_;  // parallel to groups_[g].params
  SGDOptions options_;
};

}  // namespace prm
