// Losses: the per-element BCE-with-logits kernel, its mean, and a backward that writes the logits'
// gradient in one kernel (loss.h states the formulas).
#include "tensor/ops/loss.h"

#include "kernels/loss.h"
#include "tensor/autograd.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"

namespace prm {

namespace {

// Mean BCE-with-logits over all elements, recorded under the name `op`.
Tensor bce_mean(const char* op, const char* backward_name, const Tensor& logits,
                const Tensor& targets) {
  Tensor out = bce_with_logits_forward(op, logits, targets);
  attach_grad_fn(out, op, backward_name, {logits, targets},
                 [logits = logits.detach(), targets = targets.detach()](const Tensor& g) {
                   // targets are data: no gradient
                   return std::vector<Tensor>{bce_with_logits_backward(g, logits, targets),
                                              Tensor()};
                 });
  return out;
}

}  // namespace

Tensor bce_with_logits_forward(const char* op, const Tensor& logits, const Tensor& targets) {
  check_float(op, logits);
  check_same_dtype(op, logits, targets);
  check_same_device(op, logits, targets);
  PRM_CHECK(logits.shape() == targets.shape(), op, ": logits ", logits.shape_str(),
            " and targets ", targets.shape_str(), " differ in shape");
  const int64_t n = logits.numel();
  PRM_CHECK(n > 0, op, ": empty input ", logits.shape_str());
  Tensor per_element = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
  PRM_DISPATCH_FLOAT(logits.dtype(), op, {
    launch<BceWithLogits, scalar_t>(logits.device(), per_element.data<scalar_t>(),
                                    logits.data<scalar_t>(), targets.data<scalar_t>(), n);
  });
  NoGradGuard data_only;
  return mul_scalar(sum(per_element), 1.0 / static_cast<double>(n));
}

Tensor bce_with_logits_backward(const Tensor& g, const Tensor& logits, const Tensor& targets) {
  const int64_t n = logits.numel();
  Tensor dx = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
  PRM_DISPATCH_FLOAT(logits.dtype(), "bce_with_logits_backward", {
    launch<BceWithLogitsBackward, scalar_t>(
        logits.device(), dx.data<scalar_t>(), g.data<scalar_t>(), logits.data<scalar_t>(),
        targets.data<scalar_t>(), static_cast<scalar_t>(1.0 / static_cast<double>(n)), n);
  });
  return dx;
}

Tensor multilabel_soft_margin_forward(const Tensor& logits, const Tensor& targets) {
  check_dim("multilabel_soft_margin", logits, 2, "logits [N, C]");
  return bce_with_logits_forward("multilabel_soft_margin", logits, targets);
}

Tensor multilabel_soft_margin_backward(const Tensor& g, const Tensor& logits,
                                       const Tensor& targets) {
  return bce_with_logits_backward(g, logits, targets);
}

Tensor bce_with_logits(const Tensor& logits, const Tensor& targets) {
  return bce_mean("bce_with_logits", "bce_with_logits_backward", logits, targets);
}

Tensor multilabel_soft_margin(const Tensor& logits, const Tensor& targets) {
  check_dim("multilabel_soft_margin", logits, 2, "logits [N, C]");
  return bce_mean("multilabel_soft_margin", "multilabel_soft_margin_backward", logits, targets);
}

}  // namespace prm
