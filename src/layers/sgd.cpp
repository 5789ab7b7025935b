#include "layers/sgd.h"

#include "kernels/sgd.h"
#include "tensor/autograd.h"

namespace prm {

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& options)
    : groups_(std::move(groups)), options_(options) {
  PRM_CHECK(options.lr >= 0 && options.momentum >= 0 && options.weight_decay >= 0, "SGD: lr ",
            options.lr, ", momentum ", options.momentum, ", weight_decay ", options.weight_decay,
            " must be non-negative");
  PRM_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0),
            "SGD: nesterov needs momentum > 0 and dampening 0");
  for (const ParamGroup& g : groups_) {
    PRM_CHECK(g.lr_mult >= 0, "SGD: group '", g.name, "' has a negative lr multiplier");
    for (const Tensor& p : g.params)
      PRM_CHECK(p.defined() && p.is_leaf() && p.requires_grad() && p.dtype() != DType::i64,
                "SGD: group '", g.name, "' holds a tensor that is not a trainable leaf");
    buffers_.emplace_back(g.params.size());
  }
}

SGD::SGD(const std::vector<Tensor>& params, const SGDOptions& options)
    : SGD(std::vector<ParamGroup>{ParamGroup{"params", params, 1.0}}, options) {}

const Tensor& SGD::momentum_buffer(size_t group, size_t index) const {
  PRM_CHECK(group < buffers_.size() && index < buffers_[group].size(), "SGD::momentum_buffer: no ",
            "parameter ", index, " in group ", group);
  return buffers_[group][index];
}

void SGD::set_momentum_buffer(size_t group, size_t index, const Tensor& buffer) {
  PRM_CHECK(group < buffers_.size() && index < buffers_[group].size(),
            "SGD::set_momentum_buffer: no parameter ", index, " in group ", group);
  const Tensor& p = groups_[group].params[index];
  PRM_CHECK(buffer.shape() == p.shape(), "SGD::set_momentum_buffer: buffer ", buffer.shape_str(),
            " for parameter ", p.shape_str(), " (group ", groups_[group].name, ")");
  buffers_[group][index] = buffer.detach().to(p.dtype()).to(p.device()).clone();
}

void SGD::step() {
  NoGradGuard no_grad;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const ParamGroup& group = groups_[gi];
    for (size_t pi = 0; pi < group.params.size(); ++pi) {
      const Tensor& p = group.params[pi];
      const Tensor g = p.grad();
      if (!g.defined()) continue;
      PRM_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(),
                "SGD: gradient ", g.describe(), " does not match its parameter ", p.describe());
      Tensor& buf = buffers_[gi][pi];
      const bool first = !buf.defined();
      if (options_.momentum != 0 && first) buf = Tensor::empty(p.shape(), p.dtype(), p.device());
      PRM_DISPATCH_FLOAT(p.dtype(), "SGD", {
        SgdHyper<scalar_t> h;
        h.lr = static_cast<scalar_t>(options_.lr * group.lr_mult);
        h.momentum = static_cast<scalar_t>(options_.momentum);
        h.dampening = static_cast<scalar_t>(options_.dampening);
        h.weight_decay = static_cast<scalar_t>(options_.weight_decay);
        h.nesterov = options_.nesterov;
        h.first_step = first;
        scalar_t* buf_ptr = options_.momentum != 0 ? buf.data<scalar_t>() : nullptr;
        launch<SgdStep, scalar_t>(p.device(), p.data<scalar_t>(), buf_ptr, g.data<scalar_t>(),
                                  p.numel(), h);
      });
    }
  }
}

void SGD::zero_grad() {
  for (ParamGroup& g : groups_)
    for (Tensor& p : g.params) p.zero_grad();
}

}  // namespace prm
