// Losses: the per-element BCE-with-logits kernel, its mean, and a backward that writes the logits'
// gradient in one kernel (loss.h states the formulas).
#include "tensor/ops/loss.h"

#include "kernels/common.h"
#include "kernels/loss.h"
#include "tensor/autograd.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"

namespace prm {

namespace {

// Mean BCE-with-logits over all elements, recorded under the name `op`.
Tensor bce_mean(const char* op, const Tensor& logits, const Tensor& targets) {
  check_float(op, logits);
  check_same_dtype(op, logits, targets);
  check_same_device(op, logits, targets);
  PRM_CHECK(logits.shape() == targets.shape(), op, ": logits ", logits.shape_str(),
            " and targets ", targets.shape_str(), " differ in shape");
  const int64_t n = logits.numel();
  PRM_CHECK(n > 0, op, ": empty input ", logits.shape_str());
  Tensor per_element = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
  PRM_DISPATCH_FLOAT(logits.dtype(), op, {
    scalar_t* o = per_element.data<scalar_t>();
    const scalar_t* x = logits.data<scalar_t>();
    const scalar_t* y = targets.data<scalar_t>();
    if (logits.is_cuda()) {
      PRM_CUDA_ONLY(cuda::bce_with_logits(o, x, y, n));
    } else {
      cpu::bce_with_logits(o, x, y, n);
    }
  });
  Tensor out = mul_scalar(sum(per_element), 1.0 / static_cast<double>(n));  // no graph: data
  attach_grad_fn(out, op, {logits, targets}, [logits, targets, n, op](const Tensor& g) {
    Tensor dx = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
    PRM_DISPATCH_FLOAT(logits.dtype(), op, {
      scalar_t* d = dx.data<scalar_t>();
      const scalar_t* dloss = g.data<scalar_t>();
      const scalar_t* x = logits.data<scalar_t>();
      const scalar_t* y = targets.data<scalar_t>();
      const scalar_t scale = static_cast<scalar_t>(1.0 / static_cast<double>(n));
      if (logits.is_cuda()) {
        PRM_CUDA_ONLY(cuda::bce_with_logits_backward(d, dloss, x, y, scale, n));
      } else {
        cpu::bce_with_logits_backward(d, dloss, x, y, scale, n);
      }
    });
    return std::vector<Tensor>{dx, Tensor()};  // targets are data
  });
  return out;
}

}  // namespace

Tensor bce_with_logits(const Tensor& logits, const Tensor& targets) {
  return bce_mean("bce_with_logits", logits, targets);
}

Tensor multilabel_soft_margin(const Tensor& logits, const Tensor& targets) {
  check_dim("multilabel_soft_margin", logits, 2, "logits [N, C]");
  return bce_mean("multilabel_soft_margin", logits, targets);
}

}  // namespace prm
