#include "prm/train_step.h"

#include <cmath>
#include <utility>
#include <vector>

#include "tensor/autograd.h"
#include "tensor/ops.h"

namespace prm {

std::unique_ptr<SGD> make_sgd(const ResNet& net, const TrainConfig& config) {
  SGDOptions sgd;
  sgd.lr = config.lr;
  sgd.momentum = config.momentum;
  sgd.weight_decay = config.weight_decay;
  return std::make_unique<SGD>(net.param_groups(config.backbone_lr_mult), sgd);
}

StandaloneStep::StandaloneStep(ResNet& net, const TrainConfig& config)
    : sgd_(make_sgd(net, config)) {
  context_.net = &net;
  context_.sgd = sgd_.get();
  context_.head = config.head;
  context_.comm = &comm_;
  context_.micro_batches = config.micro_batches;
  context_.size = config.size;
  context_.classes = net.options().num_classes;
  context_.device = parse_device(config.device);
}

StepOutcome train_step(StepContext& s, const Batch& batch) {
  Comm& comm = *s.comm;
  StepOutcome out;
  const int64_t local = static_cast<int64_t>(batch.indices.size());
  double count = static_cast<double>(local);
  comm.all_reduce(&count, 1, ReduceOp::sum);
  out.images = static_cast<int64_t>(count);
  if (out.images == 0) return out;
  s.sgd->zero_grad();
  const bool distributed = s.reducer != nullptr;
  const bool placeholder = local == 0 && s.sync_bn && distributed;
  std::vector<std::pair<int64_t, int64_t>> pieces;
  for (int p = 0; p < s.micro_batches; ++p) {
    const auto [b, e] =
        shard_range(static_cast<size_t>(local), p, static_cast<int>(s.micro_batches));
    if (e > b) pieces.emplace_back(static_cast<int64_t>(b), static_cast<int64_t>(e));
  }
  if (placeholder) pieces.emplace_back(0, 0);
  if (s.bn_group) s.bn_group->set_samples(local, out.images);
  double weighted[2] = {0, 0};  // sum of piece losses x piece sizes; non-finite flag
  // The loss of one piece (its images, or the placeholder), counted into `weighted`.
  auto forward = [&](int64_t b, int64_t e) {
    const bool whole = b == 0 && e == local && local > 0;
    const Tensor images = placeholder ? Tensor::zeros({1, 3, s.size, s.size}, DType::f32, s.device)
                          : whole     ? batch.images
                                      : narrow(batch.images, 0, b, e - b);
    const Tensor targets = placeholder ? Tensor::zeros({1, s.classes}, DType::f32, s.device)
                           : whole     ? batch.targets
                                       : narrow(batch.targets, 0, b, e - b);
    Tensor loss = multilabel_soft_margin(s.head.scores(s.net->forward(images)), targets);
    if (e > b) {
      const double value = loss.item();
      weighted[0] += value * static_cast<double>(e - b);
      if (!std::isfinite(value)) weighted[1] = 1;
    }
    return loss;
  };
  // Back-propagates a piece's loss scaled by its share of the global batch (a share of 1 is the
  // default seed exactly, so one process with one piece is the plain step).
  auto backward = [&](const Tensor& loss, int64_t n, const LeafReadyFn& on_leaf_ready) {
    run_backward(loss,
                 Tensor::full(loss.shape(), static_cast<double>(n) / count, loss.dtype(),
                              loss.device()),
                 false, nullptr, on_leaf_ready);
  };
  // Every piece but the last: forward and backward at once (their gradients accumulate).
  for (size_t k = 0; k + 1 < pieces.size(); ++k)
    backward(forward(pieces[k].first, pieces[k].second), pieces[k].second - pieces[k].first,
             nullptr);
  const Tensor last =
      pieces.empty() ? Tensor() : forward(pieces.back().first, pieces.back().second);
  // The ranks agree on the loss (and on stopping for a NaN) before the gradients meet; the loss
  // of a float32 network times a piece size and divided again is exact, so one piece reports
  // its own loss.
  if (distributed) comm.all_reduce(weighted, 2, ReduceOp::sum);
  out.loss = weighted[1] != 0 ? std::nan("") : weighted[0] / count;
  if (!std::isfinite(out.loss)) return out;
  if (s.reducer) {
    GradReducer* reducer = s.reducer;
    reducer->begin();
    if (last.defined())
      backward(last, pieces.back().second - pieces.back().first,
               [reducer](const Tensor& leaf) { reducer->on_grad_ready(leaf); });
    reducer->finish();
  } else {
    backward(last, pieces.back().second - pieces.back().first, nullptr);
  }
  s.sgd->step();
  out.stepped = true;
  return out;
}

}  // namespace prm
