// Batch normalisation over the channel dimension of x [N, C, H, W] (or [N, C]).
//
//   y = xhat * weight[c] + bias[c],   xhat = (x - mean[c]) / sqrt(var[c] + eps)
//
// Training: mean and var are the batch statistics of channel c over its M = N * H * W values
// (var biased, / M); the running buffers move in place, as torch's do:
//   running_mean = (1 - momentum) * running_mean + momentum * mean
//   running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)   (unbiased)
// Eval: mean and var are the running buffers (constants).
//
// Gradients (g = dL/dy; sums over the M values of channel c):
//   dbias[c]   = sum g
//   dweight[c] = sum g * xhat
//   dx (eval)     = weight * invstd * g
//   dx (training) = weight * invstd * (g - sum g / M - xhat * sum(g * xhat) / M)
// The training terms come from mean and var depending on x: docs/batch_norm.md.
// weight and bias may be undefined (affine off); the running buffers may be undefined in
// training only (no update). They must all be [C] with x's dtype and device.
//
// Synchronised batch norm (data-parallel training with --sync-bn, docs/scaling.md): given a
// BatchNormGroup, training takes the statistics over the union of every rank's batch, M = the
// group's samples * H * W values per channel. Each rank has its local mean m_r and biased
// variance v_r over its w_r = local_samples * H * W values; two sums over the group give
//   mean = sum_r w_r m_r / M,   var = sum_r w_r (v_r + (m_r - mean)^2) / M
// (the exact pooled variance, from the ranks' own statistics), and the running buffers move
// with these (unbiased with M). The backward sums the two channel sums over the group before
// dx (the formula above with the group's sums and M); dweight and dbias stay this rank's own
// sums, which the gradient all-reduce adds up like every other parameter gradient.
//
// Fused epilogue (batch_norm_act): y = relu(batch_norm(x) + residual), the add and the ReLU each
// optional, computed in the batch norm's own passes over memory (kernels/batch_norm.h). The
// gradients are the composition's: with d = g * [y > 0] (g without ReLU), the batch norm's
// formulas above take d for g, and dresidual = d. The numbers are those of the three ops
// (the same roundings in the same order), which tests/test_batch_norm_act.cpp checks bit for bit.
#pragma once
#include "tensor/tensor.h"

namespace prm {

// The ranks a synchronised batch norm spans (implemented over a process group in src/dist).
class BatchNormGroup {
 public:
  virtual ~BatchNormGroup() = default;
  // Sums a per-channel tensor over the ranks, in place (every rank calls it, in the same order).
  virtual void sum(Tensor& per_channel) = 0;
  // Samples this rank contributes to the statistics now: x's batch, or 0 for a placeholder batch
  // on a rank that has no images this step.
  virtual int64_t local_samples() const = 0;
  virtual int64_t group_samples() const = 0;  // over all ranks
};

// What the forward saved for the backward: the statistics it normalised with (the batch mean
// and 1 / sqrt(var + eps) in training, a snapshot of the running ones in eval) and the mode.
struct BatchNormSaved {
  Tensor mean, invstd;  // [C]
  bool training = true;
  BatchNormGroup* group = nullptr;  // synchronised: the backward sums over it
  int64_t group_values = 0;         // M over the group (synchronised only)
  Tensor relu_out;                  // the output, when the epilogue ends with a ReLU (its gate)
  bool residual = false;            // the epilogue added a residual (the backward returns dres)
  bool placeholder = false;         // synchronised, and this rank contributes no samples (its
                                    // input is a placeholder): dx = 0, it is in no one's batch
};
struct BatchNormGrads {
  Tensor dx, dweight, dbias;  // dweight = sum g * xhat, dbias = sum g (computed even if unused)
  Tensor dresidual;           // the epilogue's residual (saved.residual only)
};

// What batch_norm_act does after the normalisation, in the same pass.
struct BatchNormEpilogue {
  Tensor residual;    // added (x's shape, dtype and device); undefined: nothing added
  bool relu = false;  // then max(., 0), NaN kept as relu() keeps it
};

// The checks batch_norm_forward makes of its arguments (one-line errors naming what is wrong);
// x is only looked at for its shape, dtype and device.
void check_batch_norm_inputs(const Tensor& x, const Tensor& weight, const Tensor& bias,
                             const Tensor& running_mean, const Tensor& running_var, bool training,
                             double eps, const Tensor& residual);
// The forward with no graph; fills *saved when given. Moves the running buffers in training.
Tensor batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const Tensor& running_mean, const Tensor& running_var, bool training,
                          double momentum, double eps, BatchNormSaved* saved,
                          BatchNormGroup* group = nullptr,
                          const BatchNormEpilogue& epilogue = {});
// weight may be undefined (affine off: 1). param_grads false: dweight and dbias are left
// undefined (and in eval mode their per-channel sums are not computed at all). g may carry K
// batched cotangents [K, ...] of an input of batch 1 in eval mode (peak back-propagation).
BatchNormGrads batch_norm_backward(const Tensor& g, const Tensor& x, const Tensor& weight,
                                   const BatchNormSaved& saved, bool param_grads = true);
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum = 0.1, double eps = 1e-5, BatchNormGroup* group = nullptr);
// relu(batch_norm(x) + epilogue.residual) as one op (the residual and the ReLU optional); its
// graph node is named after what it fuses ("batch_norm_add_relu", "batch_norm_relu", ...).
Tensor batch_norm_act(const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Tensor& running_mean, const Tensor& running_var, bool training,
                      const BatchNormEpilogue& epilogue, double momentum = 0.1,
                      double eps = 1e-5, BatchNormGroup* group = nullptr);

// What batch_norm_act's graph node keeps (Node::saved), for a BackwardOverride of it: the input
// and weight (detached), what the forward saved, which gradients are wanted, and the node that
// made x when the graph was built (x's grad_fn; for identity only, null for a leaf).
struct BatchNormNodeSaved {
  Tensor x, weight;
  bool has_bias = false, param_grads = false;
  BatchNormSaved saved;
  const Node* producer = nullptr;
};
// The node's own backward: the gradients of its inputs {x, weight?, bias?, residual?}.
std::vector<Tensor> batch_norm_node_backward(const BatchNormNodeSaved& node, const Tensor& g);
// `d` in that order, the node's inputs' (for a rule standing in for the node's backward).
std::vector<Tensor> batch_norm_node_grads(const BatchNormNodeSaved& node,
                                          const BatchNormGrads& d);
// Eval mode's per-channel factor of dx = d ⊙ scale: weight * invstd [C] (invstd alone without
// weight), the tensor batch_norm_backward multiplies K batched cotangents by.
Tensor batch_norm_eval_scale(const Tensor& weight, const BatchNormSaved& saved);

}  // namespace prm
