#include "tensor/ops/pooling.h"

#include "kernels/common.h"
#include "kernels/pooling.h"
#include "tensor/autograd.h"

namespace prm {

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
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
  Tensor argmax = Tensor::empty({N, C, OH, OW}, DType::i64, x.device());
  PRM_DISPATCH_FLOAT(x.dtype(), "max_pool2d", {
    scalar_t* o = out.data<scalar_t>();
    int64_t* a = argmax.data<int64_t>();
    const scalar_t* in = x.data<scalar_t>();
    if (x.is_cuda()) {
      PRM_CUDA_ONLY(
          cuda::max_pool2d_forward(o, a, in, N, C, H, W, OH, OW, kernel, stride, padding));
    } else {
      cpu::max_pool2d_forward(o, a, in, N, C, H, W, OH, OW, kernel, stride, padding);
    }
  });

  const Shape in_shape = x.shape();
  const DType dtype = x.dtype();
  const Device device = x.device();
  attach_grad_fn(
      out, "max_pool2d", {x},
      [argmax, in_shape, dtype, device, kernel, stride, padding](const Tensor& g) {
        const int64_t N = in_shape[0], C = in_shape[1], H = in_shape[2], W = in_shape[3];
        const int64_t OH = g.size(2), OW = g.size(3);
        Tensor dx = Tensor::empty(in_shape, dtype, device);
        PRM_DISPATCH_FLOAT(dtype, "max_pool2d backward", {
          scalar_t* d = dx.data<scalar_t>();
          const scalar_t* gp = g.data<scalar_t>();
          const int64_t* a = argmax.data<int64_t>();
          if (device == Device::cuda) {
            PRM_CUDA_ONLY(
                cuda::max_pool2d_backward(d, gp, a, N, C, H, W, OH, OW, kernel, stride, padding));
          } else {
            cpu::max_pool2d_backward(d, gp, a, N, C, H, W, OH, OW, kernel, stride, padding);
          }
        });
        return std::vector<Tensor>{dx};
      });
  return out;
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  check_float("adaptive_avg_pool2d", x);
  check_dim("adaptive_avg_pool2d", x, 4, "input [N, C, H, W]");
  PRM_CHECK(out_h > 0 && out_w > 0, "adaptive_avg_pool2d: output size ", out_h, "x", out_w,
            " must be positive, input ", x.shape_str());
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  PRM_CHECK(H > 0 && W > 0, "adaptive_avg_pool2d: empty spatial input ", x.shape_str());
  const int64_t OH = out_h, OW = out_w;

  Tensor out = Tensor::empty({N, C, OH, OW}, x.dtype(), x.device());
  PRM_DISPATCH_FLOAT(x.dtype(), "adaptive_avg_pool2d", {
    scalar_t* o = out.data<scalar_t>();
    const scalar_t* in = x.data<scalar_t>();
    if (x.is_cuda()) {
      PRM_CUDA_ONLY(cuda::adaptive_avg_pool2d_forward(o, in, N, C, H, W, OH, OW));
    } else {
      cpu::adaptive_avg_pool2d_forward(o, in, N, C, H, W, OH, OW);
    }
  });

  const Shape in_shape = x.shape();
  const DType dtype = x.dtype();
  const Device device = x.device();
  attach_grad_fn(out, "adaptive_avg_pool2d", {x}, [in_shape, dtype, device](const Tensor& g) {
    const int64_t N = in_shape[0], C = in_shape[1], H = in_shape[2], W = in_shape[3];
    const int64_t OH = g.size(2), OW = g.size(3);
    Tensor dx = Tensor::empty(in_shape, dtype, device);
    PRM_DISPATCH_FLOAT(dtype, "adaptive_avg_pool2d backward", {
      scalar_t* d = dx.data<scalar_t>();
      const scalar_t* gp = g.data<scalar_t>();
      if (device == Device::cuda) {
        PRM_CUDA_ONLY(cuda::adaptive_avg_pool2d_backward(d, gp, N, C, H, W, OH, OW));
      } else {
        cpu::adaptive_avg_pool2d_backward(d, gp, N, C, H, W, OH, OW);
      }
    });
    return std::vector<Tensor>{dx};
  });
  return out;
}

Tensor global_avg_pool2d(const Tensor& x) { return adaptive_avg_pool2d(x, 1, 1); }

}  // namespace prm
