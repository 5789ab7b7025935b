#include "tensor/ops/upsample.h"

#include <cmath>

#include "kernels/common.h"
#include "kernels/upsample.h"
#include "kernels/upsample_math.h"
#include "tensor/autograd.h"

namespace prm {

namespace {

// scale_factor <= 0: none given (sizes only).
Tensor upsample_bilinear_impl(const Tensor& x, int64_t OH, int64_t OW, bool align_corners,
                              double scale_factor) {
  check_float("upsample_bilinear", x);
  check_dim("upsample_bilinear", x, 4, "input [N, C, H, W]");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  PRM_CHECK(H > 0 && W > 0 && OH > 0 && OW > 0, "upsample_bilinear: input ", x.shape_str(),
            " and output size ", OH, "x", OW, " must be non-empty");

  Tensor out = Tensor::empty({N, C, OH, OW}, x.dtype(), x.device());
  PRM_DISPATCH_FLOAT(x.dtype(), "upsample_bilinear", {
    const scalar_t sh = bilinear_coordinate_scale<scalar_t>(H, OH, align_corners, scale_factor);
    const scalar_t sw = bilinear_coordinate_scale<scalar_t>(W, OW, align_corners, scale_factor);
    scalar_t* o = out.data<scalar_t>();
    const scalar_t* in = x.data<scalar_t>();
    if (x.is_cuda()) {
      PRM_CUDA_ONLY(
          cuda::upsample_bilinear_forward(o, in, N, C, H, W, OH, OW, sh, sw, align_corners));
    } else {
      cpu::upsample_bilinear_forward(o, in, N, C, H, W, OH, OW, sh, sw, align_corners);
    }
  });

  const Shape in_shape = x.shape();
  const DType dtype = x.dtype();
  const Device device = x.device();
  attach_grad_fn(
      out, "upsample_bilinear", {x},
      [in_shape, dtype, device, align_corners, scale_factor](const Tensor& g) {
        const int64_t N = in_shape[0], C = in_shape[1], H = in_shape[2], W = in_shape[3];
        const int64_t OH = g.size(2), OW = g.size(3);
        Tensor dx = Tensor::empty(in_shape, dtype, device);
        PRM_DISPATCH_FLOAT(dtype, "upsample_bilinear backward", {
          const scalar_t sh =
              bilinear_coordinate_scale<scalar_t>(H, OH, align_corners, scale_factor);
          const scalar_t sw =
              bilinear_coordinate_scale<scalar_t>(W, OW, align_corners, scale_factor);
          scalar_t* d = dx.data<scalar_t>();
          const scalar_t* gp = g.data<scalar_t>();
          if (device == Device::cuda) {
            PRM_CUDA_ONLY(
                cuda::upsample_bilinear_backward(d, gp, N, C, H, W, OH, OW, sh, sw, align_corners));
          } else {
            cpu::upsample_bilinear_backward(d, gp, N, C, H, W, OH, OW, sh, sw, align_corners);
          }
        });
        return std::vector<Tensor>{dx};
      });
  return out;
}

}  // namespace

Tensor upsample_bilinear(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners) {
  return upsample_bilinear_impl(x, out_h, out_w, align_corners, 0.0);
}

Tensor upsample_bilinear_scale(const Tensor& x, double scale, bool align_corners) {
  check_dim("upsample_bilinear_scale", x, 4, "input [N, C, H, W]");
  PRM_CHECK(scale > 0 && std::isfinite(scale), "upsample_bilinear_scale: scale ", scale,
            " must be positive, input ", x.shape_str());
  const int64_t OH = static_cast<int64_t>(std::floor(static_cast<double>(x.size(2)) * scale));
  const int64_t OW = static_cast<int64_t>(std::floor(static_cast<double>(x.size(3)) * scale));
  return upsample_bilinear_impl(x, OH, OW, align_corners, scale);
}

}  // namespace prm
