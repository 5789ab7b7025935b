#include "tensor/ops/batch_norm.h"

#include "kernels/batch_norm.h"
#include "kernels/common.h"
#include "tensor/autograd.h"

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

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum, double eps) {
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

  const int64_t N = x.size(0), C = x.size(1);
  const int64_t HW = x.dim() == 4 ? x.size(2) * x.size(3) : 1;
  const int64_t M = N * HW;
  PRM_CHECK(!training || M > 1,
            "batch_norm: training needs more than one value per channel, got input ",
            x.shape_str());

  const bool cuda = x.is_cuda();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean, invstd = Tensor::empty({C}, x.dtype(), x.device());
  PRM_DISPATCH_FLOAT(x.dtype(), "batch_norm", {
    scalar_t* rm = ptr_or_null<scalar_t>(running_mean);
    scalar_t* rv = ptr_or_null<scalar_t>(running_var);
    if (training) {
      mean = Tensor::empty({C}, x.dtype(), x.device());
      Tensor var = Tensor::empty({C}, x.dtype(), x.device());
      scalar_t *m = mean.data<scalar_t>(), *v = var.data<scalar_t>();
      scalar_t* s = invstd.data<scalar_t>();
      const scalar_t* in = x.data<scalar_t>();
      if (cuda) {
        PRM_CUDA_ONLY(cuda::batch_norm_stats(m, v, in, N, C, HW);
                      cuda::batch_norm_finalize(s, rm, rv, m, v, C, M, momentum, eps));
      } else {
        cpu::batch_norm_stats(m, v, in, N, C, HW);
        cpu::batch_norm_finalize(s, rm, rv, m, v, C, M, momentum, eps);
      }
    } else {
      // A snapshot: the running buffers may move before this node's backward runs.
      mean = running_mean.detach().clone();
      scalar_t* s = invstd.data<scalar_t>();
      scalar_t* no_update = nullptr;
      if (cuda) {
        PRM_CUDA_ONLY(
            cuda::batch_norm_finalize(s, no_update, no_update, rm, rv, C, M, momentum, eps));
      } else {
        cpu::batch_norm_finalize(s, no_update, no_update, rm, rv, C, M, momentum, eps);
      }
    }
    scalar_t* o = out.data<scalar_t>();
    const scalar_t *in = x.data<scalar_t>(), *m = mean.data<scalar_t>(),
                   *s = invstd.data<scalar_t>();
    const scalar_t *w = ptr_or_null<scalar_t>(weight), *b = ptr_or_null<scalar_t>(bias);
    if (cuda) {
      PRM_CUDA_ONLY(cuda::batch_norm_apply(o, in, m, s, w, b, N, C, HW));
    } else {
      cpu::batch_norm_apply(o, in, m, s, w, b, N, C, HW);
    }
  });

  // Only defined tensors are graph edges; the gradients come back in the same order.
  std::vector<Tensor> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  attach_grad_fn(
      out, "batch_norm", inputs,
      [x, weight, bias, mean, invstd, training, N, C, HW](const Tensor& g) {
        Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
        Tensor sum_g = Tensor::empty({C}, x.dtype(), x.device());
        Tensor sum_g_xhat = Tensor::empty({C}, x.dtype(), x.device());
        PRM_DISPATCH_FLOAT(x.dtype(), "batch_norm backward", {
          scalar_t *dxp = dx.data<scalar_t>(), *sg = sum_g.data<scalar_t>(),
                   *sgx = sum_g_xhat.data<scalar_t>();
          const scalar_t *gp = g.data<scalar_t>(), *in = x.data<scalar_t>(),
                         *m = mean.data<scalar_t>(), *s = invstd.data<scalar_t>(),
                         *w = ptr_or_null<scalar_t>(weight);
          if (x.is_cuda()) {
            PRM_CUDA_ONLY(
                cuda::batch_norm_backward_reduce(sg, sgx, gp, in, m, s, N, C, HW);
                cuda::batch_norm_backward_input(dxp, gp, in, m, s, w, sg, sgx, training, N, C, HW));
          } else {
            cpu::batch_norm_backward_reduce(sg, sgx, gp, in, m, s, N, C, HW);
            cpu::batch_norm_backward_input(dxp, gp, in, m, s, w, sg, sgx, training, N, C, HW);
          }
        });
        std::vector<Tensor> grads{dx};
        if (weight.defined()) grads.push_back(sum_g_xhat);
        if (bias.defined()) grads.push_back(sum_g);
        return grads;
      });
  return out;
}

}  // namespace prm
