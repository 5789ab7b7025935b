#include "tensor/ops/batch_norm.h"

#include "kernels/batch_norm.h"
#include "tensor/allocator.h"
#include "tensor/autograd.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/shape.h"

namespace prm {

namespace {

// A per-channel tensor argument: undefined, or [C] with x's dtype and device.
void check_channel_vector(const Tensor& x, const Tensor& v, const char* what) {
  if (!v.defined()) return;
  PRM_CHECK(v.dim() == 1 && v.size(0) == x.size(1), "batch_norm: ", what, " has shape ",
            v.shape_str(), ", expected [", x.size(1), "] for input ", x.shape_str());
  PRM_CHECK(v.dtype() == x.dtype() && v.device() == x.device(), "batch_norm: ", what, " is ",
            v.describe(), ", input is ", x.describe());
}

template <typename T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

void check_batch_norm_inputs(const Tensor& x, const Tensor& weight, const Tensor& bias,
                             const Tensor& running_mean, const Tensor& running_var, bool training,
                             double eps, const Tensor& residual) {
  check_float("batch_norm", x);
  PRM_CHECK(x.dim() == 2 || x.dim() == 4, "batch_norm: input must be [N, C] or [N, C, H, W], got ",
            x.shape_str());
  check_channel_vector(x, weight, "weight");
  check_channel_vector(x, bias, "bias");
  check_channel_vector(x, running_mean, "running_mean");
  check_channel_vector(x, running_var, "running_var");
  PRM_CHECK(running_mean.defined() == running_var.defined(),
            "batch_norm: give both running_mean and running_var or neither");
  PRM_CHECK(training || running_mean.defined(),
            "batch_norm: eval mode needs running_mean and running_var");
  PRM_CHECK(eps > 0, "batch_norm: eps must be positive, got ", eps);
  PRM_CHECK(!residual.defined() ||
                (residual.shape() == x.shape() && residual.dtype() == x.dtype() &&
                 residual.device() == x.device()),
            "batch_norm: the residual is ", residual.defined() ? residual.describe() : "",
            ", expected the input's ", x.describe());
}

Tensor batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const Tensor& running_mean, const Tensor& running_var, bool training,
                          double momentum, double eps, BatchNormSaved* saved,
                          BatchNormGroup* group, const BatchNormEpilogue& epilogue) {
  check_batch_norm_inputs(x, weight, bias, running_mean, running_var, training, eps,
                          epilogue.residual);
  const Tensor& res = epilogue.residual;

  const int64_t N = x.size(0), C = x.size(1);
  const int64_t HW = x.dim() == 4 ? x.size(2) * x.size(3) : 1;
  const int64_t M = N * HW;
  group = training ? group : nullptr;
  const int64_t M_group = group ? group->group_samples() * HW : M;
  PRM_CHECK(!group || (group->local_samples() >= 0 && group->local_samples() <= N),
            "batch_norm: the group says this rank contributes ",
            group ? group->local_samples() : 0, " samples of an input ", x.shape_str());
  PRM_CHECK(!training || M_group > 1,
            "batch_norm: training needs more than one value per channel, got input ",
            x.shape_str(), group ? " over the group" : "");

  const Device dev = x.device();
  // Training on the CPU without a group: statistics, finalize and apply in one sweep over the
  // channels (cpu::batch_norm_train_forward, kernels/batch_norm.h) instead of three launches.
  const bool sweep = training && dev == Device::cpu && !group;
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  Tensor mean, invstd = Tensor::empty({C}, x.dtype(), dev);
  PRM_DISPATCH_FLOAT(x.dtype(), "batch_norm", {
    scalar_t* rm = ptr_or_null<scalar_t>(running_mean);
    scalar_t* rv = ptr_or_null<scalar_t>(running_var);
    scalar_t* s = invstd.data<scalar_t>();
    if (training) {
      mean = Tensor::empty({C}, x.dtype(), dev);
      Tensor var = Tensor::empty({C}, x.dtype(), dev);
      scalar_t *m = mean.data<scalar_t>(), *v = var.data<scalar_t>();
      if (sweep) {
        cpu::batch_norm_train_forward(out.data<scalar_t>(), m, v, s, rm, rv, x.data<scalar_t>(),
                                      ptr_or_null<scalar_t>(weight), ptr_or_null<scalar_t>(bias),
                                      ptr_or_null<scalar_t>(res), epilogue.relu, N, C, HW,
                                      momentum, eps);
      } else {
        launch<BatchNormStats, scalar_t>(dev, m, v, x.data<scalar_t>(), N, C, HW);
        if (group) {
          // The pooled statistics of the group (the header's formula), from the ranks' own.
          const double w = static_cast<double>(group->local_samples() * HW);
          Tensor pooled_mean = mul_scalar_forward(mean, w);
          group->sum(pooled_mean);
          pooled_mean = mul_scalar_forward(pooled_mean, 1.0 / static_cast<double>(M_group));
          const Tensor d = sub(mean, pooled_mean);  // no graph: none of these requires grad
          Tensor pooled_var = mul_scalar_forward(add(var, mul(d, d)), w);
          group->sum(pooled_var);
          pooled_var = mul_scalar_forward(pooled_var, 1.0 / static_cast<double>(M_group));
          mean = pooled_mean;
          var = pooled_var;
          m = mean.data<scalar_t>();
          v = var.data<scalar_t>();
        }
        launch<BatchNormFinalize, scalar_t>(dev, s, rm, rv, m, v, C, M_group, momentum, eps);
      }
    } else {
      // A snapshot: the running buffers may move before this node's backward runs.
      mean = running_mean.detach().clone();
      scalar_t* no_update = nullptr;
      launch<BatchNormFinalize, scalar_t>(dev, s, no_update, no_update, rm, rv, C, M, momentum,
                                          eps);
    }
    if (!sweep) {
      launch<BatchNormApply, scalar_t>(dev, out.data<scalar_t>(), x.data<scalar_t>(),
                                       mean.data<scalar_t>(), s, ptr_or_null<scalar_t>(weight),
                                       ptr_or_null<scalar_t>(bias), ptr_or_null<scalar_t>(res),
                                       epilogue.relu, N, C, HW);
    }
  });
  if (saved) {
    *saved = {mean, invstd, training, group, M_group,
              epilogue.relu ? out.detach() : Tensor(), res.defined(),
              group != nullptr && group->local_samples() == 0};
  }
  return out;
}

Tensor batch_norm_eval_scale(const Tensor& weight, const BatchNormSaved& saved) {
  return weight.defined() ? mul(weight, saved.invstd) : saved.invstd;
}

BatchNormGrads batch_norm_backward(const Tensor& g, const Tensor& x, const Tensor& weight,
                                   const BatchNormSaved& saved, bool param_grads) {
  if (g.shape() != x.shape()) {
    // Batched cotangents through eval-mode BN: dx = g * weight[c] * invstd[c], the per-channel
    // scale formed once and broadcast over the K gradients (training couples the batch).
    // Through the epilogue first: d = g gated by the ReLU's output, broadcast the same way.
    PRM_CHECK(!saved.training, "batch_norm_backward: batched cotangents need eval mode");
    Shape channel(x.dim(), 1);
    channel[1] = x.size(1);
    const Tensor scale = batch_norm_eval_scale(weight, saved);
    const Tensor d = saved.relu_out.defined() ? relu_backward(g, saved.relu_out) : g;
    return {mul(d, reshape(scale, channel)), Tensor(), Tensor(), saved.residual ? d : Tensor()};
  }
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t HW = x.dim() == 4 ? x.size(2) * x.size(3) : 1;
  const Device dev = x.device();
  BatchNormGrads grads;
  grads.dx = Tensor::empty(x.shape(), x.dtype(), dev);
  if (saved.residual) grads.dresidual = Tensor::empty(x.shape(), x.dtype(), dev);
  // The sums are dbias and dweight, and the training-mode dx needs them; eval-mode dx does not.
  const bool sums = saved.training || param_grads;
  Tensor sum_g = Tensor::empty({C}, x.dtype(), dev), sum_gx = Tensor::empty({C}, x.dtype(), dev);
  if (param_grads) {
    grads.dbias = sum_g;
    grads.dweight = sum_gx;
  }
  PRM_DISPATCH_FLOAT(x.dtype(), "batch_norm_backward", {
    scalar_t *sg = sum_g.data<scalar_t>(), *sgx = sum_gx.data<scalar_t>();
    const scalar_t *gp = g.data<scalar_t>(), *in = x.data<scalar_t>(),
                   *m = saved.mean.data<scalar_t>(), *s = saved.invstd.data<scalar_t>();
    const scalar_t* gate = ptr_or_null<scalar_t>(saved.relu_out);
    if (saved.training && !saved.group && dev == Device::cpu) {
      // The two launches below in one sweep over the channels (cpu::batch_norm_train_backward,
      // kernels/batch_norm.h), as the forward's sweep.
      cpu::batch_norm_train_backward(grads.dx.data<scalar_t>(),
                                     ptr_or_null<scalar_t>(grads.dresidual), sg, sgx, gp, gate,
                                     in, m, s, ptr_or_null<scalar_t>(weight), N, C, HW);
    } else {
      if (sums) {
        launch<BatchNormBackwardReduce, scalar_t>(dev, sg, sgx, gp, gate, in, m, s, N, C, HW);
      }
      int64_t M = N * HW;
      Tensor group_sums;  // synchronised: [sum g, sum g * xhat] over the group, for dx only
      if (saved.training && saved.group) {
        group_sums = Tensor::empty({2 * C}, x.dtype(), dev);
        scalar_t* both = group_sums.data<scalar_t>();
        device_copy(both, dev, sg, dev, sizeof(scalar_t) * C);
        device_copy(both + C, dev, sgx, dev, sizeof(scalar_t) * C);
        saved.group->sum(group_sums);
        sg = both;
        sgx = both + C;
        M = saved.group_values;
      }
      launch<BatchNormBackwardInput, scalar_t>(
          dev, grads.dx.data<scalar_t>(), ptr_or_null<scalar_t>(grads.dresidual), gp, gate, in, m,
          s, ptr_or_null<scalar_t>(weight), sums ? sg : nullptr, sums ? sgx : nullptr,
          saved.training, N, C, HW, M);
    }
  });
  // A placeholder's output depends on the group's statistics, so the formula gives it a nonzero
  // dx even with g = 0; but it stands for no sample, and its input gradient must not reach the
  // layers below (their weight gradients would take it in). After the group's sums, which every
  // rank takes part in.
  if (saved.placeholder) grads.dx.fill_(0);
  return grads;
}

namespace {

// The graph node's name: what the op fuses.
const char* batch_norm_node_name(const BatchNormSaved& saved) {
  if (saved.group) return "sync_batch_norm";
  if (saved.residual) return saved.relu_out.defined() ? "batch_norm_add_relu" : "batch_norm_add";
  return saved.relu_out.defined() ? "batch_norm_relu" : "batch_norm";
}

}  // namespace

Tensor batch_norm_act(const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Tensor& running_mean, const Tensor& running_var, bool training,
                      const BatchNormEpilogue& epilogue, double momentum, double eps,
                      BatchNormGroup* group) {
  BatchNormSaved saved;
  Tensor out = batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum,
                                  eps, &saved, group, epilogue);
  // Only defined tensors are graph edges; the gradients come back in the same order.
  std::vector<Tensor> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  if (saved.residual) inputs.push_back(epilogue.residual);
  BatchNormNodeSaved node;
  node.x = x.detach();
  node.weight = weight.defined() ? weight.detach() : Tensor();
  node.has_bias = bias.defined();
  node.param_grads = (weight.defined() && weight.requires_grad()) ||
                     (bias.defined() && bias.requires_grad());
  node.saved = saved;
  node.producer = x.grad_fn().get();
  attach_grad_fn(
      out, batch_norm_node_name(saved), "batch_norm_backward", inputs,
      [node](const Tensor& g) { return batch_norm_node_backward(node, g); }, node);
  return out;
}

std::vector<Tensor> batch_norm_node_grads(const BatchNormNodeSaved& node,
                                          const BatchNormGrads& d) {
  std::vector<Tensor> grads{d.dx};
  if (node.weight.defined()) grads.push_back(d.dweight);
  if (node.has_bias) grads.push_back(d.dbias);
  if (node.saved.residual) grads.push_back(d.dresidual);
  return grads;
}

std::vector<Tensor> batch_norm_node_backward(const BatchNormNodeSaved& node, const Tensor& g) {
  return batch_norm_node_grads(
      node, batch_norm_backward(g, node.x, node.weight, node.saved, node.param_grads));
}

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum, double eps, BatchNormGroup* group) {
  return batch_norm_act(x, weight, bias, running_mean, running_var, training, {}, momentum, eps,
                        group);
}

}  // namespace prm
