#include "tensor/ops/upsample.h"

#include <cmath>

#include "kernels/upsample.h"
#include "kernels/upsample_math.h"
#include "tensor/autograd.h"

namespace prm {

Tensor upsample_bilinear_forward(const Tensor& x, const UpsampleSaved& s) {
  check_float("upsample_bilinear", x);
  check_dim("upsample_bilinear", x, 4, "input [N, C, H, W]");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  PRM_CHECK(H > 0 && W > 0 && s.out_h > 0 && s.out_w > 0, "upsample_bilinear: input ",
            x.shape_str(), " and output size ", s.out_h, "x", s.out_w, " must be non-empty");
  Tensor out = Tensor::empty({N, C, s.out_h, s.out_w}, x.dtype(), x.device());
  PRM_DISPATCH_FLOAT(x.dtype(), "upsample_bilinear", {
    const scalar_t sh = bilinear_coordinate_scale<scalar_t>(H, s.out_h, s.align_corners, s.scale);
    const scalar_t sw = bilinear_coordinate_scale<scalar_t>(W, s.out_w, s.align_corners, s.scale);
    launch<UpsampleBilinearForward, scalar_t>(x.device(), out.data<scalar_t>(),
                                              x.data<scalar_t>(), N, C, H, W, s.out_h, s.out_w, sh,
                                              sw, s.align_corners);
  });
  return out;
}

Tensor upsample_bilinear_backward(const Tensor& g, const Shape& x_shape, const UpsampleSaved& s) {
  const Shape dx_shape = grad_shape(x_shape);
  const int64_t N = dx_shape[0], C = dx_shape[1], H = dx_shape[2], W = dx_shape[3];
  Tensor dx = Tensor::empty(dx_shape, g.dtype(), g.device());
  PRM_DISPATCH_FLOAT(g.dtype(), "upsample_bilinear_backward", {
    const scalar_t sh = bilinear_coordinate_scale<scalar_t>(H, s.out_h, s.align_corners, s.scale);
    const scalar_t sw = bilinear_coordinate_scale<scalar_t>(W, s.out_w, s.align_corners, s.scale);
    launch<UpsampleBilinearBackward, scalar_t>(g.device(), dx.data<scalar_t>(), g.data<scalar_t>(),
                                               N, C, H, W, s.out_h, s.out_w, sh, sw,
                                               s.align_corners);
  });
  return dx;
}

namespace {

Tensor upsample_bilinear_op(const Tensor& x, const UpsampleSaved& saved) {
  Tensor out = upsample_bilinear_forward(x, saved);
  attach_grad_fn(out, "upsample_bilinear", "upsample_bilinear_backward", {x},
                 [x_shape = x.shape(), saved](const Tensor& g) {
                   return std::vector<Tensor>{upsample_bilinear_backward(g, x_shape, saved)};
                 });
  return out;
}

}  // namespace

Tensor upsample_bilinear(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners) {
  return upsample_bilinear_op(x, {out_h, out_w, align_corners, 0.0});
}

Tensor upsample_bilinear_scale(const Tensor& x, double scale, bool align_corners) {
  check_dim("upsample_bilinear_scale", x, 4, "input [N, C, H, W]");
  PRM_CHECK(scale > 0 && std::isfinite(scale), "upsample_bilinear_scale: scale ", scale,
            " must be positive, input ", x.shape_str());
  const int64_t OH = static_cast<int64_t>(std::floor(static_cast<double>(x.size(2)) * scale));
  const int64_t OW = static_cast<int64_t>(std::floor(static_cast<double>(x.size(3)) * scale));
  return upsample_bilinear_op(x, {OH, OW, align_corners, scale});
}

}  // namespace prm
