#include "tensor/ops/pooling.h"

#include "kernels/pooling.h"
#include "tensor/allocator.h"
#include "tensor/autograd.h"

namespace prm {

Tensor max_pool2d_forward(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding,
                          MaxPool2dSaved* saved) {
  check_float("max_pool2d", x);
  check_dim("max_pool2d", x, 4, "input [N, C, H, W]");
  PRM_CHECK(kernel > 0 && stride > 0 && padding >= 0, "max_pool2d: kernel ", kernel, ", stride ",
            stride, ", padding ", padding, " must be positive (padding non-negative)");
  PRM_CHECK(padding <= kernel / 2, "max_pool2d: padding ", padding,
            " must be at most half the kernel ", kernel);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  PRM_CHECK(H + 2 * padding >= kernel && W + 2 * padding >= kernel, "max_pool2d: input ",
            x.shape_str(), " is smaller than the kernel ", kernel, " with padding ", padding);
  const int64_t OH = (H + 2 * padding - kernel) / stride + 1;
  const int64_t OW = (W + 2 * padding - kernel) / stride + 1;

  Tensor out = Tensor::empty({N, C, OH, OW}, x.dtype(), x.device());
  // The window's argmax is for the backward; without one to come (no `saved`), the CPU body
  // takes the maximum alone (the CUDA one always writes both).
  const bool want_argmax = saved != nullptr || x.device() != Device::cpu;
  Tensor argmax = want_argmax ? Tensor::empty({N, C, OH, OW}, DType::i64, x.device()) : Tensor();
  PRM_DISPATCH_FLOAT(x.dtype(), "max_pool2d", {
    launch<MaxPool2dForward, scalar_t>(x.device(), out.data<scalar_t>(),
                                       want_argmax ? argmax.data<int64_t>() : nullptr,
                                       x.data<scalar_t>(), N, C, H, W, OH, OW, kernel, stride,
                                       padding);
  });
  if (saved) *saved = {argmax, x.shape(), kernel, stride, padding};
  return out;
}

Tensor max_pool2d_backward(const Tensor& g, const MaxPool2dSaved& s) {
  const Shape dx_shape = grad_shape(s.x_shape);
  const int64_t N = dx_shape[0], C = dx_shape[1], H = dx_shape[2], W = dx_shape[3];
  // Batched cotangents: the batch-1 argmax planes repeat for each of the K gradients.
  Tensor argmax = s.argmax;
  if (N != s.argmax.size(0)) {
    argmax = Tensor::empty({N, C, g.size(2), g.size(3)}, DType::i64, g.device());
    const size_t bytes = s.argmax.numel() * sizeof(int64_t);
    for (int64_t k = 0; k < N; ++k)
      device_copy(static_cast<char*>(argmax.raw_data()) + k * bytes, g.device(),
                  s.argmax.raw_data(), g.device(), bytes);
  }
  Tensor dx = Tensor::empty(dx_shape, g.dtype(), g.device());
  PRM_DISPATCH_FLOAT(g.dtype(), "max_pool2d_backward", {
    launch<MaxPool2dBackward, scalar_t>(g.device(), dx.data<scalar_t>(), g.data<scalar_t>(),
                                        argmax.data<int64_t>(), N, C, H, W, g.size(2),
                                        g.size(3), s.kernel, s.stride, s.padding);
  });
  return dx;
}

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  if (!needs_grad({x})) return max_pool2d_forward(x, kernel, stride, padding, nullptr);
  MaxPool2dSaved saved;
  Tensor out = max_pool2d_forward(x, kernel, stride, padding, &saved);
  attach_grad_fn(out, "max_pool2d", "max_pool2d_backward", {x}, [saved](const Tensor& g) {
    return std::vector<Tensor>{max_pool2d_backward(g, saved)};
  });
  return out;
}

Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t out_h, int64_t out_w) {
  check_float("adaptive_avg_pool2d", x);
  check_dim("adaptive_avg_pool2d", x, 4, "input [N, C, H, W]");
  PRM_CHECK(out_h > 0 && out_w > 0, "adaptive_avg_pool2d: output size ", out_h, "x", out_w,
            " must be positive, input ", x.shape_str());
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  PRM_CHECK(H > 0 && W > 0, "adaptive_avg_pool2d: empty spatial input ", x.shape_str());
  Tensor out = Tensor::empty({N, C, out_h, out_w}, x.dtype(), x.device());
  PRM_DISPATCH_FLOAT(x.dtype(), "adaptive_avg_pool2d", {
    launch<AdaptiveAvgPool2dForward, scalar_t>(x.device(), out.data<scalar_t>(),
                                               x.data<scalar_t>(), N, C, H, W, out_h, out_w);
  });
  return out;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& g, const Shape& x_shape) {
  const Shape dx_shape = grad_shape(x_shape);
  const int64_t N = dx_shape[0], C = dx_shape[1], H = dx_shape[2], W = dx_shape[3];
  Tensor dx = Tensor::empty(dx_shape, g.dtype(), g.device());
  PRM_DISPATCH_FLOAT(g.dtype(), "adaptive_avg_pool2d_backward", {
    launch<AdaptiveAvgPool2dBackward, scalar_t>(g.device(), dx.data<scalar_t>(),
                                                g.data<scalar_t>(), N, C, H, W, g.size(2),
                                                g.size(3));
  });
  return dx;
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  Tensor out = adaptive_avg_pool2d_forward(x, out_h, out_w);
  attach_grad_fn(out, "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", {x},
                 [x_shape = x.shape()](const Tensor& g) {
                   return std::vector<Tensor>{adaptive_avg_pool2d_backward(g, x_shape)};
                 });
  return out;
}

Tensor global_avg_pool2d(const Tensor& x) { return adaptive_avg_pool2d(x, 1, 1); }

}  // namespace prm
