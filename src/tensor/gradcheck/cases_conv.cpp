// Gradient-check cases for conv2d and matmul. Both are linear in each input, so central
// differences are exact up to rounding and a large step (1e-3) keeps that rounding small.
// Sizes are awkward on purpose (odd H and W, channels not a multiple of 32, batch 3) and small
// (gradcheck is O(numel^2)).
#include "tensor/gradcheck/gradcheck.h"
#include "tensor/ops/conv2d.h"
#include "tensor/ops/matmul.h"

namespace prm {

namespace {

using Inputs = std::vector<Tensor>;

Tensor leaf(Tensor t) { return t.set_requires_grad(true); }

void add_conv2d_case(std::vector<GradcheckCase>& cases, const char* variant, Shape x_shape,
                     Shape w_shape, bool with_bias, Conv2dOptions opt) {
  cases.push_back(
      {"conv2d", variant,
       [=](DType dt, std::mt19937_64& rng) {
         Inputs in{leaf(Tensor::randn(x_shape, rng, dt)), leaf(Tensor::randn(w_shape, rng, dt))};
         if (with_bias) in.push_back(leaf(Tensor::randn({w_shape[0]}, rng, dt)));
         return in;
       },
       [=](const Inputs& in) {
         return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), opt);
       },
       1e-3, 1e-7});
}

void add_matmul_case(std::vector<GradcheckCase>& cases, const char* variant, Shape a_shape,
                     Shape b_shape) {
  cases.push_back({"matmul", variant,
                   [=](DType dt, std::mt19937_64& rng) {
                     return Inputs{leaf(Tensor::randn(a_shape, rng, dt)),
                                   leaf(Tensor::randn(b_shape, rng, dt))};
                   },
                   [](const Inputs& in) { return matmul(in[0], in[1]); }, 1e-3, 1e-7});
}

}  // namespace

void add_conv_cases(std::vector<GradcheckCase>& cases) {
  add_conv2d_case(cases, "stride2_pad1", {2, 3, 7, 6}, {4, 3, 3, 3}, true, {2, 1, 1});
  add_conv2d_case(cases, "dilation2_pad2", {1, 2, 9, 8}, {3, 2, 3, 3}, true, {1, 2, 2});
  add_conv2d_case(cases, "no_bias_3x2_kernel", {2, 3, 5, 6}, {5, 3, 3, 2}, false, {1, 1, 1});
  add_conv2d_case(cases, "pointwise_1x1", {2, 5, 4, 3}, {6, 5, 1, 1}, true, {1, 0, 1});
  add_conv2d_case(cases, "1x1_stride2", {2, 4, 5, 5}, {3, 4, 1, 1}, false, {2, 0, 1});
  add_conv2d_case(cases, "batch3_odd_hw_c5_c7", {3, 5, 7, 5}, {7, 5, 3, 3}, true, {1, 1, 1});
  add_conv2d_case(cases, "7x7_stride2_pad3", {1, 3, 11, 9}, {2, 3, 7, 7}, true, {2, 3, 1});
  add_matmul_case(cases, "2d_5x7_7x3", {5, 7}, {7, 3});
  add_matmul_case(cases, "batched_3x4x5_3x5x6", {3, 4, 5}, {3, 5, 6});
}

}  // namespace prm
