// conv2d against a naive 7-loop convolution written here (forward, and the three gradients by
// the same loops run backwards), in float64 and float32; the raw pieces; error messages; and on
// CUDA the native engine against the CPU and the cuDNN engine against the native one.
#include <random>

#include "helpers.h"
#include "tensor/autograd.h"
#include "tensor/ops/conv2d.h"

using namespace prm;

namespace {

struct ConvCase {
  int64_t N, C, H, W, O, kh, kw;
  Conv2dOptions opt;
  bool bias;
  int64_t Ho() const {
    return (H + 2 * opt.padding - opt.dilation * (kh - 1) - 1) / opt.stride + 1;
  }
  int64_t Wo() const {
    return (W + 2 * opt.padding - opt.dilation * (kw - 1) - 1) / opt.stride + 1;
  }
};

const ConvCase kCases[] = {
    {2, 3, 7, 6, 4, 3, 3, {1, 1, 1}, true},     // same-size 3x3
    {3, 5, 9, 8, 6, 3, 3, {2, 1, 1}, true},     // stride 2, batch 3, odd H
    {1, 4, 11, 10, 3, 3, 2, {1, 2, 2}, false},  // dilation 2, non-square kernel
    {2, 6, 5, 7, 5, 1, 1, {1, 0, 1}, true},     // pointwise: im2col skipped
    {2, 6, 7, 7, 5, 1, 1, {2, 0, 1}, false},    // 1x1 stride 2 (ResNet downsample)
    {2, 5, 8, 11, 6, 1, 1, {3, 0, 2}, true},    // 1x1 stride 3, H and W not multiples of it
    {1, 3, 6, 5, 4, 1, 1, {2, 1, 1}, false},    // 1x1 stride 2 with padding (the general path)
    {1, 3, 13, 15, 4, 7, 7, {2, 3, 1}, true},   // ResNet stem shape
    {2, 33, 5, 4, 35, 3, 3, {1, 1, 1}, true},   // channels just past 32
    {1, 2, 5, 4, 3, 3, 3, {3, 4, 1}, true},     // stride 3, padding past the kernel: rows and
                                                // columns of col that are all padding
    {2, 2, 3, 9, 2, 2, 5, {2, 3, 2}, false},    // stride 2 with dilation 2 (the general path)
};

// The 7 loops: n, o, oy, ox, c, ki, kj. Each visits one (output, weight, input) triple; the
// backward accumulates dy * w into dx and dy * x into dw along the same visits.
struct Naive {
  std::vector<double> y, dx, dw, db;
};

Naive naive_conv(const ConvCase& k, const std::vector<double>& x, const std::vector<double>& w,
                 const std::vector<double>& b, const std::vector<double>& dy) {
  const int64_t Ho = k.Ho(), Wo = k.Wo();
  Naive r;
  r.y.assign(k.N * k.O * Ho * Wo, 0.0);
  r.dx.assign(x.size(), 0.0);
  r.dw.assign(w.size(), 0.0);
  r.db.assign(k.O, 0.0);
  for (int64_t n = 0; n < k.N; ++n)
    for (int64_t o = 0; o < k.O; ++o)
      for (int64_t oy = 0; oy < Ho; ++oy)
        for (int64_t ox = 0; ox < Wo; ++ox) {
          const int64_t yi = ((n * k.O + o) * Ho + oy) * Wo + ox;
          double acc = k.bias ? b[o] : 0.0;
          r.db[o] += dy[yi];
          for (int64_t c = 0; c < k.C; ++c)
            for (int64_t ki = 0; ki < k.kh; ++ki)
              for (int64_t kj = 0; kj < k.kw; ++kj) {
                const int64_t iy = oy * k.opt.stride - k.opt.padding + ki * k.opt.dilation;
                const int64_t ix = ox * k.opt.stride - k.opt.padding + kj * k.opt.dilation;
                if (iy < 0 || iy >= k.H || ix < 0 || ix >= k.W) continue;
                const int64_t xi = ((n * k.C + c) * k.H + iy) * k.W + ix;
                const int64_t wi = ((o * k.C + c) * k.kh + ki) * k.kw + kj;
                acc += w[wi] * x[xi];
                r.dx[xi] += dy[yi] * w[wi];
                r.dw[wi] += dy[yi] * x[xi];
              }
          r.y[yi] = acc;
        }
  return r;
}

std::vector<double> random_values(int64_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> dist;
  std::vector<double> v(n);
  for (double& e : v) e = dist(rng);
  return v;
}

// Runs conv2d forward and backward through autograd on `device` in `dt`, checks all four
// results against the naive loops.
void check_against_naive(const ConvCase& k, DType dt, Device device, double rtol, double atol) {
  std::mt19937_64 rng(42);
  const std::vector<double> xv = random_values(k.N * k.C * k.H * k.W, rng);
  const std::vector<double> wv = random_values(k.O * k.C * k.kh * k.kw, rng);
  const std::vector<double> bv = random_values(k.O, rng);
  const std::vector<double> dyv = random_values(k.N * k.O * k.Ho() * k.Wo(), rng);
  const Naive ref = naive_conv(k, xv, wv, bv, dyv);

  Tensor x = Tensor::from_vector(xv, {k.N, k.C, k.H, k.W}, dt, device).set_requires_grad(true);
  Tensor w = Tensor::from_vector(wv, {k.O, k.C, k.kh, k.kw}, dt, device).set_requires_grad(true);
  Tensor b = k.bias ? Tensor::from_vector(bv, {k.O}, dt, device).set_requires_grad(true) : Tensor();
  Tensor y = conv2d(x, w, b, k.opt);
  REQUIRE(y.shape() == Shape{k.N, k.O, k.Ho(), k.Wo()});
  CHECK(y.dtype() == dt);
  CHECK(y.device() == device);
  check_close(y, ref.y, rtol, atol);
  y.backward(Tensor::from_vector(dyv, y.shape(), dt, device));
  INFO("dx");
  check_close(x.grad(), ref.dx, rtol, atol);
  INFO("dw");
  check_close(w.grad(), ref.dw, rtol, atol);
  if (k.bias) {
    INFO("db");
    check_close(b.grad(), ref.db, rtol, atol);
  }
}

std::string describe(const ConvCase& k) {
  return str_cat("x [", k.N, ",", k.C, ",", k.H, ",", k.W, "] w [", k.O, ",", k.C, ",", k.kh, ",",
                 k.kw, "] stride ", k.opt.stride, " pad ", k.opt.padding, " dilation ",
                 k.opt.dilation, k.bias ? " bias" : "");
}

}  // namespace

TEST_CASE("conv2d matches the naive convolution on cpu (float64, float32)") {
  for (const ConvCase& k : kCases) {
    CAPTURE(describe(k));
    check_against_naive(k, DType::f64, Device::cpu, 1e-11, 1e-11);
    check_against_naive(k, DType::f32, Device::cpu, 1e-4, 1e-4);
  }
}

TEST_CASE("conv2d's input gradient on large images, stride 1 (the flipped convolution on the "
          "cpu) matches the naive convolution") {
  // From 2048 input pixels per image the CPU takes dx of a stride-1 square window as a
  // convolution of dy with the flipped weights, padded by dilation * (k - 1) - padding: each
  // padding the window allows, dilation, even and odd kernels; and the windows it leaves to
  // col2im (padding past the reach, non-square) beside them.
  const ConvCase cases[] = {
      {2, 3, 48, 50, 4, 3, 3, {1, 1, 1}, true},    // ResNet's 3x3: flipped padding 1
      {1, 2, 46, 47, 3, 3, 3, {1, 0, 1}, false},   // unpadded: flipped padding 2
      {1, 2, 50, 52, 3, 3, 3, {1, 2, 2}, false},   // dilation 2: flipped padding 2
      {1, 2, 48, 49, 3, 5, 5, {1, 2, 1}, true},    // 5x5
      {1, 2, 48, 48, 3, 2, 2, {1, 0, 1}, false},   // even kernel: flipped padding 1
      {1, 2, 47, 48, 3, 7, 7, {1, 1, 1}, false},   // padding under half the kernel
      {1, 2, 48, 48, 3, 3, 3, {1, 3, 1}, false},   // padding past the reach: col2im
      {1, 2, 48, 48, 3, 3, 1, {1, 1, 1}, false},   // non-square: col2im
      {1, 2, 32, 32, 3, 3, 3, {1, 1, 1}, false},   // 1024 pixels: col2im
  };
  for (const ConvCase& k : cases) {
    CAPTURE(describe(k));
    check_against_naive(k, DType::f64, Device::cpu, 1e-11, 1e-11);
    check_against_naive(k, DType::f32, Device::cpu, 1e-4, 1e-4);
  }
}

namespace {

// W [O, C, k, k] flipped in both spatial directions, its channel axes swapped: [C, O, k, k].
Tensor flipped_weight(const Tensor& w) {
  const int64_t O = w.size(0), C = w.size(1), taps = w.size(2) * w.size(3);
  const std::vector<double> v = w.to_vector();
  std::vector<double> f(v.size());
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < taps; ++t)
        f[(c * O + o) * taps + (taps - 1 - t)] = v[(o * C + c) * taps + t];
  return Tensor::from_vector(f, {C, O, w.size(2), w.size(3)}, w.dtype());
}

}  // namespace

TEST_CASE("conv2d's input gradient on the cpu is the flipped convolution from 2048 pixels on") {
  // The contract of the CPU path, bit for bit: from 2048 input pixels per image, dx of a
  // stride-1 square window is conv2d_forward(dy, flipped W, padding d (k - 1) - p), computed
  // here by the forward itself; under 2048 pixels (and for padding past the reach) col2im's
  // path, whose sums run in another order, so that some value differs.
  struct Case {
    int64_t H, W, k, pad, dilation;
    bool flipped;
  };
  const Case cases[] = {
      {32, 64, 3, 1, 1, true},    // 2048 pixels
      {23, 89, 3, 1, 1, false},   // 2047
      {48, 48, 3, 2, 1, true},    // padding = reach: flipped padding 0
      {48, 48, 3, 0, 2, true},    // dilation 2, unpadded: flipped padding 4
      {48, 48, 3, 3, 1, false},   // padding past the reach
  };
  std::mt19937_64 rng(7);
  for (const Case& c : cases) {
    CAPTURE(c.H);
    CAPTURE(c.W);
    CAPTURE(c.pad);
    CAPTURE(c.dilation);
    Conv2dOptions opt;
    opt.padding = c.pad;
    opt.dilation = c.dilation;
    const int64_t reach = c.dilation * (c.k - 1);
    const Tensor w = Tensor::randn({5, 4, c.k, c.k}, rng);
    const Tensor dy =
        Tensor::randn({2, 5, c.H + 2 * c.pad - reach, c.W + 2 * c.pad - reach}, rng);
    const std::vector<double> dx = conv2d_backward_input(dy, w, {2, 4, c.H, c.W}, opt).to_vector();
    Conv2dOptions flipped_opt;
    flipped_opt.padding = std::max<int64_t>(0, reach - c.pad);
    flipped_opt.dilation = c.dilation;
    const Tensor direct = conv2d_forward(dy, flipped_weight(w), Tensor(), flipped_opt);
    if (c.flipped) {
      REQUIRE(direct.shape() == Shape{2, 4, c.H, c.W});
      CHECK(dx == direct.to_vector());
    } else if (direct.shape() == Shape{2, 4, c.H, c.W}) {
      CHECK(dx != direct.to_vector());
    }
  }
}

TEST_CASE("conv2d's input gradient on large images keeps bf16 GEMM inputs") {
  // Under --precision bf16 our GEMM rounds its operands into copies, so dx stays on col2im's
  // path, whatever the channel counts: the default result is the chunked path's (which never
  // packs from the image), bit for bit; fp32 differs.
  std::mt19937_64 rng(8);
  Conv2dOptions opt;
  opt.padding = 1;
  const Tensor w = Tensor::randn({2, 3, 3, 3}, rng);
  const Tensor dy = Tensor::randn({1, 2, 48, 48}, rng);
  const Shape shape{1, 3, 48, 48};
  const std::vector<double> fp32 = conv2d_backward_input(dy, w, shape, opt).to_vector();
  set_matmul_precision(Precision::bf16);
  struct Restore {
    ~Restore() {
      set_matmul_precision(Precision::fp32);
      set_conv_images_per_chunk_for_testing(0);
    }
  } restore;
  const std::vector<double> bf16 = conv2d_backward_input(dy, w, shape, opt).to_vector();
  set_conv_images_per_chunk_for_testing(1);
  CHECK(conv2d_backward_input(dy, w, shape, opt).to_vector() == bf16);
  CHECK(bf16 != fp32);
}

TEST_CASE("conv2d's chunked native path (CUDA's: batched GEMMs, weight gradient summed by one "
          "GEMM) matches the naive convolution on cpu") {
  // Batch 5 in chunks of 2 is 2 + 2 + 1: a second multi-image chunk must add to dW.
  std::vector<ConvCase> cases(std::begin(kCases), std::end(kCases));
  cases.push_back({5, 3, 6, 5, 4, 3, 3, {1, 1, 1}, true});
  cases.push_back({5, 4, 5, 5, 3, 1, 1, {1, 0, 1}, false});  // pointwise, batch 5
  for (int64_t chunk : {2, 3}) {
    set_conv_images_per_chunk_for_testing(chunk);
    for (const ConvCase& k : cases) {
      CAPTURE(chunk);
      CAPTURE(describe(k));
      check_against_naive(k, DType::f64, Device::cpu, 1e-11, 1e-11);
    }
  }
  set_conv_images_per_chunk_for_testing(0);
}

TEST_CASE("conv2d raw pieces equal the autograd gradients and record no graph") {
  const ConvCase k = kCases[1];
  std::mt19937_64 rng(3);
  Tensor x = Tensor::randn({k.N, k.C, k.H, k.W}, rng, DType::f64).set_requires_grad(true);
  Tensor w = Tensor::randn({k.O, k.C, k.kh, k.kw}, rng, DType::f64).set_requires_grad(true);
  Tensor b = Tensor::randn({k.O}, rng, DType::f64).set_requires_grad(true);
  Tensor y_raw = conv2d_forward(x, w, b, k.opt);
  CHECK_FALSE(y_raw.requires_grad());
  Tensor y = conv2d(x, w, b, k.opt);
  check_close(y_raw, y.to_vector(), 1e-14, 1e-14);
  Tensor dy = Tensor::randn(y.shape(), rng, DType::f64);
  y.backward(dy);
  check_close(conv2d_backward_input(dy, w, x.shape(), k.opt), x.grad().to_vector(), 1e-14, 1e-14);
  check_close(conv2d_backward_weight(dy, x, w.shape(), k.opt), w.grad().to_vector(), 1e-14, 1e-14);
  check_close(conv2d_backward_bias(dy), b.grad().to_vector(), 1e-14, 1e-14);
}

TEST_CASE("conv2d gradients only for the inputs that require them") {
  std::mt19937_64 rng(5);
  Tensor x = Tensor::randn({1, 2, 5, 5}, rng, DType::f64);  // an image: no gradient wanted
  Tensor w = Tensor::randn({3, 2, 3, 3}, rng, DType::f64).set_requires_grad(true);
  Tensor y = conv2d(x, w, Tensor(), {1, 1, 1});
  y.backward(Tensor::full(y.shape(), 1.0, DType::f64));
  CHECK_FALSE(x.grad().defined());
  CHECK(w.grad().shape() == w.shape());
}

TEST_CASE("the conv engine choice does not affect the cpu") {
  ConvCase k = kCases[1];
#if PRM_USE_CUDNN
  k.opt.engine = parse_conv_engine("cudnn");
  CHECK(k.opt.engine == ConvEngine::cudnn);
  CHECK(std::string(conv_engine_name(k.opt.engine)) == "cudnn");
  check_against_naive(k, DType::f64, Device::cpu, 1e-11, 1e-11);
#endif
  k.opt.engine = parse_conv_engine("native");
  CHECK(k.opt.engine == ConvEngine::native);
  check_against_naive(k, DType::f64, Device::cpu, 1e-11, 1e-11);
}

TEST_CASE("conv2d errors name the op and the shapes") {
  Tensor x = Tensor::zeros({2, 3, 8, 8});
  Tensor w = Tensor::zeros({4, 3, 3, 3});
  CHECK_THROWS_WITH_AS(conv2d(Tensor::zeros({3, 8, 8}), w, Tensor()),
                       doctest::Contains("conv2d: input must be [N, Cin, H, W], got [3, 8, 8]"),
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 3, 3}), Tensor()),
                       doctest::Contains("weight must be [Cout, Cin, kh, kw], got [4, 3, 3]"),
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 5, 3, 3}), Tensor()),
                       doctest::Contains("weight [4, 5, 3, 3] takes 5 input channels but the "
                                         "input [2, 3, 8, 8] has 3"),
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor::zeros({5})),
                       doctest::Contains("bias must be [4] for weight [4, 3, 3, 3], got [5]"),
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w.to(DType::f64), Tensor()), doctest::Contains("dtype mismatch"),
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor(), {0, 0, 1}), doctest::Contains("stride >= 1"), Error);
  CHECK_THROWS_WITH_AS(conv2d(Tensor::zeros({1, 3, 2, 2}), w, Tensor()),
                       doctest::Contains("is smaller than the dilated kernel"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor(), {1, 1, 5}),
                       doctest::Contains("[2, 3, 8, 8] padded by 1"), Error);
  CHECK_THROWS_AS(conv2d(Tensor::zeros({2, 3, 8, 8}, DType::i64),
                         Tensor::zeros({4, 3, 3, 3}, DType::i64), Tensor()),
                  Error);
  CHECK_THROWS_WITH_AS(conv2d_backward_input(Tensor::zeros({2, 4, 7, 7}), w, x.shape()),
                       doctest::Contains("grad_out [2, 4, 7, 7] does not match the output "
                                         "[2, 4, 6, 6]"),
                       Error);
#if !PRM_USE_CUDNN
  CHECK_THROWS_WITH_AS(parse_conv_engine("cudnn"), doctest::Contains("USE_CUDNN=1"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor(), {1, 1, 1, ConvEngine::cudnn}),
                       doctest::Contains("USE_CUDNN=1"), Error);
#endif
  CHECK_THROWS_WITH_AS(parse_conv_engine("winograd"), doctest::Contains("not one of native, cudnn"),
                       Error);
}

TEST_SUITE("cuda") {
  TEST_CASE("conv2d native engine on cuda matches the naive convolution") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    for (const ConvCase& k : kCases) {
      CAPTURE(describe(k));
      check_against_naive(k, DType::f64, Device::cuda, 1e-11, 1e-11);
      check_against_naive(k, DType::f32, Device::cuda, 1e-4, 1e-4);
    }
  }

  TEST_CASE("conv2d errors for tensors on different devices") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    CHECK_THROWS_WITH_AS(conv2d(Tensor::zeros({1, 2, 4, 4}),
                                Tensor::zeros({1, 2, 3, 3}, DType::f32, Device::cuda), Tensor()),
                         doctest::Contains("different devices"), Error);
  }

#if PRM_USE_CUDNN
  TEST_CASE("conv2d cudnn engine matches the native engine on cuda (forward and gradients)") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    for (const ConvCase& k : kCases) {
      for (DType dt : {DType::f32, DType::f64}) {
        CAPTURE(describe(k));
        CAPTURE(dtype_name(dt));
        std::mt19937_64 rng(9);
        auto run = [&](ConvEngine engine) {
          Conv2dOptions opt = k.opt;
          opt.engine = engine;
          std::mt19937_64 r(rng);
          Tensor x =
              Tensor::randn({k.N, k.C, k.H, k.W}, r, dt, Device::cuda).set_requires_grad(true);
          Tensor w =
              Tensor::randn({k.O, k.C, k.kh, k.kw}, r, dt, Device::cuda).set_requires_grad(true);
          Tensor b = Tensor::randn({k.O}, r, dt, Device::cuda).set_requires_grad(true);
          Tensor y = conv2d(x, w, k.bias ? b : Tensor(), opt);
          y.backward(Tensor::randn(y.shape(), r, dt, Device::cuda));
          std::vector<std::vector<double>> out{y.to_vector(), x.grad().to_vector(),
                                               w.grad().to_vector()};
          if (k.bias) out.push_back(b.grad().to_vector());
          return out;
        };
        const auto cudnn = run(ConvEngine::cudnn);
        const auto native = run(ConvEngine::native);
        const double tol = dt == DType::f32 ? 1e-4 : 1e-11;
        for (size_t i = 0; i < native.size(); ++i) {
          CAPTURE(i);  // 0 output, 1 dx, 2 dw, 3 db
          check_close(cudnn[i], native[i], tol, tol);
        }
      }
    }
  }
#endif
}
