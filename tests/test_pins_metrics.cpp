// Pins of issue 20 for the pointwise localisation metric (docs/evaluation.md): a point inside
// two plain boxes of its class takes the one whose centre is nearest. Hand-computed AP.
#include <doctest/doctest.h>

#include <vector>

#include "data/metrics.h"

TEST_CASE("metrics: a point inside two plain boxes matches the one with the nearest centre") {
  // Tolerance 0. VOC boxes are 1-based: [xmin, xmax] covers pixels xmin-1 .. xmax-1, centre
  // (xmin + xmax) / 2 - 1 in 0-based pixels.
  //   image 0: A = 1..20 (pixels 0..19, centre 9.5), listed first;
  //            B = 11..30 (pixels 10..29, centre 19.5), listed second.
  //     P0 (15, 15), score 0.9: in both; distance to A's centre 5.5 * sqrt 2, to B's
  //        4.5 * sqrt 2 -> B. (The first listed box, the farthest one, or centres taken 1 pixel
  //        too far right/down, 10.5 and 20.5, would give A.)
  //     X  (50, 50), score 0.75: in no box -> FP.
  //     Q0 (2, 2), score 0.7: in A only; A is free -> TP. (Had P0 taken A: FP.)
  //   image 1, the mirror, the nearest box listed first: B' = 1..20 (centre 9.5), then
  //            A' = 11..30 (centre 19.5).
  //     P1 (14, 14), score 0.8: distances 5.5 * sqrt 2 to A', 4.5 * sqrt 2 to B' -> B'.
  //        (The last listed box, or centres taken 1 pixel too far left/up, 18.5 and 8.5,
  //        would give A'.)
  //     Q1 (25, 25), score 0.6: in A' only -> TP.
  // Class 0 has 4 positives. Ranked: P0 TP, P1 TP, X FP, Q0 TP, Q1 TP: precision 1, 1, 2/3,
  // 3/4, 4/5 at recall 1/4, 1/2, 1/2, 3/4, 1; interpolated 1, 1, 0.8, 0.8 over the recall
  // steps -> AP = 1/4 * (1 + 1 + 0.8 + 0.8) = 0.9.
  // (P0 on A instead: TP TP FP FP TP -> 1/4 + 1/4 + 1/4 * 3/5 = 0.65; P1 on A' instead: TP TP
  // FP TP FP -> 1/4 + 1/4 + 1/4 * 3/4 = 0.6875.)
  const std::vector<std::vector<prm::GtBox>> boxes = {
      {{0, false, 1, 1, 20, 20}, {0, false, 11, 11, 30, 30}},
      {{0, false, 1, 1, 20, 20}, {0, false, 11, 11, 30, 30}}};
  const std::vector<prm::PointPrediction> points = {{0, 0, 0.9, 15, 15},
                                                    {1, 0, 0.8, 14, 14},
                                                    {0, 0, 0.75, 50, 50},
                                                    {0, 0, 0.7, 2, 2},
                                                    {1, 0, 0.6, 25, 25}};
  const prm::MeanMetric m = prm::pointwise_map(boxes, points, 1, 0.0);
  REQUIRE(m.per_class.size() == 1);
  const prm::ClassMetric& c = m.per_class[0];
  CHECK(c.curve.positives == 4);
  CHECK(c.value == doctest::Approx(0.9));
  REQUIRE(c.curve.precision.size() == 5);
  const double precision[5] = {1, 1, 2.0 / 3, 0.75, 0.8};
  const double recall[5] = {0.25, 0.5, 0.5, 0.75, 1};
  for (int i = 0; i < 5; ++i) {
    CAPTURE(i);
    CHECK(c.curve.precision[i] == doctest::Approx(precision[i]));
    CHECK(c.curve.recall[i] == doctest::Approx(recall[i]));
  }
}

TEST_CASE("metrics: with the tolerance, the nearest centre still decides among the grown boxes") {
  // Default tolerance 18.
  // Image 0, boxes side by side: A = 1..10 x 1..10 (pixels 0..9, centre (4.5, 4.5)) and
  // B = 31..40 x 1..10 (columns 30..39, rows 0..9, centre (34.5, 4.5)). Grown by 18 they cover
  // columns -18..27 and 12..57, rows -18..27. P (20, 5), score 0.9, lies in both: distance to
  // A's centre hypot(15.5, 0.5), to B's hypot(14.5, 0.5) -> B, although B is listed second.
  // Q (0, 5), score 0.5, lies in A only -> TP on A.
  // Image 1, the same stacked vertically: A = rows 0..9, B = rows 30..39, both columns 0..9.
  // P (5, 20), score 0.8: distances hypot(0.5, 15.5) and hypot(0.5, 14.5) -> B (listed second);
  // Q (5, 0), score 0.4, in A only -> TP.
  // Four TPs of four positives: AP 1. (P on A in either image: its Q becomes a FP, AP < 1.
  // A distance that ignores y, or x, ties on one image and gives its first box, A.)
  const std::vector<std::vector<prm::GtBox>> boxes = {
      {{0, false, 1, 1, 10, 10}, {0, false, 31, 1, 40, 10}},
      {{0, false, 1, 1, 10, 10}, {0, false, 1, 31, 10, 40}}};
  const std::vector<prm::PointPrediction> points = {
      {0, 0, 0.9, 20, 5}, {0, 0, 0.5, 0, 5}, {1, 0, 0.8, 5, 20}, {1, 0, 0.4, 5, 0}};
  const prm::MeanMetric m = prm::pointwise_map(boxes, points, 1);
  CHECK(m.per_class[0].curve.positives == 4);
  CHECK(m.per_class[0].value == doctest::Approx(1.0));
  REQUIRE(m.per_class[0].curve.precision.size() == 4);
  for (double p : m.per_class[0].curve.precision) CHECK(p == 1.0);
}
