// Peak stimulation (tensor/ops/peak_stimulation.h) against hand-computed planes and an
// independent naive reference (explicit -inf padding, a full sort for the median), both
// backward rules, and the CUDA kernel against the CPU one.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "helpers.h"
#include "tensor/ops.h"

using namespace prm;

namespace {

struct NaivePeaks {
  std::vector<double> kept;    // [planes * H * W]
  std::vector<double> scores;  // [planes]
  std::vector<double> counts;  // [planes]
};

// The specification written out plainly: pad with -inf, the first maximum of each 3x3 window
// in row-major order, the lower middle of the sorted plane.
NaivePeaks naive_peaks(const std::vector<double>& x, int64_t planes, int64_t H, int64_t W) {
  const double ninf = -std::numeric_limits<double>::infinity();
  NaivePeaks r{std::vector<double>(x.size(), 0.0), {}, {}};
  for (int64_t p = 0; p < planes; ++p) {
    const double* m = x.data() + p * H * W;
    std::vector<double> sorted(m, m + H * W);
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[(H * W - 1) / 2];
    double sum = 0, n = 0;
    for (int64_t y = 0; y < H; ++y)
      for (int64_t xx = 0; xx < W; ++xx) {
        int64_t best_y = -2, best_x = -2;
        double best = ninf;
        for (int64_t dy = -1; dy <= 1; ++dy)
          for (int64_t dx = -1; dx <= 1; ++dx) {
            const int64_t yy = y + dy, xw = xx + dx;
            const bool inside = yy >= 0 && yy < H && xw >= 0 && xw < W;
            const double v = inside ? m[yy * W + xw] : ninf;
            if (best_y == -2 || v > best) {
              best = v;
              best_y = yy;
              best_x = xw;
            }
          }
        if (best_y == y && best_x == xx && m[y * W + xx] >= median) {
          r.kept[p * H * W + y * W + xx] = 1;
          sum += m[y * W + xx];
          n += 1;
        }
      }
    r.scores.push_back(sum / n);
    r.counts.push_back(n);
  }
  return r;
}

// Values drawn from a few levels, so planes have many ties (window ties and median ties).
std::vector<double> tied_values(int64_t n, int levels, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> pick(0, levels - 1);
  std::vector<double> v(n);
  for (double& x : v) x = 0.25 * pick(rng) - 1.0;
  return v;
}

}  // namespace

TEST_CASE("peak stimulation: a hand-computed plane") {
  // Peaks (first max of the -inf-padded 3x3 window): 9 at (0,1), 8 at (2,0), 10 at (3,3); 6, 7
  // and 5 lose to a neighbour. Sorted values 0 0 1 1 2 2 2 3 3 4 5 6 7 8 9 10: the lower middle
  // (index 7) is 3, so all three peaks are kept: score (9 + 8 + 10) / 3 = 9, n = 3.
  const std::vector<double> plane = {1, 9, 2, 0, 3, 4, 5, 6, 8, 2, 1, 7, 0, 3, 2, 10};
  Tensor crm = Tensor::from_vector(plane, {1, 1, 4, 4}, DType::f64);
  PeakStimulationSaved saved;
  Tensor s = peak_stimulation_forward(crm, 3, &saved);
  check_close(s, {9.0}, 1e-15, 1e-15);
  check_close(saved.counts, {3.0}, 0, 0);
  const std::vector<double> kept = {0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1};
  check_close(saved.peak_map, kept, 0, 0);
  // ds = 1.5: the mean rule gives each kept peak 1.5 / 3 = 0.5, the official rule 1.5.
  Tensor ds = Tensor::from_vector({1.5}, {1, 1}, DType::f64);
  std::vector<double> mean_grad(16, 0.0), official_grad(16, 0.0);
  for (int i : {1, 8, 15}) mean_grad[i] = 0.5, official_grad[i] = 1.5;
  check_close(peak_stimulation_backward_mean(ds, saved), mean_grad, 1e-15, 1e-15);
  check_close(peak_stimulation_backward_official(ds, saved), official_grad, 1e-15, 1e-15);
}

TEST_CASE("peak stimulation: ties go to the first maximum; the median filter drops low peaks") {
  // All equal: every window's first maximum is its top-left real pixel, so only (0,0) is a peak.
  PeakStimulationSaved saved;
  Tensor flat = Tensor::full({1, 1, 3, 4}, 2.5, DType::f64);
  check_close(peak_stimulation_forward(flat, 3, &saved), {2.5}, 0, 0);
  std::vector<double> only_first(12, 0.0);
  only_first[0] = 1;
  check_close(saved.peak_map, only_first, 0, 0);
  // [[5 5] [1 1]]: (0,1) loses the tie to (0,0); median of 1 1 5 5 is 1. Then a plane whose
  // low peak 0 (at (2,2), isolated by -1s... here its window holds only smaller values) falls
  // below the median 2 and is dropped: peaks 4 at (0,0) and 0 at (2,2); median of the sorted
  // -1 -1 -1 0 2 2 2 3 4 is 2, so only 4 is kept.
  Tensor tie = Tensor::from_vector({5, 5, 1, 1}, {1, 1, 2, 2}, DType::f64);
  check_close(peak_stimulation_forward(tie, 3, &saved), {5.0}, 0, 0);
  check_close(saved.peak_map, {1, 0, 0, 0}, 0, 0);
  Tensor low = Tensor::from_vector({4, 3, 2, 2, 2, -1, -1, -1, 0}, {1, 1, 3, 3}, DType::f64);
  check_close(peak_stimulation_forward(low, 3, &saved), {4.0}, 0, 0);
  check_close(saved.peak_map, {1, 0, 0, 0, 0, 0, 0, 0, 0}, 0, 0);
}

TEST_CASE("peak stimulation matches the naive reference on tied and distinct planes") {
  std::mt19937_64 rng(11);
  for (auto [H, W, levels] : {std::tuple<int64_t, int64_t, int>{7, 6, 3}, {8, 8, 5}, {5, 9, 1000},
                              {1, 7, 2}, {16, 12, 4}}) {
    CAPTURE(H);
    CAPTURE(W);
    const int64_t planes = 6;
    const std::vector<double> v = tied_values(planes * H * W, levels, rng);
    const NaivePeaks ref = naive_peaks(v, planes, H, W);
    for (DType dt : {DType::f64, DType::f32}) {
      PeakStimulationSaved saved;
      Tensor s = peak_stimulation_forward(Tensor::from_vector(v, {2, 3, H, W}, dt), 3, &saved);
      check_close(s, ref.scores, 1e-6, 1e-6);
      check_close(saved.counts, ref.counts, 0, 0);
      check_close(saved.peak_map, ref.kept, 0, 0);
    }
  }
}

TEST_CASE("peak stimulation: the official backward is n_c times the mean one") {
  std::mt19937_64 rng(3);
  Tensor crm = Tensor::randn({2, 4, 10, 9}, rng, DType::f64);
  Tensor ds = Tensor::randn({2, 4}, rng, DType::f64);
  PeakStimulationSaved saved;
  peak_stimulation_forward(crm, 3, &saved);
  const std::vector<double> mean = peak_stimulation_backward_mean(ds, saved).to_vector();
  const std::vector<double> official = peak_stimulation_backward_official(ds, saved).to_vector();
  const std::vector<double> counts = saved.counts.to_vector();
  std::vector<double> scaled(mean.size());
  for (size_t i = 0; i < mean.size(); ++i) scaled[i] = mean[i] * counts[i / 90];
  check_close(official, scaled, 1e-12, 1e-15);
  // Through autograd: the mode picks the rule.
  for (PeakGrad mode : {PeakGrad::mean, PeakGrad::official}) {
    Tensor x = crm.detach().set_requires_grad(true);
    peak_stimulation(x, mode).backward(ds);
    check_close(x.grad(), mode == PeakGrad::mean ? mean : official, 1e-15, 1e-15);
  }
}

TEST_CASE("peak stimulation errors name the problem") {
  CHECK_THROWS_WITH_AS(peak_stimulation(Tensor::zeros({2, 3, 4}), PeakGrad::mean),
                       doctest::Contains("class response maps [N, C, H, W]"), Error);
  CHECK_THROWS_WITH_AS(peak_stimulation(Tensor::zeros({1, 1, 4, 4}), PeakGrad::mean, 2),
                       doctest::Contains("window 2 must be odd"), Error);
  CHECK_THROWS_WITH_AS(parse_peak_grad("sum"), doctest::Contains("not one of mean, official"),
                       Error);
}

TEST_SUITE("cuda") {
  TEST_CASE("peak stimulation on cuda matches the cpu (ties, 112x112 planes, both rules)") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    std::mt19937_64 rng(5);
    for (auto [H, W, levels] : {std::tuple<int64_t, int64_t, int>{112, 112, 50}, {7, 6, 3},
                                {14, 14, 100000}}) {
      const std::vector<double> v = tied_values(2 * 20 * H * W, levels, rng);
      const std::vector<double> g = tied_values(2 * 20, 7, rng);
      for (DType dt : {DType::f64, DType::f32}) {
        PeakStimulationSaved cpu, gpu;
        Tensor crm = Tensor::from_vector(v, {2, 20, H, W}, dt);
        Tensor s_cpu = peak_stimulation_forward(crm, 3, &cpu);
        Tensor s_gpu = peak_stimulation_forward(crm.to(Device::cuda), 3, &gpu);
        check_close(s_gpu.to_vector(), s_cpu.to_vector(), 1e-6, 1e-6);
        check_close(gpu.counts.to_vector(), cpu.counts.to_vector(), 0, 0);
        check_close(gpu.peak_map.to_vector(), cpu.peak_map.to_vector(), 0, 0);
        Tensor ds = Tensor::from_vector(g, {2, 20}, dt);
        check_close(peak_stimulation_backward_official(ds.to(Device::cuda), gpu).to_vector(),
                    peak_stimulation_backward_official(ds, cpu).to_vector(), 1e-6, 1e-6);
        check_close(peak_stimulation_backward_mean(ds.to(Device::cuda), gpu).to_vector(),
                    peak_stimulation_backward_mean(ds, cpu).to_vector(), 1e-6, 1e-6);
      }
    }
  }
}

TEST_CASE("peak stimulation: a NaN in a plane makes that class's score NaN") {
  std::vector<double> v = {1, 9, 2, 0, 3, 4, 5, 6, 8, 2, 1, 7, 0, 3, 2, 10};
  std::vector<double> both = v;
  both.insert(both.end(), v.begin(), v.end());
  both[16 + 5] = std::nan("");  // class 1, not at a peak
  Tensor s = peak_stimulation_forward(Tensor::from_vector(both, {1, 2, 4, 4}, DType::f64), 3,
                                      nullptr);
  const std::vector<double> scores = s.to_vector();
  CHECK(scores[0] == 9.0);
  CHECK(std::isnan(scores[1]));
}
