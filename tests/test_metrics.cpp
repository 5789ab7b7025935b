// The PRM metrics on small hand-built cases; every expected number is worked out by hand in the
// comment next to it (VOC 2012 AP: interpolated precision summed over recall steps).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "data/metrics.h"

using prm::Outcome;

TEST_CASE("metrics: VOC AP of a ranked list with a missed positive") {
  // TP FP TP FP, 3 positives: precision 1 .5 .667 .5, recall 1/3 1/3 2/3 2/3;
  // AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 0 = 5/9.
  prm::ApCurve c = prm::average_precision({{0.6, Outcome::false_positive},
                                           {0.9, Outcome::true_positive},
                                           {0.7, Outcome::true_positive},
                                           {0.8, Outcome::false_positive}},
                                          3);
  CHECK(c.ap == doctest::Approx(5.0 / 9.0));
  REQUIRE(c.precision.size() == 4);
  CHECK(c.precision[2] == doctest::Approx(2.0 / 3.0));
  CHECK(c.recall[3] == doctest::Approx(2.0 / 3.0));
}

TEST_CASE("metrics: ties in score keep input order") {
  // FP then TP at the same score: precision 0, .5 at recall 0, 1 -> AP .5; reversed -> 1.
  CHECK(prm::average_precision({{0.5, Outcome::false_positive}, {0.5, Outcome::true_positive}}, 1)
            .ap == doctest::Approx(0.5));
  CHECK(prm::average_precision({{0.5, Outcome::true_positive}, {0.5, Outcome::false_positive}}, 1)
            .ap == doctest::Approx(1.0));
}

TEST_CASE("metrics: classification mAP ignores difficult-only images and absent classes") {
  // class 0: scores .9 .8 .7 .6, labels 1 -1 0 1 -> ranked TP FP TP (image 2 ignored);
  // precision 1 .5 .667 at recall .5 .5 1 -> AP = .5 * 1 + .5 * 2/3 = 5/6.
  // class 1: the only positive ranked first -> AP 1. class 2: no positive -> absent.
  std::vector<std::vector<double>> s = {
      {0.9, 0.1, 0.3}, {0.8, 0.9, 0.2}, {0.7, 0.2, 0.1}, {0.6, 0.3, 0.5}};
  std::vector<std::vector<int>> l = {{1, -1, -1}, {-1, 1, -1}, {0, -1, -1}, {1, -1, -1}};
  prm::MeanMetric m = prm::classification_map(s, l, 3);
  CHECK(m.per_class[0].value == doctest::Approx(5.0 / 6.0));
  CHECK(m.per_class[1].value == doctest::Approx(1.0));
  CHECK(m.per_class[2].absent);
  REQUIRE(m.absent_classes == std::vector<int>{2});
  CHECK(m.mean == doctest::Approx((5.0 / 6.0 + 1.0) / 2));
}

TEST_CASE("metrics: pointwise localisation with tolerance, duplicates and difficult boxes") {
  // Box xmin..xmax = 11..20 (1-based) covers pixels 10..19; with 18 px tolerance x <= 37.
  std::vector<std::vector<prm::GtBox>> boxes = {
      {{0, false, 11, 11, 20, 20}, {0, true, 101, 101, 110, 110}}, {{1, false, 1, 1, 5, 5}}};
  std::vector<prm::PointPrediction> pts = {
      {0, 0, 0.9, 38, 15},    // just outside the grown box: FP
      {0, 0, 0.8, 37, 15},    // on the grown edge: TP
      {0, 0, 0.7, 15, 15},    // the same object again: FP (one match per object)
      {0, 0, 0.6, 100, 100},  // only on a difficult box: ignored
      {1, 1, 0.5, 0, 0}};     // class 1, pixel (0,0) is inside box 1..5: TP
  prm::MeanMetric m = prm::pointwise_map(boxes, pts, 3, 18.0);
  // class 0: FP TP FP, 1 positive: precision 0 .5 .333, recall 0 1 1 -> AP .5
  CHECK(m.per_class[0].value == doctest::Approx(0.5));
  CHECK(m.per_class[0].curve.precision.size() == 3);
  CHECK(m.per_class[1].value == doctest::Approx(1.0));
  CHECK(m.per_class[2].absent);
  CHECK(m.mean == doctest::Approx(0.75));
}

TEST_CASE("metrics: mask IoU excludes void pixels") {
  const uint8_t a[4] = {1, 1, 0, 0}, b[4] = {1, 0, 1, 0}, v[4] = {0, 1, 0, 0};
  CHECK(prm::mask_iou(a, b, v, 4) == doctest::Approx(0.5));            // inter {0}, union {0,2}
  CHECK(prm::mask_iou(a, b, nullptr, 4) == doctest::Approx(1.0 / 3));  // union {0,1,2}
  const uint8_t z[4] = {0, 0, 0, 0};
  CHECK(prm::mask_iou(z, z, nullptr, 4) == 0.0);
}

TEST_CASE("metrics: instance mAP^r with duplicates, thresholds and the VOC matching rule") {
  // Image 0: one class-0 instance; predictions IoU .8 (score .9) and .7 (score .8): TP, FP.
  // Image 1: no class-0 instance; a class-0 prediction at score .95: FP ranked first.
  // Ranked FP TP FP with 1 positive: precision 0 .5 .333 -> AP@.5 = .5.
  std::vector<prm::ImageInstances> ims(2);
  ims[0].gt_class = {0};
  ims[0].predictions = {{0, 0.9, {0.8}}, {0, 0.8, {0.7}}};
  ims[1].gt_class = {1};
  ims[1].predictions = {{0, 0.95, {0.9}}, {1, 0.3, {0.6}}};
  prm::MeanMetric m5 = prm::instance_map(ims, 3, 0.5);
  CHECK(m5.per_class[0].value == doctest::Approx(0.5));
  CHECK(m5.per_class[1].value == doctest::Approx(1.0));  // IoU .6 >= .5
  CHECK(m5.per_class[2].absent);
  prm::MeanMetric m75 = prm::instance_map(ims, 3, 0.75);
  CHECK(m75.per_class[0].value == doctest::Approx(0.5));  // .8 still passes
  CHECK(m75.per_class[1].value == doctest::Approx(0.0));  // .6 fails

  // Two class-0 instances a, b: p1 IoUs (.9, .6), p2 IoUs (.8, .55). p2's best is a, already
  // taken, so it is a FP even though b would pass: precision 1 .5, recall .5 .5 -> AP .5.
  std::vector<prm::ImageInstances> two(1);
  two[0].gt_class = {0, 0};
  two[0].predictions = {{0, 0.9, {0.9, 0.6}}, {0, 0.8, {0.8, 0.55}}};
  CHECK(prm::instance_map(two, 1, 0.5).per_class[0].value == doctest::Approx(0.5));
}

TEST_CASE("metrics: average best overlap uses same-class predictions only") {
  // GT 0 (class 0): best same-class IoU .6; GT 1 (class 1): no class-1 prediction -> 0.
  std::vector<prm::ImageInstances> ims(1);
  ims[0].gt_class = {0, 1};
  ims[0].predictions = {{0, 0.5, {0.6, 0.9}}, {0, 0.4, {0.3, 0.0}}};
  int64_t n = 0;
  CHECK(prm::average_best_overlap(ims, &n) == doctest::Approx(0.3));
  CHECK(n == 2);
}

TEST_CASE("metrics: semantic mIoU from painted instances, void skipped, absent class left out") {
  // Instances: A class 1 score .5 on pixels {0,1}; B class 0 score .9 on pixels {1,2}.
  // Ascending score: A paints label 2 on 0,1, then B paints label 1 on 1,2 -> [2,1,1,0].
  const uint8_t A[4] = {1, 1, 0, 0}, B[4] = {0, 1, 1, 0};
  std::vector<uint8_t> lab = prm::paint_semantic({A, B}, {1, 0}, {0.5, 0.9}, 4);
  CHECK(lab == std::vector<uint8_t>{2, 1, 1, 0});

  // gt [0,0,1,1,void,2] vs pred [0,1,1,1,2,0] over labels 0..3 (label 3 never present):
  // label 0: TP 1, GT 2, pred 2 -> 1/3; label 1: TP 2, GT 2, pred 3 -> 2/3; label 2: 0/1 -> 0.
  const uint8_t gt[6] = {0, 0, 1, 1, 255, 2}, pr[6] = {0, 1, 1, 1, 2, 0};
  prm::Confusion conf(4);
  conf.add(gt, pr, 6);
  prm::MeanMetric m = prm::semantic_miou(conf);
  CHECK(m.per_class[0].value == doctest::Approx(1.0 / 3));
  CHECK(m.per_class[1].value == doctest::Approx(2.0 / 3));
  CHECK(m.per_class[2].value == doctest::Approx(0.0));
  CHECK(m.per_class[3].absent);
  CHECK(m.mean == doctest::Approx(1.0 / 3));
}
