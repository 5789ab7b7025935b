// Guards against plausible one-line bugs in the tensor core (issue 11): cases the other suites
// lacked, each able to fail. Conv windows that only stride >= 3, stride 2 with dilation or an
// exact fit reach (against a naive loop written here), relu's kink at exactly 0, the max-pool tie
// rule in several layouts, the order of SGD's weight decay, and autograd: the gradient of an
// intermediate tensor used more than once is summed, a leaf's gradient is its own copy, tensors
// that need no gradient get none. tools/mutate.py plants such bugs and reports which survive.
// Only op-level APIs are used (no kernels), so the kernel layer can change underneath.
#include <random>

#include "helpers.h"
#include "layers/sgd.h"
#include "tensor/ops.h"

using namespace prm;

namespace {

using Vec = std::vector<double>;

Tensor leaf(const Vec& v, const Shape& shape, DType dt = DType::f64, Device dev = Device::cpu) {
  return Tensor::from_vector(v, shape, dt, dev).set_requires_grad(true);
}

double tol(DType dt) { return dt == DType::f64 ? 1e-12 : 1e-5; }

// ---- conv2d: strides and dilations the fast paths treat specially ----

struct StridedConv {
  int64_t N, C, H, W, O, kh, kw;
  Conv2dOptions opt;
  bool bias;
  const char* why;
  int64_t Ho() const {
    return (H + 2 * opt.padding - opt.dilation * (kh - 1) - 1) / opt.stride + 1;
  }
  int64_t Wo() const {
    return (W + 2 * opt.padding - opt.dilation * (kw - 1) - 1) / opt.stride + 1;
  }
};

// Options are {stride, padding, dilation}. With stride s, -p and p are different residues
// modulo s exactly when 2p is not a multiple of s, which no stride-1/2 case can show. The last
// two fit the (dilated) kernel into the (padded) input exactly, which must be accepted.
const StridedConv kStridedCases[] = {
    {2, 3, 9, 10, 4, 3, 3, {3, 1, 1}, true, "stride 3, pad 1 (2p = 2), last row uncovered"},
    {1, 2, 11, 12, 3, 5, 5, {3, 2, 1}, true, "stride 3, kernel 5, pad 2 (2p = 4)"},
    {2, 2, 10, 9, 3, 3, 2, {3, 2, 1}, false, "stride 3, pad 2, non-square kernel"},
    {1, 3, 13, 11, 2, 5, 3, {4, 1, 1}, true, "stride 4, pad 1"},
    {2, 3, 9, 11, 4, 3, 3, {2, 2, 2}, true, "stride 2, dilation 2, pad 2"},
    {1, 2, 10, 8, 3, 2, 3, {2, 1, 2}, false, "stride 2, dilation 2, pad 1, non-square"},
    {1, 2, 12, 13, 2, 3, 3, {3, 1, 2}, true, "stride 3, dilation 2, pad 1"},
    {2, 2, 11, 12, 3, 3, 3, {2, 0, 3}, true, "stride 2, dilation 3, no pad"},
    {1, 2, 5, 7, 2, 3, 3, {1, 0, 2}, true, "input exactly as tall as the dilated kernel: Ho 1"},
    {2, 2, 3, 4, 3, 5, 3, {2, 1, 1}, false, "padded input exactly as tall as the kernel"},
};

struct ConvResult {
  Vec y, dx, dw, db;
};

// The definition, one output element at a time: y[n][o][oy][ox] = b[o] + the sum over (c, ki, kj)
// of w * x at (oy*s - p + ki*d, ox*s - p + kj*d), 0 outside. The gradients of L = sum(y * dy)
// visit the same triples: dx += dy * w, dw += dy * x, db += dy.
ConvResult naive_conv(const StridedConv& k, const Vec& x, const Vec& w, const Vec& b,
                      const Vec& dy) {
  const int64_t Ho = k.Ho(), Wo = k.Wo(), s = k.opt.stride, p = k.opt.padding,
                d = k.opt.dilation;
  ConvResult r{Vec(k.N * k.O * Ho * Wo, 0.0), Vec(x.size(), 0.0), Vec(w.size(), 0.0),
               Vec(k.O, 0.0)};
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
                const int64_t iy = oy * s - p + ki * d, ix = ox * s - p + kj * d;
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

Vec normal_values(int64_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> dist;
  Vec v(n);
  for (double& e : v) e = dist(rng);
  return v;
}

void check_strided_conv(const StridedConv& k, DType dt, Device dev) {
  CAPTURE(k.why);
  CAPTURE(dtype_name(dt));
  std::mt19937_64 rng(11);
  const Vec xv = normal_values(k.N * k.C * k.H * k.W, rng);
  const Vec wv = normal_values(k.O * k.C * k.kh * k.kw, rng);
  const Vec bv = normal_values(k.O, rng);
  const Vec dyv = normal_values(k.N * k.O * k.Ho() * k.Wo(), rng);
  const ConvResult ref = naive_conv(k, xv, wv, bv, dyv);
  Tensor x = leaf(xv, {k.N, k.C, k.H, k.W}, dt, dev);
  Tensor w = leaf(wv, {k.O, k.C, k.kh, k.kw}, dt, dev);
  Tensor b = k.bias ? leaf(bv, {k.O}, dt, dev) : Tensor();
  Tensor y = conv2d(x, w, b, k.opt);
  REQUIRE(y.shape() == Shape{k.N, k.O, k.Ho(), k.Wo()});
  const double t = dt == DType::f64 ? 1e-11 : 1e-4;
  INFO("forward");
  check_close(y, ref.y, t, t);
  y.backward(Tensor::from_vector(dyv, y.shape(), dt, dev));
  INFO("input gradient");
  check_close(x.grad(), ref.dx, t, t);
  INFO("weight gradient");
  check_close(w.grad(), ref.dw, t, t);
  if (k.bias) {
    INFO("bias gradient");
    check_close(b.grad(), ref.db, t, t);
  }
}

void check_all_strided(Device dev) {
  for (const StridedConv& k : kStridedCases)
    for (DType dt : {DType::f64, DType::f32}) check_strided_conv(k, dt, dev);
}

// ---- max_pool2d: the first maximum in row-major scan order wins ----

// The winner of every window by the rule, with -inf padding skipped; dx[winner] += dy.
Vec naive_pool_grad(const Vec& x, int64_t planes, int64_t H, int64_t W, int64_t k, int64_t s,
                    int64_t p, const Vec& dy, Vec* y) {
  const int64_t OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
  Vec dx(x.size(), 0.0);
  y->clear();
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t best = -1;
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = 0; j < k; ++j) {
            const int64_t h = oh * s - p + i, w = ow * s - p + j;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            const int64_t idx = (pl * H + h) * W + w;
            if (best < 0 || x[idx] > x[best]) best = idx;
          }
        y->push_back(x[best]);
        dx[best] += dy[(pl * OH + oh) * OW + ow];
      }
  return dx;
}

void check_pool_ties(DType dt, Device dev) {
  CAPTURE(dtype_name(dt));
  {
    // Constant 3x3, kernel 2 stride 1: the four windows overlap, each gives its gradient to
    // its own top-left element (the last-maximum rule would pick the bottom-right ones).
    Tensor x = leaf(Vec(9, 1.0), {1, 1, 3, 3}, dt, dev);
    Tensor y = max_pool2d(x, 2, 1, 0);
    y.backward(Tensor::from_vector({1, 2, 3, 4}, y.shape(), dt, dev));
    check_close(x.grad(), {1, 2, 0, 3, 4, 0, 0, 0, 0}, tol(dt), 0);
  }
  {
    // [1 3; 3 0]: the maxima are (0,1) and (1,0); row-major scan meets (0,1) first.
    Tensor x = leaf({1, 3, 3, 0}, {1, 1, 2, 2}, dt, dev);
    Tensor y = max_pool2d(x, 2, 2, 0);
    check_close(y, {3}, 0, 0);
    y.backward(Tensor::from_vector({5}, y.shape(), dt, dev));
    check_close(x.grad(), {0, 5, 0, 0}, tol(dt), 0);
  }
  {
    // 5x5, kernel 3 stride 2 pad 1 (3x3 windows over rows/cols [2o-1, 2o+1]), 7 at (1,1), (1,3),
    // (3,1), (3,3), 0 elsewhere; dy = 1..9 by window. Windows and their first maximum:
    //   (0,0)->(1,1) (0,1)->(1,1) (0,2)->(1,3)   (1,0)->(1,1) (1,1)->(1,1) (1,2)->(1,3)
    //   (2,0)->(3,1) (2,1)->(3,1) (2,2)->(3,3)
    // so dx(1,1) = 1+2+4+5 = 12, dx(1,3) = 3+6 = 9, dx(3,1) = 7+8 = 15, dx(3,3) = 9.
    Vec xv(25, 0.0);
    for (int64_t i : {6, 8, 16, 18}) xv[i] = 7;
    Tensor x = leaf(xv, {1, 1, 5, 5}, dt, dev);
    Tensor y = max_pool2d(x, 3, 2, 1);
    check_close(y, Vec(9, 7.0), 0, 0);
    y.backward(Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, y.shape(), dt, dev));
    Vec dx(25, 0.0);
    dx[6] = 12, dx[8] = 9, dx[16] = 15, dx[18] = 9;
    check_close(x.grad(), dx, tol(dt), 0);
  }
  {
    // All -1 with kernel 3 stride 1 pad 1: window (oh, ow) starts in the padding or at the edge,
    // so its first in-bounds element (max(oh-1, 0), max(ow-1, 0)) wins. With dy = 1..9:
    // (0,0) <- windows (0,0) (0,1) (1,0) (1,1) = 12; (0,1) <- (0,2) (1,2) = 9;
    // (1,0) <- (2,0) (2,1) = 15; (1,1) <- (2,2) = 9.
    Tensor x = leaf(Vec(9, -1.0), {1, 1, 3, 3}, dt, dev);
    Tensor y = max_pool2d(x, 3, 1, 1);
    y.backward(Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, y.shape(), dt, dev));
    check_close(x.grad(), {12, 9, 0, 15, 9, 0, 0, 0, 0}, tol(dt), 0);
  }
  // Many ties at random: values in {0, 1, 2}, against the rule written as a loop.
  struct Window {
    int64_t k, s, p;
  };
  std::mt19937_64 rng(17);
  std::uniform_int_distribution<int> level(0, 2);
  for (const Window& win : {Window{2, 1, 0}, Window{3, 1, 1}, Window{3, 2, 1}, Window{2, 2, 0},
                            Window{3, 3, 0}, Window{3, 2, 0}}) {
    CAPTURE(win.k);
    CAPTURE(win.s);
    CAPTURE(win.p);
    const int64_t N = 2, C = 3, H = 7, W = 8;
    Vec xv(N * C * H * W);
    for (double& v : xv) v = level(rng);
    const int64_t OH = (H + 2 * win.p - win.k) / win.s + 1;
    const int64_t OW = (W + 2 * win.p - win.k) / win.s + 1;
    const Vec dyv = normal_values(N * C * OH * OW, rng);
    Vec yref;
    const Vec dxref = naive_pool_grad(xv, N * C, H, W, win.k, win.s, win.p, dyv, &yref);
    Tensor x = leaf(xv, {N, C, H, W}, dt, dev);
    Tensor y = max_pool2d(x, win.k, win.s, win.p);
    check_close(y, yref, 0, 0);
    y.backward(Tensor::from_vector(dyv, y.shape(), dt, dev));
    check_close(x.grad(), dxref, tol(dt), tol(dt));
  }
}

// ---- relu: gradient 0 at exactly 0, as torch ----

void check_relu_kink(DType dt, Device dev) {
  CAPTURE(dtype_name(dt));
  {
    // x: -2, -0, +0, tiny positive, tiny negative, 3; dy = 1..6. dx = dy * [x > 0].
    Tensor x = leaf({-2, -0.0, 0, 1e-30, -1e-30, 3}, {6}, dt, dev);
    Tensor y = relu(x);
    check_close(y, {0, 0, 0, dt == DType::f32 ? double(1e-30f) : 1e-30, 0, 3}, 1e-6, 0);
    y.backward(Tensor::from_vector({1, 2, 3, 4, 5, 6}, {6}, dt, dev));
    check_close(x.grad(), {0, 0, 0, 4, 0, 6}, 0, 0);
  }
  {
    // A zero that an earlier op computed: relu(x - 1) at x = 1 has no gradient; at 1.5 it has.
    Tensor x = leaf({1, 1.5, 0.5}, {3}, dt, dev);
    sum(relu(x - 1.0)).backward();
    check_close(x.grad(), {0, 1, 0}, 0, 0);
  }
  {
    // Long enough for any threaded or vectorised path: every third element exactly 0.
    const int64_t n = 100003;
    Vec xv(n), expect(n);
    for (int64_t i = 0; i < n; ++i) {
      xv[i] = i % 3 == 0 ? 0.0 : (i % 3 == 1 ? 0.5 : -0.5);
      expect[i] = i % 3 == 1 ? 1.0 : 0.0;
    }
    Tensor x = leaf(xv, {n}, dt, dev);
    sum(relu(x)).backward();
    check_close(x.grad(), expect, 0, 0);
  }
}

}  // namespace

TEST_CASE("guards: conv2d with stride >= 3, stride 2 with dilation, or an exact fit vs naive") {
  check_all_strided(Device::cpu);
}

TEST_CASE("guards: max_pool2d ties go to the first maximum in row-major scan order") {
  for (DType dt : {DType::f64, DType::f32}) check_pool_ties(dt, Device::cpu);
}

TEST_CASE("guards: relu's gradient is 0 at exactly 0") {
  for (DType dt : {DType::f64, DType::f32}) check_relu_kink(dt, Device::cpu);
}

// ---- SGD: weight decay joins the gradient before momentum (torch.optim.SGD) ----

namespace {

Tensor param(const Vec& v, DType dt = DType::f64) { return leaf(v, {int64_t(v.size())}, dt); }

void give_grad(Tensor& p, const Vec& g) {
  p.set_grad(Tensor::from_vector(g, p.shape(), p.dtype(), p.device()));
}

}  // namespace

TEST_CASE("guards: sgd weight decay without momentum: p -= lr * (g + wd * p)") {
  // lr 0.1, wd 0.5, p = [2, -4]. Step 1, g = [1, 1]: d = [2, -1], p = [1.8, -3.9].
  // Step 2, g = 0: d = 0.5 p = [0.9, -1.95], p = [1.71, -3.705] (decay alone still moves p).
  for (DType dt : {DType::f64, DType::f32}) {
    Tensor p = param({2, -4}, dt);
    SGD opt({p}, SGDOptions{0.1, 0, 0, 0.5, false});
    give_grad(p, {1, 1});
    opt.step();
    check_close(p, {1.8, -3.9}, tol(dt), 0);
    give_grad(p, {0, 0});
    opt.step();
    check_close(p, {1.71, -3.705}, tol(dt), 0);
  }
}

TEST_CASE("guards: sgd weight decay is dampened with the gradient, inside the momentum buffer") {
  // lr 1, momentum 0.5, dampening 0.5, wd 0.25, p = 4; g = 2, then 0, then 0.
  // 1: d = 2 + 0.25*4 = 3; buf = 3 (first step undampened); p = 1.
  // 2: d = 0.25*1 = 0.25; buf = 0.5*3 + 0.5*0.25 = 1.625; p = -0.625.
  // 3: d = 0.25*-0.625 = -0.15625; buf = 0.8125 - 0.078125 = 0.734375; p = -1.359375.
  // (Decay added after the buffer would give p = -0.25 at step 2; undampened decay, -0.75.)
  Tensor p = param({4});
  SGD opt({p}, SGDOptions{1, 0.5, 0.5, 0.25, false});
  const Vec expect_p = {1, -0.625, -1.359375}, expect_buf = {3, 1.625, 0.734375};
  const Vec grads = {2, 0, 0};
  for (size_t s = 0; s < 3; ++s) {
    CAPTURE(s);
    give_grad(p, {grads[s]});
    opt.step();
    check_close(p, {expect_p[s]}, 0, 0);  // binary fractions: exact
    check_close(opt.momentum_buffer(0, 0), {expect_buf[s]}, 0, 0);
  }
}

TEST_CASE("guards: sgd nesterov looks ahead with the decayed gradient") {
  // lr 0.5, momentum 0.5, wd 0.5, nesterov, p = 2; g = 1 then -1.
  // 1: d = 1 + 1 = 2; buf = 2; d = 2 + 0.5*2 = 3; p = 2 - 1.5 = 0.5.
  // 2: d = -1 + 0.25 = -0.75; buf = 1 - 0.75 = 0.25; d = -0.75 + 0.125 = -0.625; p = 0.8125.
  for (DType dt : {DType::f64, DType::f32}) {
    Tensor p = param({2}, dt);
    SGD opt({p}, SGDOptions{0.5, 0.5, 0, 0.5, true});
    give_grad(p, {1});
    opt.step();
    check_close(p, {0.5}, 0, 0);
    give_grad(p, {-1});
    opt.step();
    check_close(p, {0.8125}, 0, 0);
    check_close(opt.momentum_buffer(0, 0), {0.25}, 0, 0);
  }
}

TEST_CASE("guards: sgd with a group multiplier scales the whole step, decay included") {
  // lr 0.2, group multiplier 0.5, wd 1, p = 3, g = 1: p = 3 - 0.1 * (1 + 3) = 2.6.
  Tensor p = param({3});
  SGD opt({ParamGroup{"features", {p}, 0.5}}, SGDOptions{0.2, 0, 0, 1, false});
  give_grad(p, {1});
  opt.step();
  check_close(p, {2.6}, 1e-15, 0);
}

TEST_CASE("guards: sgd over five steps equals torch's update rule written as a loop") {
  // The rule of torch.optim.SGD (1.13), in double, for each option set.
  struct Opt {
    double lr, momentum, dampening, wd;
    bool nesterov;
  };
  std::mt19937_64 rng(23);
  for (const Opt& o : {Opt{0.1, 0.9, 0.1, 0.01, false}, Opt{0.05, 0.9, 0, 0.1, true},
                       Opt{0.2, 0, 0, 0.3, false}, Opt{0.1, 0.5, 0.5, 0, false}}) {
    CAPTURE(o.momentum);
    CAPTURE(o.nesterov);
    Vec p = normal_values(6, rng), buf(6, 0.0);
    Tensor t = param(p);
    SGD opt({t}, SGDOptions{o.lr, o.momentum, o.dampening, o.wd, o.nesterov});
    for (int step = 0; step < 5; ++step) {
      const Vec g = normal_values(6, rng);
      for (size_t i = 0; i < p.size(); ++i) {
        double d = g[i] + o.wd * p[i];
        if (o.momentum != 0) {
          buf[i] = step == 0 ? d : o.momentum * buf[i] + (1 - o.dampening) * d;
          d = o.nesterov ? d + o.momentum * buf[i] : buf[i];
        }
        p[i] -= o.lr * d;
      }
      give_grad(t, g);
      opt.step();
      check_close(t, p, 1e-12, 1e-14);
    }
  }
}

// ---- autograd: an intermediate tensor used more than once sums its gradients ----

TEST_CASE("guards: autograd sums every use of an intermediate tensor") {
  for (DType dt : {DType::f64, DType::f32}) {
    CAPTURE(dtype_name(dt));
    {
      // y = 3x; z = y*y + y; dL/dy = 2y + 1 (three edges: both mul inputs and the add), so
      // dL/dx = 3 (2y + 1): x = [1, -2] -> y = [3, -6] -> [21, -33].
      Tensor x = leaf({1, -2}, {2}, dt);
      Tensor y = x * 3.0;
      sum(y * y + y).backward();
      check_close(x.grad(), {21, -33}, tol(dt), 0);
    }
    {
      // y = 2x used at three depths: u = 3y, v = u*y, w = v + y = 3y^2 + y; dw/dy = 6y + 1.
      // x = 2: y = 4, dw/dy = 25, dw/dx = 50. y's node must wait for u's gradient.
      Tensor x = leaf({2}, {1}, dt);
      Tensor y = x * 2.0;
      Tensor u = y * 3.0;
      Tensor w = u * y + y;
      w.backward();
      check_close(w, {52}, 0, 0);
      check_close(x.grad(), {50}, tol(dt), 0);
    }
    {
      // One add hands the same gradient to two edges: s = (y + q) + y with y = 2x, q = 5x:
      // ds/dx = 2 + 5 + 2 = 9 (summing into y must not write into q's gradient).
      Tensor x = leaf({1, 3}, {2}, dt);
      Tensor y = x * 2.0, q = x * 5.0;
      sum((y + q) + y).backward();
      check_close(x.grad(), {9, 9}, tol(dt), 0);
    }
    {
      // A leaf used directly and through an intermediate: z = (x*x)*x, dz/dx = 3x^2.
      Tensor x = leaf({2, -1}, {2}, dt);
      Tensor z = (x * x) * x;
      z.backward(Tensor::full({2}, 1.0, dt));
      check_close(x.grad(), {12, 3}, tol(dt), 0);
    }
    {
      // Two backward calls over a retained graph: the intermediate's sum is formed afresh
      // each time, the leaf accumulates: 2 * 3 (2y + 1) with y = 3x, x = 1 -> 42.
      Tensor x = leaf({1}, {1}, dt);
      Tensor y = x * 3.0;
      Tensor z = y * y + y;
      z.backward(Tensor(), /*retain_graph=*/true);
      z.backward();
      check_close(x.grad(), {42}, tol(dt), 0);
    }
  }
}

TEST_CASE("guards: a leaf's gradient is its own copy, not the tensor handed to backward") {
  // A leaf as the root: backward(g) twice gives 2g, and the caller's g stays as it was.
  Tensor x = leaf({1, 2}, {2});
  Tensor g = Tensor::from_vector({3, 4}, {2}, DType::f64);
  x.backward(g);
  x.backward(g);
  check_close(x.grad(), {6, 8}, 0, 0);
  check_close(g, {3, 4}, 0, 0);
  g.fill_(0);
  check_close(x.grad(), {6, 8}, 0, 0);
  // Through reshape, whose gradient is the incoming one with the input's shape.
  Tensor y = leaf({1, 2, 3, 4}, {4});
  Tensor gy = Tensor::from_vector({1, 1, 1, 1}, {2, 2}, DType::f64);
  reshape(y, {2, 2}).backward(gy);
  gy.fill_(7);
  check_close(y.grad(), {1, 1, 1, 1}, 0, 0);
}

TEST_CASE("guards: tensors that do not require grad get no gradient, whatever op they feed") {
  // x requires grad; c, the image, the targets and the constant part of a concat do not.
  Tensor x = leaf({0.5, -1, 2, 1.5}, {1, 1, 2, 2});
  Tensor c = Tensor::from_vector({2, 3, -1, 4}, {1, 1, 2, 2}, DType::f64);
  Tensor row = Tensor::from_vector({1, 2}, {2}, DType::f64);  // broadcast along the last dim
  Tensor image = Tensor::full({1, 1, 3, 3}, 0.5, DType::f64);
  Tensor w = leaf({1, -1, 2, 0.5}, {1, 1, 2, 2});
  Tensor targets = Tensor::from_vector({1, 0, 1, 0}, {1, 4}, DType::f64);
  Tensor loss = sum(x + c) + sum(x - c) + sum(x * c) + sum(x / row) + sum(c / x) +
                sum(conv2d(image, w, Tensor())) + bce_with_logits(reshape(x, {1, 4}), targets) +
                sum(concat({x, c}, 1));
  loss.backward();
  CHECK(x.grad().defined());
  CHECK(w.grad().defined());
  for (const Tensor* t : {&c, &row, &image, &targets}) CHECK_FALSE(t->grad().defined());
}

TEST_SUITE("cuda") {
  TEST_CASE("guards cuda: strided and dilated conv2d matches the naive loop") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    check_all_strided(Device::cuda);
  }

  TEST_CASE("guards cuda: max_pool2d ties and relu's kink") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    for (DType dt : {DType::f64, DType::f32}) {
      check_pool_ties(dt, Device::cuda);
      check_relu_kink(dt, Device::cuda);
    }
  }
}
