// Instance extraction (docs/prm.md step 6) and its pictures: bicubic upsampling against hand-derived
// weights and a naive 16-tap loop, the morphological gradient and its border rule by hand, the
// proposal scores of a hand-made case (each expected number derived in the comments), the size
// filter and proposal limit, greedy NMS with PRM merging, label maps, bad input, and the PNGs.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "data/image.h"
#include "prm/instances.h"
#include "references.h"
#include "prm/visualize.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace {

// Mask of height x width with rows [y0, y1] x columns [x0, x1] on (inclusive).
prm::Mask box(int height, int width, int y0, int y1, int x0, int x1) {
  prm::Mask m(height, width);
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) m.at(y, x) = 1;
  return m;
}

prm::PeakPrm peak(int c, int height, int width) {
  prm::PeakPrm p;
  p.peak.c = c;
  p.peak.y = 7;
  p.peak.x = 9;
  p.height = height;
  p.width = width;
  p.prm.assign(static_cast<size_t>(height) * width, 0.0f);
  return p;
}

// Naive morphological gradient, pixel by pixel: dilation = any on pixel in the in-image part of
// the window, erosion = all of them on (OpenCV's border rule).
prm::Mask naive_gradient(const prm::Mask& m, int size) {
  const int r = size / 2;
  prm::Mask out(m.height, m.width);
  for (int y = 0; y < m.height; ++y) {
    for (int x = 0; x < m.width; ++x) {
      bool any = false, all = true;
      for (int v = y - r; v <= y + r; ++v) {
        for (int u = x - r; u <= x + r; ++u) {
          if (v < 0 || u < 0 || v >= m.height || u >= m.width) continue;
          any = any || m.at(v, u);
          all = all && m.at(v, u);
        }
      }
      out.at(y, x) = any && !all;
    }
  }
  return out;
}

std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

}  // namespace

TEST_CASE("bicubic_upsample: 2x2 -> 4x4 by hand") {
  // Scale 2/4 = 0.5. Output 0: src = 0.5 * 0.5 - 0.5 = -0.25, floor -1, t = 0.75; taps -2..1
  // clamp to 0,0,0,1 with weights W(1.75) = -0.03515625, W(0.75) = 0.26171875,
  // W(0.25) = 0.87890625, W(1.25) = -0.10546875: in[0] gets 1.10546875, in[1] -0.10546875.
  // Output 1: src = 0.25, floor 0, t = 0.25; taps -1..2 clamp to 0,0,1,1 with weights
  // W(1.25), W(0.25), W(0.75), W(1.75): in[0] 0.7734375, in[1] 0.2265625. Outputs 2, 3 mirror.
  // So 1-D, [0, 1] -> u = [-0.10546875, 0.2265625, 0.7734375, 1.10546875] (torch gives the same).
  // in = 1 + x + 2y is linear and the weights sum to 1, so out[y][x] = 1 + u[x] + 2 u[y].
  const std::vector<float> in = {1, 2, 3, 4};
  const std::vector<float> out = prm::bicubic_upsample(in.data(), 2, 2, 4, 4);
  const double u[4] = {-0.10546875, 0.2265625, 0.7734375, 1.10546875};
  REQUIRE(out.size() == 16);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) CHECK(out[y * 4 + x] == doctest::Approx(1 + u[x] + 2 * u[y]));
  CHECK(out[0] == doctest::Approx(0.68359375));  // 1 - 0.10546875 - 0.2109375
}

TEST_CASE("bicubic_upsample: odd ratios up and down match a naive 16-tap loop; same size copies") {
  const int h = 3, w = 5;
  std::vector<float> in(h * w);
  for (int i = 0; i < h * w; ++i) in[i] = static_cast<float>(std::sin(1.7 * i) * 3 + 0.5 * i);
  for (auto [H, W] : {std::pair<int, int>{7, 4}, {8, 13}, {2, 2}, {1, 9}}) {
    const std::vector<float> got = prm::bicubic_upsample(in.data(), h, w, H, W);
    const std::vector<double> want = naive_bicubic(in, h, w, H, W);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-6));
  }
  const std::vector<float> same = prm::bicubic_upsample(in.data(), h, w, h, w);
  for (int i = 0; i < h * w; ++i) CHECK(same[i] == in[i]);
  CHECK_THROWS_AS(prm::bicubic_upsample(in.data(), h, w, 0, 4), prm::Error);
}

TEST_CASE("morphological_gradient: a square by hand, and OpenCV's border rule") {
  // A 3x3 square (rows/cols 3..5) in 9x9. 5x5 square: the dilation is rows/cols 1..7 (49 px),
  // the erosion is empty (no 5x5 window fits in a 3x3 square): the gradient is the 7x7 block.
  const prm::Mask sq = box(9, 9, 3, 5, 3, 5);
  const prm::Mask g5 = prm::morphological_gradient(sq, 5);
  CHECK(g5.area() == 49);
  CHECK(g5.at(1, 1) == 1);
  CHECK(g5.at(4, 4) == 1);
  CHECK(g5.at(0, 4) == 0);
  // 3x3 square: dilation rows/cols 2..6 (25 px) minus the erosion, the centre (4,4): 24 px.
  const prm::Mask g3 = prm::morphological_gradient(sq, 3);
  CHECK(g3.area() == 24);
  CHECK(g3.at(4, 4) == 0);
  CHECK(g3.at(2, 2) == 1);
  // A 5x5 block in the top-left corner (rows/cols 0..4). Dilation: rows/cols 0..6 (49 px;
  // outside pixels off). Erosion with outside pixels on: (y, x) survives when its window's
  // in-image part lies in 0..4, i.e. y + 2 <= 4 and x + 2 <= 4: rows/cols 0..2 (9 px).
  // Gradient = 49 - 9 = 40 and the corner (0,0) is not on it. (Were outside pixels off for the
  // erosion too, only (2,2) would survive: 48 px and the corner on.)
  const prm::Mask corner = prm::morphological_gradient(box(9, 9, 0, 4, 0, 4), 5);
  CHECK(corner.area() == 40);
  CHECK(corner.at(0, 0) == 0);
  CHECK(corner.at(2, 2) == 0);
  CHECK(corner.at(0, 3) == 1);
  CHECK(corner.at(6, 6) == 1);
  // A full mask has no contour; an empty one neither.
  CHECK(prm::morphological_gradient(box(4, 6, 0, 3, 0, 5), 5).area() == 0);
  CHECK(prm::morphological_gradient(prm::Mask(4, 6), 5).area() == 0);
  CHECK_THROWS_AS(prm::morphological_gradient(sq, 4), prm::Error);
}

TEST_CASE("morphological_gradient: random masks match a naive window loop") {
  uint32_t state = 12345;  // a small LCG, so the masks are the same on every platform
  auto next = [&state]() { return (state = state * 1664525u + 1013904223u) >> 16; };
  for (int trial = 0; trial < 40; ++trial) {
    const int h = 1 + next() % 19, w = 1 + next() % 23;
    prm::Mask m(h, w);
    const int density = next() % 4;  // empty-ish, sparse, half, dense
    for (uint8_t& v : m.data) v = static_cast<int>(next() % 4) < density;
    for (int size : {1, 3, 5, 7}) {
      const prm::Mask got = prm::morphological_gradient(m, size);
      const prm::Mask want = naive_gradient(m, size);
      REQUIRE_MESSAGE(got.data == want.data, "trial ", trial, " ", h, "x", w, " size ", size);
    }
  }
}

TEST_CASE("resize_mask_nearest and mask_iou") {
  prm::Mask m(4, 4);
  m.at(1, 1) = 1;  // 4 -> 2: source index floor((d + 0.5) * 2) = 1, 3
  m.at(3, 2) = 1;
  const prm::Mask small = prm::resize_mask_nearest(m, 2, 2);
  CHECK(small.data == std::vector<uint8_t>{1, 0, 0, 0});
  const prm::Mask big = prm::resize_mask_nearest(small, 4, 4);  // 2 -> 4: each pixel doubled
  CHECK(big.area() == 4);
  CHECK(big.at(0, 0) + big.at(0, 1) + big.at(1, 0) + big.at(1, 1) == 4);
  CHECK(prm::mask_iou(box(1, 20, 0, 0, 0, 9), box(1, 20, 0, 0, 7, 9)) == 0.3);
  CHECK(prm::mask_iou(prm::Mask(2, 2), prm::Mask(2, 2)) == 0.0);
}

namespace {

// The hand-made case. A 10x10 image, two classes. CRM 0 is 3 on columns 0..4 and 2 on 5..9:
// mean 2.5, threshold 0.95 * 2.5 = 2.375, so Q0 = columns 5..9. CRM 1 is the opposite: Q1 =
// columns 0..4. The CRMs are 10x10, so the bicubic upsampling is the identity.
// Proposals:  A = rows 2..4 x cols 2..4 (area 9)   B = all rows x cols 0..4 (50)
//             Cp = rows 2..4 x cols 6..8 (9)        D = the whole image (100 >= 0.85 * 100: out)
// Contours (5x5 gradient): A: rows/cols 0..6 (its erosion is empty); B: cols 3..6, all rows
// (dilation cols 0..6, erosion cols 0..2, outside on); Cp: rows 0..6 x cols 4..9.
// Peak 0, class 0, R = 0.6 at (3,3), 0.4 at (0,0):
//   A:  0.8 * 0.6 + (0.6 + 0.4) - 1e-5 * 0  = 1.48
//   B:  0.8 * 1.0 + 0.6         - 1e-5 * 0  = 1.4
//   Cp: 0         + 0           - 1e-5 * 9  = -0.00009
// Peak 1, class 1, R = 1.0 at (3,7):
//   A:  0 + 0 - 1e-5 * 9 = -0.00009;   B: 0 + 0 - 1e-5 * 50 = -0.0005
//   Cp: 0.8 * 1.0 + 1.0 - 1e-5 * 0 = 1.8
struct HandCase {
  std::vector<prm::PeakPrm> prms;
  std::vector<float> crms;
  std::vector<prm::Mask> proposals;
  HandCase() {
    prms = {peak(0, 10, 10), peak(1, 10, 10)};
    prms[0].prm[3 * 10 + 3] = 0.6f;
    prms[0].prm[0] = 0.4f;
    prms[1].prm[3 * 10 + 7] = 1.0f;
    crms.assign(2 * 100, 2.0f);
    for (int y = 0; y < 10; ++y)
      for (int x = 0; x < 10; ++x) crms[(x < 5 ? 0 : 100) + y * 10 + x] = 3.0f;
    proposals = {box(10, 10, 2, 4, 2, 4), box(10, 10, 0, 9, 0, 4), box(10, 10, 2, 4, 6, 8),
                 box(10, 10, 0, 9, 0, 9)};
  }
};

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("extract_instances: the hand-computed scores and winners") {
  const HandCase hc;
  const auto s = prm::proposal_scores(hc.prms, hc.crms.data(), 2, 10, 10, hc.proposals);
  REQUIRE(s.size() == 2);
  REQUIRE(s[0].size() == 4);
  CHECK(s[0][0] == doctest::Approx(1.48).epsilon(1e-7));
  CHECK(s[0][1] == doctest::Approx(1.4).epsilon(1e-7));
  CHECK(s[0][2] == doctest::Approx(-0.00009).epsilon(1e-7));
  CHECK(s[0][3] == kNegInf);
  CHECK(s[1][0] == doctest::Approx(-0.00009).epsilon(1e-7));
  CHECK(s[1][1] == doctest::Approx(-0.0005).epsilon(1e-7));
  CHECK(s[1][2] == doctest::Approx(1.8).epsilon(1e-7));
  CHECK(s[1][3] == kNegInf);

  const auto inst = prm::extract_instances(hc.prms, hc.crms.data(), 2, 10, 10, hc.proposals);
  REQUIRE(inst.size() == 2);  // A and Cp do not overlap: both kept, best first
  CHECK(inst[0].peak.c == 1);
  CHECK(inst[0].proposal == 2);
  CHECK(inst[0].peak_index == 1);
  CHECK(inst[0].score == doctest::Approx(1.8).epsilon(1e-7));
  CHECK(inst[0].mask.data == hc.proposals[2].data);
  CHECK(inst[0].prm == hc.prms[1].prm);
  CHECK(inst[1].peak.c == 0);
  CHECK(inst[1].proposal == 0);
  CHECK(inst[1].score == doctest::Approx(1.48).epsilon(1e-7));
  CHECK(inst[1].peak.y == 7);
  CHECK(inst[1].peak.x == 9);
  CHECK(inst[1].merged_peaks.empty());
}

TEST_CASE("extract_instances: the background prior is built from the bicubic-upsampled CRM") {
  // One class whose 2x2 CRM is constant -1: upsampled it stays -1 everywhere, and
  // -1 < 0.95 * (-1) = -0.95, so Q covers the whole image: the penalty is 1e-5 * area.
  // Peak 0 of the hand case: A = 1.48 - 9e-5, B = 1.4 - 50e-5.
  HandCase hc;
  hc.prms.resize(1);
  const std::vector<float> crm(4, -1.0f);
  const auto s = prm::proposal_scores(hc.prms, crm.data(), 1, 2, 2, hc.proposals);
  CHECK(s[0][0] == doctest::Approx(1.48 - 9e-5).epsilon(1e-7));
  CHECK(s[0][1] == doctest::Approx(1.4 - 50e-5).epsilon(1e-7));
}

TEST_CASE("extract_instances: size limits are [min, max) of the image area") {
  const HandCase hc;
  prm::InstanceOptions o;
  o.max_area = 1.0;  // D (area 100 of 100) is still out: the upper bound is exclusive
  CHECK(prm::proposal_scores(hc.prms, hc.crms.data(), 2, 10, 10, hc.proposals, o)[0][3] ==
        kNegInf);
  // With room for D, peak 0 on D: 0.8 * 1.0 + 0 (a full mask has no contour) - 1e-5 * 50.
  o.max_area = 1.01;
  CHECK(prm::proposal_scores(hc.prms, hc.crms.data(), 2, 10, 10, hc.proposals, o)[0][3] ==
        doctest::Approx(0.7995).epsilon(1e-7));
  // min_area 0.09: area 9 >= 9 stays in (inclusive); 0.0901 drops A and Cp.
  o = prm::InstanceOptions{};
  o.min_area = 0.09;
  CHECK(prm::proposal_scores(hc.prms, hc.crms.data(), 2, 10, 10, hc.proposals, o)[0][0] > 1);
  o.min_area = 0.0901;
  const auto s = prm::proposal_scores(hc.prms, hc.crms.data(), 2, 10, 10, hc.proposals, o);
  CHECK(s[0][0] == kNegInf);
  CHECK(s[0][2] == kNegInf);
  // Only B is left, so both peaks take it: peak 0 with 1.4 ranks first, peak 1's copy (-0.0005)
  // has IoU 1 with it and is suppressed, its PRM merged into peak 0's.
  const auto inst = prm::extract_instances(hc.prms, hc.crms.data(), 2, 10, 10, hc.proposals, o);
  REQUIRE(inst.size() == 1);
  CHECK(inst[0].proposal == 1);
  CHECK(inst[0].peak_index == 0);
  CHECK(inst[0].merged_peaks == std::vector<int>{1});
  CHECK(inst[0].prm[3 * 10 + 7] == 1.0f);  // peak 1's PRM merged in
  CHECK(inst[0].prm[3 * 10 + 3] == 0.6f);
}

TEST_CASE("extract_instances: the proposal limit applies before the size filter (official)") {
  const HandCase hc;
  // Order D, A, Cp with limit 2: officially D (too big) and A are looked at, Cp never.
  const std::vector<prm::Mask> props = {hc.proposals[3], hc.proposals[0], hc.proposals[2]};
  prm::InstanceOptions o;
  o.proposal_limit = 2;
  auto s = prm::proposal_scores(hc.prms, hc.crms.data(), 2, 10, 10, props, o);
  CHECK(s[1][0] == kNegInf);
  CHECK(s[1][1] == doctest::Approx(-0.00009).epsilon(1e-7));
  CHECK(s[1][2] == kNegInf);
  // filter_before_limit: the first 2 that pass the filter, A and Cp.
  o.filter_before_limit = true;
  s = prm::proposal_scores(hc.prms, hc.crms.data(), 2, 10, 10, props, o);
  CHECK(s[1][0] == kNegInf);
  CHECK(s[1][2] == doctest::Approx(1.8).epsilon(1e-7));
}

TEST_CASE("extract_instances: ties go to the first proposal") {
  HandCase hc;
  hc.prms.resize(1);
  std::vector<prm::Mask> props = {hc.proposals[2], hc.proposals[0], hc.proposals[0]};
  for (uint8_t& v : props[1].data) v *= 255;  // any non-zero byte is "on"; the instance holds 1
  const auto inst = prm::extract_instances(hc.prms, hc.crms.data(), 2, 10, 10, props);
  REQUIRE(inst.size() == 1);
  CHECK(inst[0].proposal == 1);
  CHECK(inst[0].mask.data == hc.proposals[0].data);
}

TEST_CASE("instance_nms: greedy, IoU >= 0.3 suppresses, the kept instance sums the PRMs") {
  // On a 1x20 strip: M0 = cols 0..9, M1 = cols 7..9, M2 = cols 6..15.
  // IoU(M0, M1) = 3/10 = 0.3 (suppressed: the bound is inclusive); IoU(M0, M2) = 4/16 = 0.25;
  // IoU(M1, M2) = 3/10, but M1 is gone by then, so M2 survives (greedy).
  std::vector<prm::Instance> in(3);
  const prm::Mask masks[3] = {box(1, 20, 0, 0, 0, 9), box(1, 20, 0, 0, 7, 9),
                              box(1, 20, 0, 0, 6, 15)};
  const int classes[3] = {0, 1, 0};
  for (int i = 0; i < 3; ++i) {
    in[i].score = 3 - i;
    in[i].peak.c = classes[i];
    in[i].mask = masks[i];
    in[i].peak_index = i;
    in[i].prm.assign(20, static_cast<float>(std::pow(10, i)));  // 1, 10, 100
  }
  const auto across = prm::instance_nms(in, prm::InstanceOptions{});
  REQUIRE(across.size() == 2);
  CHECK(across[0].peak_index == 0);
  CHECK(across[0].merged_peaks == std::vector<int>{1});
  CHECK(across[0].prm == std::vector<float>(20, 11.0f));
  CHECK(across[1].peak_index == 2);
  CHECK(across[1].prm == std::vector<float>(20, 100.0f));

  prm::InstanceOptions per_class;
  per_class.nms_across_classes = false;  // M0/M1 and M1/M2 differ in class; M0/M2 is 0.25
  CHECK(prm::instance_nms(in, per_class).size() == 3);

  prm::InstanceOptions no_merge;
  no_merge.merge_prms = false;
  CHECK(prm::instance_nms(in, no_merge)[0].prm == std::vector<float>(20, 1.0f));
  prm::InstanceOptions off;
  off.nms_iou = 1.01;
  CHECK(prm::instance_nms(in, off).size() == 3);
}

TEST_CASE("instance_label_maps: the highest score wins an overlapped pixel") {
  std::vector<prm::Instance> in(2);
  in[0].score = 1;
  in[0].peak.c = 4;
  in[0].mask = box(2, 3, 0, 1, 0, 1);
  in[1].score = 2;
  in[1].peak.c = 7;
  in[1].mask = box(2, 3, 0, 0, 1, 2);
  const prm::LabelMaps maps = prm::instance_label_maps(in, 2, 3);
  CHECK(maps.instance_labels == std::vector<int32_t>{1, 2, 2, 1, 1, 0});
  CHECK(maps.class_labels == std::vector<int32_t>{5, 8, 8, 5, 5, 0});
  CHECK_THROWS_AS(prm::instance_label_maps(in, 3, 3), prm::Error);
}

TEST_CASE("extract_instances: bad and empty input give a defined result") {
  const HandCase hc;
  // No peaks: nothing, whatever the rest.
  CHECK(prm::extract_instances({}, nullptr, 0, 0, 0, hc.proposals).empty());
  // No proposals, or none that passes the size filter: no instances.
  CHECK(prm::extract_instances(hc.prms, hc.crms.data(), 2, 10, 10, {}).empty());
  CHECK(prm::extract_instances(hc.prms, hc.crms.data(), 2, 10, 10, {hc.proposals[3]}).empty());
  // An all-zero PRM gives no instance; the other peak still does.
  HandCase zero;
  std::fill(zero.prms[0].prm.begin(), zero.prms[0].prm.end(), 0.0f);
  const auto inst = prm::extract_instances(zero.prms, zero.crms.data(), 2, 10, 10, zero.proposals);
  REQUIRE(inst.size() == 1);
  CHECK(inst[0].peak_index == 1);
  // A proposal of the wrong size is an error naming it.
  std::vector<prm::Mask> wrong = hc.proposals;
  wrong[1] = prm::Mask(10, 11);
  CHECK_THROWS_WITH_AS(prm::extract_instances(hc.prms, hc.crms.data(), 2, 10, 10, wrong),
                       doctest::Contains("proposal 1 is 10x11"), prm::Error);
  // A class outside the CRMs, a NaN in a PRM, PRMs of different sizes, missing CRMs.
  HandCase bad = hc;
  bad.prms[1].peak.c = 2;
  CHECK_THROWS_AS(prm::extract_instances(bad.prms, bad.crms.data(), 2, 10, 10, bad.proposals),
                  prm::Error);
  bad = hc;
  bad.prms[0].prm[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(prm::extract_instances(bad.prms, bad.crms.data(), 2, 10, 10, bad.proposals),
                  prm::Error);
  bad = hc;
  bad.prms[1] = peak(1, 5, 5);
  CHECK_THROWS_AS(prm::extract_instances(bad.prms, bad.crms.data(), 2, 10, 10, bad.proposals),
                  prm::Error);
  CHECK_THROWS_AS(prm::extract_instances(hc.prms, nullptr, 2, 10, 10, hc.proposals), prm::Error);
}

TEST_CASE("make_peak_prms reads peaks.npy / prms.npy layouts") {
  const int64_t rows[8] = {0, 3, 10, 20, 1, 5, 30, 40};
  const std::vector<prm::Peak> peaks = prm::peaks_from_rows(rows, 2);
  CHECK(prm::peak_rows(peaks) == std::vector<int64_t>(rows, rows + 8));
  std::vector<float> prms(2 * 6);
  for (int i = 0; i < 12; ++i) prms[i] = static_cast<float>(i);
  const auto p = prm::make_peak_prms(peaks, prms.data(), 2, 3);
  REQUIRE(p.size() == 2);
  CHECK(p[1].peak.b == 1);
  CHECK(p[1].peak.c == 5);
  CHECK(p[1].peak.y == 30);
  CHECK(p[1].peak.x == 40);
  CHECK(p[1].prm == std::vector<float>{6, 7, 8, 9, 10, 11});
}

TEST_CASE("pictures: instances, PRM and CRM heat maps are written at the image size") {
  const std::string dir = temp_dir("prm_test_instances_pictures");
  prm::Image img;
  img.width = 300;  // wide enough for the 2x text
  img.height = 200;
  img.channels = 3;
  img.pixels.assign(300 * 200 * 3, 100);
  std::vector<prm::Instance> inst(2);
  inst[0].score = 1.5;
  inst[0].peak.c = 7;
  inst[0].mask = box(200, 300, 50, 150, 40, 140);
  inst[1].score = 0.7;
  inst[1].peak.c = 99;  // no name: labelled "c99"
  inst[1].mask = box(200, 300, 20, 90, 200, 280);
  const std::vector<std::string> names = {"a", "b", "c", "d", "e", "f", "g", "cat"};
  const prm::Image pic = prm::draw_instances(img, inst, names);
  prm::save_png_atomic(dir + "/instances.png", pic);
  const prm::Image back = prm::load_image(dir + "/instances.png");
  CHECK(back.width == 300);
  CHECK(back.height == 200);
  CHECK(back.pixels == pic.pixels);
  // Inside mask 0, away from its label and contour: the colour blended in. Far outside: as is.
  const auto c0 = prm::instance_colour(0);
  for (int k = 0; k < 3; ++k) {
    CHECK(pic.at(120, 100)[k] == std::lround(0.5 * 100 + 0.5 * c0[k]));
    CHECK(pic.at(190, 10)[k] == 100);
  }
  CHECK(pic.at(50, 100)[0] == c0[0]);  // on the contour (top edge, away from the label)

  // PRM heat map: hottest at its maximum (red over blue), coldest where it is 0.
  std::vector<float> map(300 * 200, 0.0f);
  map[100 * 300 + 150] = 2.0f;
  const prm::Image heat = prm::draw_heatmap(img, map.data(), 200, 300, "cat peak");
  prm::save_png_atomic(dir + "/prm.png", heat);
  CHECK(heat.at(100, 150)[0] > heat.at(100, 150)[2]);
  CHECK(heat.at(150, 250)[2] > heat.at(150, 250)[0]);
  CHECK_THROWS_AS(prm::draw_heatmap(img, map.data(), 100, 300, ""), prm::Error);

  // CRM: 7x10 upsampled to the image; a grey image is accepted and made RGB.
  prm::Image grey = img;
  grey.channels = 1;
  grey.pixels.assign(300 * 200, 80);
  std::vector<float> crm(70);
  for (int i = 0; i < 70; ++i) crm[i] = static_cast<float>(i % 10) - 3.0f;
  const prm::Image crm_pic = prm::draw_crm(grey, crm.data(), 7, 10, "cat");
  prm::save_png_atomic(dir + "/crm.png", crm_pic);
  const prm::Image crm_back = prm::load_image(dir + "/crm.png");
  CHECK(crm_back.width == 300);
  CHECK(crm_back.height == 200);
  CHECK(crm_pic.channels == 3);

  int files = 0;  // the three PNGs and no temporary file left behind
  for (const auto& e : fs::directory_iterator(dir)) {
    ++files;
    CHECK(e.path().extension() == ".png");
  }
  CHECK(files == 3);
  fs::remove_all(dir);
}
