// COCO segmentation evaluation (data/coco_eval.h) against pycocotools' COCOeval on the committed
// cases of tests/fixtures/coco/eval.json (made by tools/fixtures/make_coco_fixtures.py): crowd
// regions, every area range with areas on the bounds, score ties across and within images, equal
// IoUs, images without ground truth or detections, categories without ground truth, more than 100
// detections in an image, a ground truth with id 0, a detection of another size, image and
// category subsets, and 50 random images. Compared: summarize()'s twelve numbers, the recall
// array, precision averaged over the recall points, and for some cases every precision value.
// Plus one case worked out by hand, the thresholds, refusals, and thread-count independence.
#include <omp.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "data/coco_eval.h"
#include "data/files.h"
#include "data/json.h"
#include "helpers.h"

using namespace prm;
using namespace prm::coco;

namespace {

struct EvalCase {
  std::string name;
  std::vector<GroundTruth> gts;
  std::vector<Detection> dts;
  std::vector<int64_t> images, categories;
  const Json* expected = nullptr;
};

std::vector<int64_t> ints_of(const Json& j) {
  std::vector<int64_t> v;
  for (const Json& x : j.items()) v.push_back(x.as_int64());
  return v;
}

std::vector<double> doubles_of(const Json& j) {
  std::vector<double> v;
  for (const Json& x : j.items()) v.push_back(x.as_double());
  return v;
}

Rle mask_of(const Json& entry) {
  return rle_from_string(entry.at("counts").as_string(), uint32_t(entry.at("h").as_int64()),
                         uint32_t(entry.at("w").as_int64()));
}

EvalCase case_of(const Json& c) {
  EvalCase e;
  e.name = c.at("name").as_string();
  e.expected = &c;
  e.images = ints_of(c.at("eval_images"));
  e.categories = ints_of(c.at("eval_categories"));
  for (const Json& g : c.at("gts").items()) {
    GroundTruth gt;
    gt.id = g.at("id").as_int64();
    gt.image_id = g.at("image_id").as_int64();
    gt.category_id = g.at("category_id").as_int64();
    gt.iscrowd = g.at("iscrowd").as_int64() != 0;
    gt.area = g.at("area").as_double();
    gt.mask = mask_of(g);
    e.gts.push_back(std::move(gt));
  }
  for (const Json& d : c.at("dts").items()) {
    Detection dt;
    dt.image_id = d.at("image_id").as_int64();
    dt.category_id = d.at("category_id").as_int64();
    dt.score = d.at("score").as_double();
    dt.mask = mask_of(d);
    e.dts.push_back(std::move(dt));
  }
  return e;
}

const Json& fixture() {
  static const Json cases = [] {
    const std::string path = "tests/fixtures/coco/eval.json";
    return parse_json(read_file_bytes(path), path);
  }();
  return cases;
}

// Mean of precision over the recall points per [t][k][a][m] (-1 stays -1).
std::vector<double> precision_mean_over_recall(const SegmEvaluation& e) {
  const size_t K = e.category_ids.size();
  const int T = kNumIouThresholds, R = kNumRecallThresholds, A = kNumAreaRanges, M = kNumMaxDets;
  std::vector<double> out(T * K * A * M);
  for (int t = 0; t < T; ++t)
    for (size_t k = 0; k < K; ++k)
      for (int a = 0; a < A; ++a)
        for (int m = 0; m < M; ++m) {
          double sum = 0;
          bool absent = false;
          for (int r = 0; r < R; ++r) {
            const double p = e.precision[(((t * R + r) * K + k) * A + a) * M + m];
            absent = absent || p == -1;
            sum += p;
          }
          out[((t * K + k) * A + a) * M + m] = absent ? -1 : sum / R;
        }
  return out;
}

void check_against_pycocotools(const EvalCase& c, const SegmEvaluation& e) {
  CAPTURE(c.name);
  const Json& x = *c.expected;
  CHECK(e.image_ids == [&] {
    std::vector<int64_t> v = c.images;
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
  }());
  const std::vector<double> stats = doubles_of(x.at("stats"));
  REQUIRE(stats.size() == 12);
  for (size_t i = 0; i < 12; ++i) {
    CAPTURE(kSegmStatNames[i]);
    CHECK(std::abs(e.stats[i] - stats[i]) <= 1e-12);
  }
  check_close(e.recall, doubles_of(x.at("recall")), 0, 1e-15);
  check_close(precision_mean_over_recall(e), doubles_of(x.at("precision_mean")), 0, 1e-12);
  if (const Json* full = x.find("precision_all_100")) {
    // pycocotools' precision[:, :, :, 0, 2], i.e. [t][r][k] at area 'all', 100 detections.
    const std::vector<double> want = doubles_of(*full);
    const size_t K = e.category_ids.size();
    std::vector<double> got;
    for (int t = 0; t < kNumIouThresholds; ++t)
      for (int r = 0; r < kNumRecallThresholds; ++r)
        for (size_t k = 0; k < K; ++k)
          got.push_back(e.precision[(((t * kNumRecallThresholds + r) * K + k) * kNumAreaRanges) *
                                        kNumMaxDets +
                                    2]);
    check_close(got, want, 0, 0);
  }
}

}  // namespace

TEST_CASE("coco eval: thresholds are numpy.linspace's values") {
  const auto& t = iou_thresholds();
  CHECK(t[0] == 0.5);
  CHECK(t[5] == 0.75);                // summarize() finds AP75 by equality
  CHECK(t[8] == 0.8999999999999999);  // 8 * (0.45 / 9) + 0.5 in doubles
  CHECK(t[9] == 0.95);
  const auto& r = recall_thresholds();
  CHECK(r[0] == 0.0);
  CHECK(r[57] == 0.5700000000000001);  // 57 * 0.01 in doubles, not 0.57
  CHECK(r[57] != 0.57);
  CHECK(r[100] == 1.0);
}

TEST_CASE("coco eval: every committed case gives pycocotools' numbers") {
  const Json& cases = fixture();
  REQUIRE(cases.size() >= 15);
  for (const Json& c : cases.items()) {
    const EvalCase ec = case_of(c);
    check_against_pycocotools(ec, evaluate_segm(ec.gts, ec.dts, ec.images, ec.categories));
  }
}

TEST_CASE("coco eval: polygon ground truths of the fixtures decode to pycocotools' RLE") {
  int polygons = 0;
  for (const Json& c : fixture().items()) {
    for (const Json& g : c.at("gts").items()) {
      const Json* parts = g.find("polygons");
      if (!parts) continue;
      std::vector<std::vector<double>> xy;
      for (const Json& p : parts->items()) xy.push_back(doubles_of(p));
      const Rle rle = rle_from_polygons(xy, uint32_t(g.at("h").as_int64()),
                                        uint32_t(g.at("w").as_int64()));
      CHECK(rle_to_string(rle.counts) == g.at("counts").as_string());
      ++polygons;
    }
  }
  CHECK(polygons > 50);
}

TEST_CASE("coco eval: a case worked out by hand") {
  // One image, one category, two 20x20 ground truths (area 400: small). Detections by score:
  // exact copy of A (TP at every threshold), one elsewhere (FP), exact copy of B (TP).
  // Ranked TP FP TP, 2 positives: recall .5 .5 1, precision 1 .5 2/3, envelope 1 2/3 2/3.
  // Recall points 0, .01, ..., .5 (51 of them) read rank 0 -> 1; .51 ... 1 (50) read rank 2 -> 2/3.
  // AP = (51 + 50 * 2/3) / 101 at every threshold. maxDets 1 keeps only the first: recall .5.
  const uint32_t H = 64, W = 64;
  auto square = [&](uint32_t y0, uint32_t x0) {
    std::vector<uint8_t> m(H * W, 0);
    for (uint32_t y = y0; y < y0 + 20; ++y)
      for (uint32_t x = x0; x < x0 + 20; ++x) m[y * W + x] = 1;
    return rle_encode(m.data(), H, W);
  };
  const Rle A = square(0, 0), B = square(30, 30), elsewhere = square(0, 40);
  const std::vector<GroundTruth> gts = {{1, 5, 3, false, 400, A}, {2, 5, 3, false, 400, B}};
  const std::vector<Detection> dts = {{5, 3, 0.7, B}, {5, 3, 0.9, A}, {5, 3, 0.8, elsewhere}};
  const SegmEvaluation e = evaluate_segm(gts, dts, {5}, {3});
  const double ap = (51 + 50 * 2.0 / 3.0) / 101;
  const std::array<double, 12> want = {ap, ap, ap, ap, -1, -1, 0.5, 1, 1, 1, -1, -1};
  for (size_t i = 0; i < 12; ++i) {
    CAPTURE(kSegmStatNames[i]);
    CHECK(e.stats[i] == doctest::Approx(want[i]).epsilon(1e-12));
  }
  CHECK(e.category_ap(0) == doctest::Approx(ap).epsilon(1e-12));
  CHECK(e.category_ap(0, 0) == doctest::Approx(ap).epsilon(1e-12));
  // A category without ground truth is -1 throughout; one that is not evaluated is absent.
  const SegmEvaluation e2 = evaluate_segm(gts, dts, {5}, {3, 4});
  CHECK(e2.category_ap(1) == -1);
  CHECK(e2.stats[0] == doctest::Approx(ap).epsilon(1e-12));
}

TEST_CASE("coco eval: refusals") {
  const Rle m{2, 2, {4}};
  CHECK(error_of([&] {
          evaluate_segm({{7, 1, 1, false, 1, m}, {7, 2, 1, false, 1, m}}, {}, {1, 2}, {1});
        }) == "COCO evaluation: ground truth id 7 appears twice");
  CHECK(error_of([&] {
          evaluate_segm({}, {{1, 1, 0.5, m}, {1, 1, std::nan(""), m}}, {1}, {1});
        }) == "COCO evaluation: detection 1 has a NaN score");
  CHECK(error_of([] { evaluate_segm({}, {}, {}, {}).category_ap(0); }) ==
        "category_ap: category 0 of 0");
}

TEST_CASE("coco eval: nothing to evaluate gives -1 everywhere") {
  const SegmEvaluation e = evaluate_segm({}, {}, {1, 2}, {1});
  for (double v : e.stats) CHECK(v == -1);
  CHECK(e.precision.size() == size_t(kNumIouThresholds) * kNumRecallThresholds * kNumAreaRanges *
                                  kNumMaxDets);
}

TEST_CASE("coco eval: the numbers do not depend on the number of threads") {
  const Json& cases = fixture();
  const Json* random = nullptr;
  for (const Json& c : cases.items())
    if (c.at("name").as_string() == "random 50 images") random = &c;
  REQUIRE(random != nullptr);
  const EvalCase ec = case_of(*random);
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  const SegmEvaluation one = evaluate_segm(ec.gts, ec.dts, ec.images, ec.categories);
  omp_set_num_threads(3);
  const SegmEvaluation three = evaluate_segm(ec.gts, ec.dts, ec.images, ec.categories);
  omp_set_num_threads(before);
  CHECK(one.stats == three.stats);
  CHECK(one.precision == three.precision);
  CHECK(one.recall == three.recall);
}
