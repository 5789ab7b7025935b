// Losses. `targets` are data: they get no gradient (an undefined Tensor is returned for them
// even when they require grad), and must have the logits' shape, dtype and device.
//   bce_with_logits(x, y) = mean over all n elements of
//       max(x,0) - x y + log1p(exp(-|x|))   ( = -(y log s(x) + (1-y) log(1-s(x))), s = sigmoid )
//     Gradient: dx = g * (sigmoid(x) - y) / n.
//   multilabel_soft_margin(x, y), x and y [N, C]: mean over N of the mean over C of the above,
//     which is exactly torch.nn.MultiLabelSoftMarginLoss() (reduction 'mean', no weight); as every
//     row has C elements it equals bce_with_logits(x, y), so it shares its gradient.
#pragma once
#include "tensor/tensor.h"

namespace prm {

// Named forward / backward (the backward's g is the scalar gradient of the mean loss).
Tensor bce_with_logits_forward(const char* op, const Tensor& logits, const Tensor& targets);
Tensor bce_with_logits_backward(const Tensor& g, const Tensor& logits, const Tensor& targets);
Tensor multilabel_soft_margin_forward(const Tensor& logits, const Tensor& targets);
Tensor multilabel_soft_margin_backward(const Tensor& g, const Tensor& logits,
                                       const Tensor& targets);

Tensor bce_with_logits(const Tensor& logits, const Tensor& targets);
Tensor multilabel_soft_margin(const Tensor& logits, const Tensor& targets);

}  // namespace prm
