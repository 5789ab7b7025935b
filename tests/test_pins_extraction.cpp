// Pins of issue 20 for instance extraction (docs/instances.md):
//   - the proposal limit when MORE proposals pass the size filter than the limit: officially the
//     first 100 proposals are taken and then filtered; with filter_before_limit, the first 100
//     that pass the filter; and the default constants 100, [0.00002, 0.85);
//   - the background prior Q = [U < 0.95 * mean(U)] with U the bicubic-upsampled CRM: the mean is
//     that of U, not of the CRM before upsampling. The older tests use CRMs whose upsampling is
//     the identity or a constant, where both means agree; here they differ, and the expected
//     scores come from naive loops written in this file (16-tap bicubic from Keys' kernel, a
//     pixel-by-pixel morphological gradient), not from the code under test.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "prm/instances.h"
#include "references.h"

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

prm::Mask box(int height, int width, int y0, int y1, int x0, int x1) {
  prm::Mask m(height, width);
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) m.at(y, x) = 1;
  return m;
}

prm::PeakPrm zero_peak(int c, int height, int width) {
  prm::PeakPrm p;
  p.peak.c = c;
  p.height = height;
  p.width = width;
  p.prm.assign(static_cast<size_t>(height) * width, 0.0f);
  return p;
}

// 5x5 morphological gradient pixel by pixel, OpenCV's border rule (outside never wins).
bool on_contour(const prm::Mask& m, int y, int x) {
  bool any = false, all = true;
  for (int v = y - 2; v <= y + 2; ++v)
    for (int u = x - 2; u <= x + 2; ++u) {
      if (v < 0 || u < 0 || v >= m.height || u >= m.width) continue;
      any = any || m.at(v, u);
      all = all && m.at(v, u);
    }
  return any && !all;
}

// The score of the formula, from the parts: 0.8 sum(R, S) + sum(R, C) - 1e-5 sum(Q, S).
double naive_score(const prm::PeakPrm& p, const prm::Mask& s, const std::vector<uint8_t>& q) {
  double in = 0, contour = 0, background = 0;
  for (int y = 0; y < s.height; ++y)
    for (int x = 0; x < s.width; ++x) {
      const size_t i = static_cast<size_t>(y) * s.width + x;
      if (s.at(y, x)) in += p.prm[i], background += q[i];
      if (on_contour(s, y, x)) contour += p.prm[i];
    }
  return 0.8 * in + contour - 1e-5 * background;
}

}  // namespace

TEST_CASE("instances: more proposals pass the size filter than the limit of 100") {
  // 20x20 image (400 px): a proposal passes when 0.008 <= area < 340. 130 proposals; every tenth
  // (j % 10 == 0) fails the filter: j % 20 == 0 is the whole image (400 >= 340), j % 20 == 10
  // is empty (0 < 0.008). The others are single pixels in rows 0..3, away from the PRM, so they
  // score 0 (the CRM is constant 1: Q = [1 < 0.95] is empty), except:
  //   j = 55:  the 2x2 box rows/cols 12..13; R = 1 at (10, 10) lies on its 5x5 contour (the
  //            dilation, rows/cols 10..15; the erosion is empty), not inside: score 0 + 1 = 1,
  //   j = 105, 115: the 3x3 box rows/cols 9..11, around the peak: 0.8 * 1 + 1 = 1.8.
  // Official (limit, then filter): proposals 0..99 are looked at, the 90 that pass are scored;
  // 55 wins. filter_before_limit: the first 100 that pass are 1..111 without the multiples of
  // 10 (111 - 11 = 100 of them), so 105 is scored and wins, 112..129 are not, nor 115.
  const int H = 20, W = 20, P = 130;
  std::vector<prm::Mask> props;
  for (int j = 0; j < P; ++j) {
    if (j % 20 == 0) props.push_back(box(H, W, 0, H - 1, 0, W - 1));
    else if (j % 20 == 10) props.push_back(prm::Mask(H, W));
    else props.push_back(box(H, W, (j / 20) % 4, (j / 20) % 4, j % 20, j % 20));
  }
  props[55] = box(H, W, 12, 13, 12, 13);
  props[105] = box(H, W, 9, 11, 9, 11);
  props[115] = props[105];
  std::vector<prm::PeakPrm> peaks = {zero_peak(0, H, W)};
  peaks[0].prm[10 * W + 10] = 1.0f;
  const std::vector<float> crm(4, 1.0f);

  const prm::InstanceOptions official;  // the defaults
  REQUIRE_FALSE(official.filter_before_limit);
  auto s = prm::proposal_scores(peaks, crm.data(), 1, 2, 2, props, official);
  REQUIRE(s.size() == 1);
  REQUIRE(s[0].size() == static_cast<size_t>(P));
  for (int j = 0; j < P; ++j) {
    CAPTURE(j);
    if (j >= 100 || j % 10 == 0) {
      CHECK(s[0][j] == kNegInf);
    } else {
      CHECK(s[0][j] == doctest::Approx(j == 55 ? 1.0 : 0.0).epsilon(1e-9));
    }
  }
  auto inst = prm::extract_instances(peaks, crm.data(), 1, 2, 2, props, official);
  REQUIRE(inst.size() == 1);
  CHECK(inst[0].proposal == 55);
  CHECK(inst[0].score == doctest::Approx(1.0).epsilon(1e-9));

  prm::InstanceOptions first_passing;
  first_passing.filter_before_limit = true;
  s = prm::proposal_scores(peaks, crm.data(), 1, 2, 2, props, first_passing);
  int scored = 0;
  for (int j = 0; j < P; ++j) {
    CAPTURE(j);
    if (j > 111 || j % 10 == 0) {
      CHECK(s[0][j] == kNegInf);
    } else {
      ++scored;
      const double want = j == 55 ? 1.0 : j == 105 ? 1.8 : 0.0;
      CHECK(s[0][j] == doctest::Approx(want).epsilon(1e-9));
    }
  }
  CHECK(scored == 100);
  inst = prm::extract_instances(peaks, crm.data(), 1, 2, 2, props, first_passing);
  REQUIRE(inst.size() == 1);
  CHECK(inst[0].proposal == 105);
  CHECK(inst[0].score == doctest::Approx(1.8).epsilon(1e-9));
}

TEST_CASE("instances: the default size filter is [0.00002, 0.85) of the image area") {
  // 500x500 = 250000 px: 0.00002 * 250000 = 5 and 0.85 * 250000 = 212500, both exact in double.
  // Areas 4 and 212500 are out; 5 and 212499 are in (the lower bound inclusive, the upper one
  // exclusive). R = 0 everywhere and the CRM is constant 1 (Q empty), so a scored proposal has
  // score exactly 0.
  const int H = 500, W = 500;
  std::vector<prm::Mask> props = {box(H, W, 0, 0, 0, 3),          // 4 px: out
                                  box(H, W, 0, 0, 0, 4),          // 5 px: in
                                  box(H, W, 0, H - 1, 0, 424),    // 500 * 425 = 212500: out
                                  box(H, W, 0, H - 1, 0, 424)};   // 212499 below: in
  props[3].at(H - 1, 424) = 0;
  REQUIRE(props[0].area() == 4);
  REQUIRE(props[2].area() == 212500);
  REQUIRE(props[3].area() == 212499);
  const std::vector<prm::PeakPrm> peaks = {zero_peak(0, H, W)};
  const std::vector<float> crm(1, 1.0f);
  const auto s = prm::proposal_scores(peaks, crm.data(), 1, 1, 1, props);
  CHECK(s[0][0] == kNegInf);
  CHECK(s[0][1] == 0.0);
  CHECK(s[0][2] == kNegInf);
  CHECK(s[0][3] == 0.0);
}

TEST_CASE("instances: the background prior thresholds the upsampled CRM at 0.95 x ITS mean") {
  // A 3x3 CRM (class 1; class 0 is a decoy) bicubic-upsampled to 8x8. The upsampled map U
  // (Keys a = -0.75, computed by this file's naive loop) overshoots near the peak value 8, and
  // its mean, 2.4236, is not the CRM's mean, 21/9 = 2.3333. Thresholds 0.95 * 2.4236 = 2.3024
  // and 0.95 * 2.3333 = 2.2167 put U[5][1], U[5][6], U[6][2], U[6][5] (2.265, 2.265, 2.256,
  // 2.256) on different sides: Q has 36 pixels by the rule, 32 with the CRM's mean; per row
  // (8 8 4 0 0 4 6 6) against (8 8 4 0 0 2 4 6). No value of U lies within 0.03 of either
  // threshold, so float rounding cannot move a pixel.
  const int H = 8, W = 8, h = 3, w = 3;
  std::vector<float> crms(2 * h * w, 0.0f);
  for (int i = 0; i < h * w; ++i) crms[i] = static_cast<float>(i % 2 ? 5 : -3);  // class 0
  const float crm1[9] = {0, 1, 0, 4, 8, 4, 0, 4, 0};
  std::copy(crm1, crm1 + 9, crms.begin() + h * w);

  const std::vector<double> up =
      naive_bicubic(std::vector<float>(crm1, crm1 + 9), h, w, H, W);
  double mean = 0;
  for (double v : up) mean += v;
  mean /= H * W;
  std::vector<uint8_t> q(H * W), q_wrong(H * W);
  int count = 0, count_wrong = 0;
  for (int i = 0; i < H * W; ++i) {
    q[i] = up[i] < 0.95 * mean;
    q_wrong[i] = up[i] < 0.95 * (21.0 / 9.0);
    count += q[i];
    count_wrong += q_wrong[i];
    REQUIRE(std::fabs(up[i] - 0.95 * mean) > 0.03);
    REQUIRE(std::fabs(up[i] - 0.95 * 21.0 / 9.0) > 0.03);
  }
  REQUIRE(count == 36);  // the numbers in the comment above
  REQUIRE(count_wrong == 32);

  // Proposals: pairs of rows, the bottom half, the left half (all within the size limits).
  const std::vector<prm::Mask> props = {box(H, W, 0, 1, 0, 7), box(H, W, 2, 3, 0, 7),
                                        box(H, W, 4, 5, 0, 7), box(H, W, 5, 6, 0, 7),
                                        box(H, W, 6, 7, 0, 7), box(H, W, 4, 7, 0, 7),
                                        box(H, W, 0, 7, 0, 3), box(H, W, 3, 6, 1, 6)};
  // A PRM with some mass everywhere, so the R terms are not trivially 0.
  prm::PeakPrm p = zero_peak(1, H, W);
  for (int i = 0; i < H * W; ++i) p.prm[i] = static_cast<float>((i * 7 % 11) / 100.0);
  const auto s = prm::proposal_scores({p}, crms.data(), 2, h, w, props);
  int differs = 0;
  for (size_t j = 0; j < props.size(); ++j) {
    CAPTURE(j);
    const double want = naive_score(p, props[j], q);
    CHECK_MESSAGE(std::fabs(s[0][j] - want) < 1e-9, "got ", s[0][j], ", expected ", want);
    differs += std::fabs(naive_score(p, props[j], q_wrong) - want) > 1e-6;
  }
  CHECK(differs >= 3);  // the test can tell the two means apart on rows 5 and 6
}

TEST_CASE("instances: Q is a strict comparison: a constant-zero CRM has no background") {
  // U = 0 everywhere, 0.95 * mean = 0, and 0 < 0 is false: Q is empty and the penalty 0. A
  // constant -1 CRM (-1 < -0.95) makes Q the whole image: the penalty is 1e-5 * |S|.
  const int H = 10, W = 10;
  const std::vector<prm::Mask> props = {box(H, W, 2, 4, 2, 4)};  // 9 px, R = 0: score = -penalty
  const std::vector<prm::PeakPrm> peaks = {zero_peak(0, H, W)};
  const std::vector<float> zero(4, 0.0f), minus_one(4, -1.0f);
  CHECK(prm::proposal_scores(peaks, zero.data(), 1, 2, 2, props)[0][0] == 0.0);
  CHECK(prm::proposal_scores(peaks, minus_one.data(), 1, 2, 2, props)[0][0] ==
        doctest::Approx(-9e-5).epsilon(1e-9));
}

TEST_CASE("instances: the background threshold is 0.95 x the mean, not the mean itself") {
  // A 10x10 CRM at the PRM size (bicubic to the same size copies it): rows 0..4 are 1.0, rows
  // 5..7 0.96, rows 8..9 0.88. Mean (50 + 28.8 + 17.6) / 100 = 0.964; 0.95 * 0.964 = 0.9158,
  // so Q = rows 8..9 (20 px). (The mean itself as threshold would add rows 5..7: 50 px;
  // 0.9 * 0.964 = 0.8676 would leave Q empty.) Proposal S = rows 5..9 (50 px), R = 0:
  // score = -1e-5 * 20.
  const int H = 10, W = 10;
  std::vector<float> crm(H * W);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) crm[y * W + x] = y < 5 ? 1.0f : y < 8 ? 0.96f : 0.88f;
  const std::vector<prm::Mask> props = {box(H, W, 5, 9, 0, 9)};
  const std::vector<prm::PeakPrm> peaks = {zero_peak(0, H, W)};
  CHECK(prm::proposal_scores(peaks, crm.data(), 1, H, W, props)[0][0] ==
        doctest::Approx(-20e-5).epsilon(1e-9));
}
