// nn ops (batch norm, pooling, bilinear upsampling) against naive loops written here, over the
// {cpu, cuda} x {float32, float64} matrix, and against PyTorch numbers
// (tests/fixtures/nn/torch_nn_reference.h, made by tools/fixtures/make_nn_fixtures.py).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "fixtures/nn/torch_nn_reference.h"
#include "helpers.h"
#include "tensor/ops.h"

using namespace prm;

namespace {

using Vec = std::vector<double>;

// ((i * a) % m) / d - o: the fixture script's input pattern (exact binary fractions).
Vec pattern(int64_t n, int64_t a, int64_t m, double d, double o) {
  Vec v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<double>((i * a) % m) / d - o;
  return v;
}

Vec random_vec(int64_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> dist;
  Vec v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

Tensor input(const Vec& v, const Shape& shape, DType dt, Device dev, bool grad = true) {
  Tensor t = Tensor::from_vector(v, shape, dt, dev);
  return grad ? t.set_requires_grad(true) : t;
}

// Back-propagates L = sum(y * r).
void backward_projection(const Tensor& y, const Vec& r) {
  y.backward(Tensor::from_vector(r, y.shape(), y.dtype(), y.device()));
}

// Float32 results against float64 references; float64 results to rounding.
double tol(DType dt) { return dt == DType::f64 ? 1e-12 : 2e-5; }

void check_vec(const Tensor& actual, const Vec& expected, DType dt) {
  check_close(actual, expected, tol(dt), tol(dt));
}

// ---- naive references ----

struct Dims {
  int64_t N, C, H, W;
};

// Max pooling with -inf padding; the first maximum in scan order wins. Returns the output and
// the flat input index of each window's winner.
std::pair<Vec, std::vector<int64_t>> naive_max_pool(const Vec& x, Dims d, int64_t k, int64_t s,
                                                    int64_t p) {
  const int64_t OH = (d.H + 2 * p - k) / s + 1, OW = (d.W + 2 * p - k) / s + 1;
  Vec out;
  std::vector<int64_t> winner;
  for (int64_t nc = 0; nc < d.N * d.C; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double best = -INFINITY;
        int64_t best_i = -1;
        for (int64_t kh = 0; kh < k; ++kh)
          for (int64_t kw = 0; kw < k; ++kw) {
            const int64_t h = oh * s - p + kh, w = ow * s - p + kw;
            if (h < 0 || h >= d.H || w < 0 || w >= d.W) continue;
            const int64_t i = (nc * d.H + h) * d.W + w;
            if (best_i < 0 || x[i] > best) best = x[i], best_i = i;
          }
        out.push_back(best);
        winner.push_back(best_i);
      }
  return {out, winner};
}

// Adaptive average pooling with the windows written as torch documents them.
Vec naive_adaptive_avg(const Vec& x, Dims d, int64_t OH, int64_t OW, const Vec* grad_out,
                       Vec* grad_in) {
  Vec out;
  if (grad_in) grad_in->assign(x.size(), 0.0);
  int64_t o = 0;
  for (int64_t nc = 0; nc < d.N * d.C; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow, ++o) {
        const int64_t h0 = static_cast<int64_t>(std::floor(double(oh) * d.H / OH));
        const int64_t h1 = static_cast<int64_t>(std::ceil(double(oh + 1) * d.H / OH));
        const int64_t w0 = static_cast<int64_t>(std::floor(double(ow) * d.W / OW));
        const int64_t w1 = static_cast<int64_t>(std::ceil(double(ow + 1) * d.W / OW));
        const double area = double((h1 - h0) * (w1 - w0));
        double sum = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) {
            sum += x[(nc * d.H + h) * d.W + w];
            if (grad_in) (*grad_in)[(nc * d.H + h) * d.W + w] += (*grad_out)[o] / area;
          }
        out.push_back(sum / area);
      }
  return out;
}

// Bilinear interpolation from the formula in F.interpolate's documentation, in double.
// scale <= 0: sizes only. Accumulates the gradient of sum(out * grad_out) into grad_in.
Vec naive_bilinear(const Vec& x, Dims d, int64_t OH, int64_t OW, bool align, double scale,
                   const Vec& grad_out, Vec& grad_in) {
  auto source = [&](int64_t o, int64_t in, int64_t out, double& frac) {
    double src;
    if (align) {
      src = out > 1 ? o * double(in - 1) / double(out - 1) : 0.0;
    } else {
      const double ratio = out > 1 ? (scale > 0 ? 1.0 / scale : double(in) / out) : 0.0;
      src = std::max((o + 0.5) * ratio - 0.5, 0.0);
    }
    const int64_t i0 = std::min(static_cast<int64_t>(std::floor(src)), in - 1);
    frac = std::min(src - i0, 1.0);
    return i0;
  };
  Vec out;
  grad_in.assign(x.size(), 0.0);
  int64_t o = 0;
  for (int64_t nc = 0; nc < d.N * d.C; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow, ++o) {
        double fh, fw;
        const int64_t h0 = source(oh, d.H, OH, fh), w0 = source(ow, d.W, OW, fw);
        const int64_t h1 = std::min(h0 + 1, d.H - 1), w1 = std::min(w0 + 1, d.W - 1);
        const int64_t hs[2] = {h0, h1}, ws[2] = {w0, w1};
        const double wh[2] = {1 - fh, fh}, ww[2] = {1 - fw, fw};
        double v = 0;
        for (int a = 0; a < 2; ++a)
          for (int b = 0; b < 2; ++b) {
            const int64_t i = (nc * d.H + hs[a]) * d.W + ws[b];
            v += wh[a] * ww[b] * x[i];
            grad_in[i] += wh[a] * ww[b] * grad_out[o];
          }
        out.push_back(v);
      }
  return out;
}

// Batch norm forward and the gradient by the textbook chain rule through var and mean (not the
// simplified formula the op uses). w, b empty: affine off. Training uses batch statistics.
struct NaiveBatchNorm {
  Vec out, dx, dw, db;
};
NaiveBatchNorm naive_batch_norm(const Vec& x, Dims d, const Vec& w, const Vec& b, const Vec& rm,
                                const Vec& rv, bool training, double eps, const Vec& g) {
  const int64_t HW = d.H * d.W, M = d.N * HW;
  NaiveBatchNorm r{Vec(x.size()), Vec(x.size()), Vec(d.C, 0.0), Vec(d.C, 0.0)};
  for (int64_t c = 0; c < d.C; ++c) {
    std::vector<int64_t> idx;
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t j = 0; j < HW; ++j) idx.push_back((n * d.C + c) * HW + j);
    double mean = rm.empty() ? 0 : rm[c], var = rv.empty() ? 1 : rv[c];
    if (training) {
      mean = 0;
      for (int64_t i : idx) mean += x[i] / M;
      var = 0;
      for (int64_t i : idx) var += (x[i] - mean) * (x[i] - mean) / M;
    }
    const double gamma = w.empty() ? 1 : w[c], beta = b.empty() ? 0 : b[c];
    const double invstd = 1 / std::sqrt(var + eps);
    double dvar = 0, dmean = 0, sum_xm = 0;
    for (int64_t i : idx) {
      const double xhat = (x[i] - mean) * invstd;
      r.out[i] = gamma * xhat + beta;
      r.dw[c] += g[i] * xhat;
      r.db[c] += g[i];
      dvar += g[i] * gamma * (x[i] - mean) * -0.5 * std::pow(var + eps, -1.5);
      dmean += -g[i] * gamma * invstd;
      sum_xm += x[i] - mean;
    }
    dmean += dvar * -2 * sum_xm / M;  // zero up to rounding, kept for the chain rule's sake
    for (int64_t i : idx) {
      r.dx[i] = g[i] * gamma * invstd;
      if (training) r.dx[i] += dvar * 2 * (x[i] - mean) / M + dmean / M;
    }
  }
  return r;
}

// ---- the checks, run over the device x dtype matrix ----

void check_max_pool(Device dev, DType dt) {
  struct Case {
    Dims d;
    int64_t k, s, p;
  };
  const Case cases[] = {{{3, 5, 7, 9}, 3, 2, 1},
                        {{2, 3, 6, 5}, 2, 2, 0},
                        {{1, 4, 5, 4}, 3, 1, 1},
                        {{2, 2, 8, 8}, 3, 2, 0}};
  std::mt19937_64 rng(3);
  for (const Case& c : cases) {
    CAPTURE(c.k);
    CAPTURE(c.s);
    CAPTURE(c.p);
    const Dims d = c.d;
    Vec xv(d.N * d.C * d.H * d.W);
    std::iota(xv.begin(), xv.end(), 0.0);
    std::shuffle(xv.begin(), xv.end(), rng);
    for (double& v : xv) v = -0.25 * v;  // all negative: padding must not win
    const auto [ref, winner] = naive_max_pool(xv, d, c.k, c.s, c.p);
    Tensor x = input(xv, {d.N, d.C, d.H, d.W}, dt, dev);
    Tensor y = max_pool2d(x, c.k, c.s, c.p);
    CHECK(y.shape() ==
          Shape{d.N, d.C, (d.H + 2 * c.p - c.k) / c.s + 1, (d.W + 2 * c.p - c.k) / c.s + 1});
    check_vec(y, ref, dt);
    {
      NoGradGuard no_grad;  // no graph: the maxima without argmax (on the CPU)
      check_vec(max_pool2d(x, c.k, c.s, c.p), ref, dt);
    }
    const Vec r = random_vec(y.numel(), rng);
    backward_projection(y, r);
    Vec dx(xv.size(), 0.0);
    for (size_t o = 0; o < winner.size(); ++o) dx[winner[o]] += r[o];
    check_vec(x.grad(), dx, dt);
  }
}

void check_max_pool_ties(Device dev, DType dt) {
  // Equal values: torch's first-maximum rule sends each window's gradient to its top-left
  // in-bounds element (expected gradients printed by torch 1.13 F.max_pool2d on the same input).
  Tensor x = input(Vec(16, 2.0), {1, 1, 4, 4}, dt, dev);
  Tensor y = max_pool2d(x, 2, 2, 0);
  backward_projection(y, {1, 2, 3, 4});
  check_vec(x.grad(), {1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0}, dt);
  Tensor x2 = input(Vec(9, -1.0), {1, 1, 3, 3}, dt, dev);
  Tensor y2 = max_pool2d(x2, 3, 2, 1);  // windows start in the padding
  check_vec(y2, {-1, -1, -1, -1}, dt);
  backward_projection(y2, {1, 2, 3, 4});
  check_vec(x2.grad(), {1, 2, 0, 3, 4, 0, 0, 0, 0}, dt);
}

void check_adaptive_avg_pool(Device dev, DType dt) {
  struct Case {
    Dims d;
    int64_t OH, OW;  // 0: global_avg_pool2d
  };
  const Case cases[] = {{{2, 3, 7, 7}, 3, 3},
                        {{3, 2, 5, 7}, 2, 3},
                        {{1, 2, 3, 4}, 5, 6},
                        {{2, 5, 6, 4}, 3, 2},
                        {{3, 33, 5, 3}, 0, 0}};
  std::mt19937_64 rng(5);
  for (const Case& c : cases) {
    CAPTURE(c.OH);
    CAPTURE(c.OW);
    const Dims d = c.d;
    const int64_t OH = c.OH ? c.OH : 1, OW = c.OW ? c.OW : 1;
    const Vec xv = random_vec(d.N * d.C * d.H * d.W, rng);
    const Vec r = random_vec(d.N * d.C * OH * OW, rng);
    Vec dx;
    const Vec ref = naive_adaptive_avg(xv, d, OH, OW, &r, &dx);
    Tensor x = input(xv, {d.N, d.C, d.H, d.W}, dt, dev);
    Tensor y = c.OH ? adaptive_avg_pool2d(x, OH, OW) : global_avg_pool2d(x);
    CHECK(y.shape() == Shape{d.N, d.C, OH, OW});
    check_vec(y, ref, dt);
    backward_projection(y, r);
    check_vec(x.grad(), dx, dt);
  }
}

void check_upsample_naive(Device dev, DType dt) {
  struct Case {
    Dims d;
    int64_t OH, OW;  // used when scale == 0
    double scale;
    bool align;
  };
  const Case cases[] = {
      {{2, 3, 5, 4}, 0, 0, 8.0, true},  // PRM's sub-pixel upsampling of the CRMs
      {{2, 3, 5, 4}, 0, 0, 8.0, false}, {{1, 2, 3, 5}, 7, 8, 0, true},
      {{1, 2, 3, 5}, 7, 8, 0, false},   {{3, 1, 7, 6}, 4, 3, 0, false},
      {{1, 1, 3, 3}, 0, 0, 2.5, false}, {{1, 1, 4, 5}, 1, 1, 0, true},
      {{2, 1, 4, 3}, 0, 0, 1.7, true},
  };
  std::mt19937_64 rng(9);
  for (const Case& c : cases) {
    CAPTURE(c.scale);
    CAPTURE(c.align);
    CAPTURE(c.OH);
    const Dims d = c.d;
    const int64_t OH = c.scale > 0 ? static_cast<int64_t>(std::floor(d.H * c.scale)) : c.OH;
    const int64_t OW = c.scale > 0 ? static_cast<int64_t>(std::floor(d.W * c.scale)) : c.OW;
    const Vec xv = random_vec(d.N * d.C * d.H * d.W, rng);
    const Vec r = random_vec(d.N * d.C * OH * OW, rng);
    Vec dx;
    const Vec ref = naive_bilinear(xv, d, OH, OW, c.align, c.scale, r, dx);
    Tensor x = input(xv, {d.N, d.C, d.H, d.W}, dt, dev);
    Tensor y = c.scale > 0 ? upsample_bilinear_scale(x, c.scale, c.align)
                           : upsample_bilinear(x, OH, OW, c.align);
    CHECK(y.shape() == Shape{d.N, d.C, OH, OW});
    check_vec(y, ref, dt);
    backward_projection(y, r);
    check_vec(x.grad(), dx, dt);
  }
}

void check_upsample_torch(Device dev, DType dt) {
  struct Case {
    const char* name;
    Shape shape;
    int64_t OH, OW;
    double scale;
    bool align;
    const Vec& out;
    const Vec& dx;
  };
  using namespace torch_ref;
  const Case cases[] = {
      {"size_align", {1, 2, 3, 4}, 5, 7, 0, true, up_size_align_out, up_size_align_dx},
      {"size_noalign", {1, 2, 3, 4}, 5, 7, 0, false, up_size_noalign_out, up_size_noalign_dx},
      {"scale_noalign", {1, 1, 3, 3}, 0, 0, 2.5, false, up_scale_noalign_out, up_scale_noalign_dx},
      {"scale_align", {1, 1, 2, 3}, 0, 0, 3.0, true, up_scale_align_out, up_scale_align_dx},
      {"scale_down_noalign",
       {1, 1, 5, 4},
       0,
       0,
       0.6,
       false,
       up_scale_down_noalign_out,
       up_scale_down_noalign_dx},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Tensor x = input(pattern(shape_numel(c.shape), 7, 11, 4, 1.25), c.shape, dt, dev);
    Tensor y = c.scale > 0 ? upsample_bilinear_scale(x, c.scale, c.align)
                           : upsample_bilinear(x, c.OH, c.OW, c.align);
    REQUIRE(y.numel() == static_cast<int64_t>(c.out.size()));
    check_vec(y, c.out, dt);
    backward_projection(y, pattern(y.numel(), 5, 13, 4, 1.5));
    check_vec(x.grad(), c.dx, dt);
  }
}

void check_batch_norm_naive(Device dev, DType dt) {
  struct Case {
    Shape shape;
    bool affine, training;
  };
  const Case cases[] = {{{3, 5, 4, 3}, true, true},   {{2, 33, 3, 5}, false, true},
                        {{6, 7}, true, true},         {{3, 5, 4, 3}, true, false},
                        {{2, 3, 3, 3}, false, false}, {{5, 4}, false, false}};
  std::mt19937_64 rng(13);
  for (const Case& c : cases) {
    CAPTURE(c.affine);
    CAPTURE(c.training);
    CAPTURE(shape_str(c.shape));
    const int64_t C = c.shape[1];
    const Dims d{c.shape[0], C, c.shape.size() == 4 ? c.shape[2] : 1,
                 c.shape.size() == 4 ? c.shape[3] : 1};
    Vec xv = random_vec(shape_numel(c.shape), rng);
    for (double& v : xv) v = 2 * v + 0.5;
    Vec wv, bv;
    if (c.affine) wv = random_vec(C, rng), bv = random_vec(C, rng);
    Vec rm = random_vec(C, rng), rv(C);
    for (double& v : rv) v = 0.5 + static_cast<double>(rng() % 1000) / 500.0;
    const Vec g = random_vec(xv.size(), rng);
    const NaiveBatchNorm ref = naive_batch_norm(xv, d, wv, bv, rm, rv, c.training, 1e-5, g);

    Tensor x = input(xv, c.shape, dt, dev);
    Tensor w = c.affine ? input(wv, {C}, dt, dev) : Tensor();
    Tensor b = c.affine ? input(bv, {C}, dt, dev) : Tensor();
    Tensor y = batch_norm(x, w, b, input(rm, {C}, dt, dev, false), input(rv, {C}, dt, dev, false),
                          c.training, 0.1, 1e-5);
    check_vec(y, ref.out, dt);
    backward_projection(y, g);
    check_vec(x.grad(), ref.dx, dt);
    if (c.affine) {
      check_vec(w.grad(), ref.dw, dt);
      check_vec(b.grad(), ref.db, dt);
    }
  }
}

void check_batch_norm_torch(Device dev, DType dt) {
  using namespace torch_ref;
  const Shape shape{3, 2, 2, 3};
  Tensor rm = Tensor::zeros({2}, dt, dev), rv = Tensor::full({2}, 1.0, dt, dev);
  Tensor w = input({1.5, -0.5}, {2}, dt, dev), b = input({0.25, 1.0}, {2}, dt, dev);
  Tensor x1 = input(pattern(36, 7, 11, 4, 1.25), shape, dt, dev);
  Tensor y1 = batch_norm(x1, w, b, rm, rv, true, 0.1, 1e-5);
  check_vec(y1, bn_train_out, dt);
  backward_projection(y1, pattern(36, 5, 13, 4, 1.5));
  check_vec(x1.grad(), bn_train_dx, dt);
  check_vec(w.grad(), bn_train_dweight, dt);
  check_vec(b.grad(), bn_train_dbias, dt);
  batch_norm(input(pattern(36, 5, 9, 2, 2.0), shape, dt, dev, false), w, b, rm, rv, true, 0.1,
             1e-5);
  check_vec(rm, bn_running_mean, dt);
  check_vec(rv, bn_running_var, dt);
  check_vec(batch_norm(x1.detach(), w, b, rm, rv, false, 0.1, 1e-5), bn_eval_out, dt);
}

void run_matrix(Device dev, void (*check)(Device, DType)) {
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    check(dev, dt);
  }
}

}  // namespace

TEST_CASE("nn: max_pool2d vs naive loop") { run_matrix(Device::cpu, check_max_pool); }
TEST_CASE("nn: max_pool2d ties go to the first maximum") {
  run_matrix(Device::cpu, check_max_pool_ties);
}
TEST_CASE("nn: adaptive_avg_pool2d vs naive loop") {
  run_matrix(Device::cpu, check_adaptive_avg_pool);
}
TEST_CASE("nn: upsample_bilinear vs naive loop") { run_matrix(Device::cpu, check_upsample_naive); }
TEST_CASE("nn: upsample_bilinear vs torch") { run_matrix(Device::cpu, check_upsample_torch); }
TEST_CASE("nn: batch_norm vs naive loop") { run_matrix(Device::cpu, check_batch_norm_naive); }
TEST_CASE("nn: batch_norm running stats vs torch") {
  run_matrix(Device::cpu, check_batch_norm_torch);
}

TEST_CASE("nn: batch_norm without running buffers in training leaves nothing to update") {
  Tensor x = input(pattern(36, 7, 11, 4, 1.25), {3, 2, 2, 3}, DType::f64, Device::cpu);
  Tensor y = batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true);
  // Affine off: each channel of y has mean 0 and biased variance var / (var + eps) ~ 1.
  const Vec yv = y.to_vector();
  for (int64_t c = 0; c < 2; ++c) {
    double sum = 0, sq = 0;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t j = 0; j < 6; ++j) {
        const double v = yv[(n * 2 + c) * 6 + j];
        sum += v;
        sq += v * v;
      }
    CHECK(sum / 18 == doctest::Approx(0).epsilon(1e-12));
    CHECK(sq / 18 == doctest::Approx(1).epsilon(1e-3));
  }
}

TEST_CASE("nn: bad arguments throw prm::Error naming the op and shapes") {
  Tensor x = Tensor::zeros({2, 3, 5, 5});
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor::zeros({4}), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("batch_norm: weight has shape [4]"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false),
                       doctest::Contains("eval mode needs running_mean"), Error);
  CHECK_THROWS_WITH_AS(
      batch_norm(Tensor::zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true),
      doctest::Contains("more than one value per channel"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor(), Tensor(), Tensor::zeros({3}, DType::f64),
                                  Tensor::zeros({3}, DType::f64), true),
                       doctest::Contains("float64"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(x, 3, 2, 2), doctest::Contains("max_pool2d: padding 2"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(Tensor::zeros({3, 5, 5}), 3, 2, 1),
                       doctest::Contains("max_pool2d"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(Tensor::zeros({1, 1, 2, 2}), 5, 1, 1),
                       doctest::Contains("smaller than the kernel"), Error);
  CHECK_THROWS_WITH_AS(adaptive_avg_pool2d(x, 0, 2), doctest::Contains("[2, 3, 5, 5]"), Error);
  CHECK_THROWS_WITH_AS(upsample_bilinear(x, 0, 3, true), doctest::Contains("upsample_bilinear"),
                       Error);
  CHECK_THROWS_WITH_AS(upsample_bilinear_scale(x, -2, true), doctest::Contains("scale -2"), Error);
}

TEST_SUITE("cuda") {
  TEST_CASE("nn cuda: max_pool2d vs naive loop") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    run_matrix(Device::cuda, check_max_pool);
    run_matrix(Device::cuda, check_max_pool_ties);
  }
  TEST_CASE("nn cuda: adaptive_avg_pool2d vs naive loop") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    run_matrix(Device::cuda, check_adaptive_avg_pool);
  }
  TEST_CASE("nn cuda: upsample_bilinear vs naive loop and torch") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    run_matrix(Device::cuda, check_upsample_naive);
    run_matrix(Device::cuda, check_upsample_torch);
  }
  TEST_CASE("nn cuda: upsample_bilinear backward gives the same bits on every run (no atomics)") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    // The PRM head's x8 with align_corners, at a training batch's size: 16 images x 20 classes of
    // 14 x 14 -> 112 x 112. An atomic scatter would sum each input's ~289 terms in the order the
    // threads arrive, and differ in the last bits between runs; the gather may not.
    std::mt19937_64 rng(21);
    const Vec gv = random_vec(16 * 20 * 112 * 112, rng);
    UpsampleSaved s;
    s.out_h = s.out_w = 112;
    s.align_corners = true;
    const Tensor g = Tensor::from_vector(gv, {16, 20, 112, 112}, DType::f32, Device::cuda);
    const std::vector<double> first =
        upsample_bilinear_backward(g, {16, 20, 14, 14}, s).to_vector();
    for (int run = 0; run < 4; ++run)
      CHECK(upsample_bilinear_backward(g, {16, 20, 14, 14}, s).to_vector() == first);
    // And the CPU's scatter within float32 rounding: the GPU may fuse a multiply and an add, one
    // rounding fewer per term. ~289 terms whose partial sums stay below ~20 in magnitude (g is
    // standard normal, the weights below 1) differ by a rounding of at most 1.2e-6 each, about
    // sqrt(289) of them (1.2e-6 x 17 = 2e-5) in accumulation; 1e-4 leaves room for the tail.
    const std::vector<double> cpu =
        upsample_bilinear_backward(g.to(Device::cpu), {16, 20, 14, 14}, s).to_vector();
    check_close(first, cpu, 1e-5, 1e-4);
  }
  TEST_CASE("nn cuda: batch_norm vs naive loop and torch") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    run_matrix(Device::cuda, check_batch_norm_naive);
    run_matrix(Device::cuda, check_batch_norm_torch);
  }
}
