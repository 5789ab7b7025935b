// conv2d_backward_input_scaled (tensor/ops/conv2d.h): in ⊙ conv_transpose(g ⊙ out, W), the
// excitation rule's sandwich with the products fused into the CPU convolution's copies and col2im.
// It must give, bit for bit, what the three separate ops give, on every CPU path: images merged
// into one GEMM (few pixels, a batch), one GEMM per image (many pixels), 1x1 and 3x3 windows,
// strides 1 and 2, factors shared by the batch or one per image, float and double; and with a
// per-output-channel factor first, bit for bit the four ops. One small case
// is also checked against a naive loop written here.
#include <random>
#include <vector>

#include "helpers.h"
#include "tensor/ops/conv2d.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/shape.h"

using namespace prm;

namespace {

struct Case {
  int64_t N, C, H, W, O, k, stride, pad;
  bool shared;  // factors of batch 1
};

void check_case(const Case& c, DType dtype) {
  CAPTURE(c.N);
  CAPTURE(c.H);
  CAPTURE(c.k);
  CAPTURE(c.stride);
  CAPTURE(c.shared);
  std::mt19937_64 rng(static_cast<uint64_t>(c.N * 1000 + c.H * 10 + c.k));
  Conv2dOptions opt;
  opt.stride = c.stride;
  opt.padding = c.pad;
  const Tensor w = Tensor::randn({c.O, c.C, c.k, c.k}, rng, dtype);
  const int64_t Ho = (c.H + 2 * c.pad - c.k) / c.stride + 1;
  const int64_t Wo = (c.W + 2 * c.pad - c.k) / c.stride + 1;
  const Tensor g = Tensor::randn({c.N, c.O, Ho, Wo}, rng, dtype);
  const int64_t fb = c.shared ? 1 : c.N;
  const Tensor out_scale = Tensor::randn({fb, c.O, Ho, Wo}, rng, dtype);
  const Tensor in_scale = Tensor::randn({fb, c.C, c.H, c.W}, rng, dtype);
  const Shape shape{c.N, c.C, c.H, c.W};
  const Tensor fused = conv2d_backward_input_scaled(g, out_scale, w, in_scale, shape, opt);
  const Tensor apart = mul(in_scale, conv2d_backward_input(mul(g, out_scale), w, shape, opt));
  REQUIRE(fused.shape() == apart.shape());
  CHECK(fused.to_vector() == apart.to_vector());
  // With a per-output-channel factor first (a batch norm's deferred scale): the four ops.
  const Tensor channel = Tensor::randn({c.O}, rng, dtype);
  const Tensor fused4 =
      conv2d_backward_input_scaled(g, out_scale, w, in_scale, shape, opt, channel);
  const Tensor apart4 = mul(
      in_scale,
      conv2d_backward_input(mul(mul(g, reshape(channel, {1, c.O, 1, 1})), out_scale), w, shape,
                            opt));
  REQUIRE(fused4.shape() == apart4.shape());
  CHECK(fused4.to_vector() == apart4.to_vector());
  CHECK(fused4.to_vector() != fused.to_vector());  // the factor is not lost
}

}  // namespace

TEST_CASE("conv2d_backward_input_scaled: bit for bit the three ops, on every CPU path") {
  const std::vector<Case> cases = {
      {4, 6, 10, 9, 5, 3, 1, 1, true},    // merged images, 3x3
      {4, 6, 10, 9, 5, 3, 1, 1, false},   // merged, factors per image
      {3, 6, 11, 11, 5, 3, 2, 1, true},   // merged, stride 2
      {5, 7, 8, 8, 4, 1, 1, 0, true},     // merged, pointwise
      {5, 7, 8, 8, 4, 1, 1, 0, false},    // merged, pointwise, per image
      {2, 3, 48, 50, 4, 3, 1, 1, true},   // one GEMM per image (2400 pixels), 3x3
      {2, 3, 48, 50, 4, 3, 1, 1, false},  // per image, factors per image
      {2, 3, 96, 96, 4, 3, 2, 1, true},   // per image, stride 2
      {2, 3, 48, 48, 4, 1, 1, 0, true},   // per image, pointwise (in place)
      {2, 3, 48, 48, 4, 1, 1, 0, false},  // per image, pointwise, per image
      {1, 4, 9, 9, 3, 3, 1, 1, true},     // one image
      {3, 4, 9, 9, 3, 1, 2, 0, true},     // 1x1 stride 2 (not pointwise: im2col path)
  };
  for (const Case& c : cases) {
    check_case(c, DType::f32);
    check_case(c, DType::f64);
  }
}

TEST_CASE("conv2d_backward_input_scaled: the same under bf16 GEMM inputs (the unpacked path)") {
  // With bf16 inputs our GEMM reads dy as a matrix (rounded copies), so the factors are passes
  // of their own instead of riding on the packing: still the four ops, bit for bit.
  set_matmul_precision(Precision::bf16);
  struct Restore {
    ~Restore() { set_matmul_precision(Precision::fp32); }
  } restore;
  check_case({2, 3, 48, 50, 4, 3, 1, 1, true}, DType::f32);   // one GEMM per image
  check_case({2, 3, 48, 48, 4, 1, 1, 0, false}, DType::f32);  // pointwise, per image
  check_case({4, 6, 10, 9, 5, 3, 1, 1, true}, DType::f32);    // merged images
}

TEST_CASE("conv2d_backward_input_scaled: a small case against a naive loop") {
  // N 2, C 2, 4x4, O 3, 3x3, stride 1, pad 1; factors shared by the batch.
  const int64_t N = 2, C = 2, H = 4, W = 4, O = 3, k = 3;
  std::mt19937_64 rng(11);
  const Tensor w = Tensor::randn({O, C, k, k}, rng, DType::f64);
  const Tensor g = Tensor::randn({N, O, H, W}, rng, DType::f64);
  const Tensor os = Tensor::randn({1, O, H, W}, rng, DType::f64);
  const Tensor is = Tensor::randn({1, C, H, W}, rng, DType::f64);
  Conv2dOptions opt;
  opt.padding = 1;
  const std::vector<double> got =
      conv2d_backward_input_scaled(g, os, w, is, {N, C, H, W}, opt).to_vector();
  const std::vector<double> wv = w.to_vector(), gv = g.to_vector(), ov = os.to_vector(),
                            iv = is.to_vector();
  std::vector<double> want(N * C * H * W, 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          double sum = 0;
          for (int64_t o = 0; o < O; ++o)
            for (int64_t ki = 0; ki < k; ++ki)
              for (int64_t kj = 0; kj < k; ++kj) {
                const int64_t oy = y + 1 - ki, ox = x + 1 - kj;  // y = oy - pad + ki
                if (oy < 0 || oy >= H || ox < 0 || ox >= W) continue;
                const int64_t gi = ((n * O + o) * H + oy) * W + ox;
                sum += wv[((o * C + c) * k + ki) * k + kj] * gv[gi] * ov[gi - n * O * H * W];
              }
          want[((n * C + c) * H + y) * W + x] = iv[(c * H + y) * W + x] * sum;
        }
  check_close(got, want, 1e-12, 1e-12);
}

TEST_CASE("conv2d_backward_input_scaled: factors of another shape are refused") {
  std::mt19937_64 rng(3);
  const Tensor w = Tensor::randn({3, 2, 3, 3}, rng);
  const Tensor g = Tensor::randn({2, 3, 4, 4}, rng);
  const Tensor good_out = Tensor::randn({1, 3, 4, 4}, rng);
  const Tensor good_in = Tensor::randn({2, 2, 4, 4}, rng);
  Conv2dOptions opt;
  opt.padding = 1;
  CHECK(error_of([&] {
          conv2d_backward_input_scaled(g, Tensor::randn({1, 3, 4, 5}, rng), w, good_in,
                                       {2, 2, 4, 4}, opt);
        }).find("out_scale [1, 3, 4, 5] is neither") != std::string::npos);
  CHECK(error_of([&] {
          conv2d_backward_input_scaled(g, good_out, w, Tensor::randn({3, 2, 4, 4}, rng),
                                       {2, 2, 4, 4}, opt);
        }).find("in_scale [3, 2, 4, 4] is neither") != std::string::npos);
  CHECK(error_of([&] {
          conv2d_backward_input_scaled(g, good_out, w, good_in, {2, 2, 4, 4}, opt,
                                       Tensor::randn({2}, rng));
        }).find("channel_scale [2] is not [3]") != std::string::npos);
}
