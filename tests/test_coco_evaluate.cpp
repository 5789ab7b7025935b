// `prm eval` on MS COCO (data/eval.h's evaluate_coco): the results files of a COCO split scored
// as classification mAP, pointwise mAP and COCOeval's twelve segm numbers.
// - tests/fixtures/coco/files (made by tools/fixtures/make_coco_files_fixture.py): a split with
//   polygons, crowd RLE, compressed RLE, categories out of id order and one without annotations,
//   area fields that are not the masks', an annotation without a bbox; the expected numbers come
//   from pycocotools (segm) and from a Python reading of the protocols (classification, points).
// - pointwise and classification cases worked out by hand (the tolerance's bounds, crowd boxes,
//   the nearest centre);
// - refusals, one line naming the file and the result;
// - `prm synth --format coco` -> `prm train` -> `prm eval --weights` end to end, the files it
//   writes read back and scored again with --pred.
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "data/coco.h"
#include "data/coco_eval.h"
#include "data/coco_mask.h"
#include "data/coco_results.h"
#include "data/eval.h"
#include "data/files.h"
#include "data/json.h"
#include "helpers.h"

using namespace prm;
namespace fs = std::filesystem;

namespace {

const std::string kFixture = "tests/fixtures/coco/files";

EvalReport evaluate_folder(const std::string& data, const std::string& pred,
                           bool allow_missing = false) {
  EvalOptions o;
  o.data = data;
  o.split = "val";
  o.pred = pred;
  o.allow_missing = allow_missing;
  return evaluate(o);
}

void check_metric(const MeanMetric& got, const Json& want) {
  const std::vector<Json>& per = want.at("per_category").items();
  REQUIRE(got.per_class.size() == per.size());
  for (size_t k = 0; k < per.size(); ++k) {
    CAPTURE(k);
    if (per[k].is_null()) {
      CHECK(got.per_class[k].absent);
    } else {
      CHECK_FALSE(got.per_class[k].absent);
      CHECK(std::abs(got.per_class[k].value - per[k].as_double()) <= 1e-12);
    }
  }
  CHECK(std::abs(got.mean - want.at("map").as_double()) <= 1e-12);
}

void check_stats(const std::array<double, 12>& got, const Json& want) {
  REQUIRE(want.items().size() == 12);
  for (size_t k = 0; k < 12; ++k) {
    CAPTURE(coco::kSegmStatNames[k]);
    CHECK(std::abs(got[k] - want.items()[k].as_double()) <= 1e-12);
  }
}

// A one-image COCO split in `root` (image 5, 100 x 80) with the given annotations (JSON objects'
// text) and categories 2 ("cat") and 9 ("dog").
void write_split(const fs::path& root, const std::string& annotations) {
  fs::create_directories(root / "annotations");
  write_file_atomic((root / "annotations" / "instances_val.json").string(),
                    R"({"images": [{"id": 5, "file_name": "a.jpg", "width": 100, "height": 80},
                                   {"id": 6, "file_name": "b.jpg", "width": 100, "height": 80}],
                        "categories": [{"id": 9, "name": "dog"}, {"id": 2, "name": "cat"}],
                        "annotations": [)" +
                        annotations + "]}");
}

// VOC 2012 AP of true (1) / false (0) positives in rank order, written here from the definition.
double naive_ap(const std::vector<int>& tp, int positives) {
  std::vector<double> rec, prec;
  int t = 0;
  for (size_t i = 0; i < tp.size(); ++i) {
    t += tp[i];
    rec.push_back(static_cast<double>(t) / positives);
    prec.push_back(static_cast<double>(t) / static_cast<double>(i + 1));
  }
  double ap = 0, prev_rec = 0;
  for (size_t i = 0; i < rec.size(); ++i) {
    double best = 0;
    for (size_t j = i; j < prec.size(); ++j) best = std::max(best, prec[j]);
    ap += (rec[i] - prev_rec) * best;
    prev_rec = rec[i];
  }
  return ap;
}

}  // namespace

TEST_CASE("coco evaluate: the fixture split scores as pycocotools and the protocols say") {
  const Json expected = parse_json(read_file_bytes(kFixture + "/expected.json"), "expected.json");
  const EvalReport r = evaluate_folder(kFixture, kFixture + "/pred");
  CHECK(r.format == "coco");
  CHECK(r.classes == std::vector<std::string>{"person", "car", "traffic light", "tooth brush"});
  CHECK(r.main_images == 7);
  REQUIRE(r.has_classification);
  REQUIRE(r.has_points);
  REQUIRE(r.has_coco_segm);
  check_metric(r.classification, expected.at("classification"));
  check_metric(r.pointwise, expected.at("pointwise"));
  check_stats(r.coco_segm, expected.at("coco_segm"));
  // The per-category segm APs average to COCOeval's AP and AP50.
  CHECK(std::abs(r.coco_segm_ap.mean - r.coco_segm[0]) <= 1e-12);
  CHECK(std::abs(r.coco_segm_ap50.mean - r.coco_segm[1]) <= 1e-12);
  CHECK(r.coco_segm_ap.per_class[3].absent);

  // The same masks with a bbox each: pycocotools then takes the boxes' areas.
  const EvalReport b = evaluate_folder(kFixture, kFixture + "/pred_bbox");
  CHECK_FALSE(b.has_classification);
  check_stats(b.coco_segm, expected.at("coco_segm_bbox"));
  CHECK(b.coco_segm[3] != r.coco_segm[3]);  // APs: the fixture makes the two differ

  // The report: the contract's keys, the twelve numbers by name.
  const Json j = parse_json(report_json(r), "report");
  CHECK(j.at("format").as_string() == "coco");
  CHECK(std::abs(j.at("classification").at("map").as_double() - r.classification.mean) < 1e-6);
  CHECK(std::abs(j.at("pointwise").at("map").as_double() - r.pointwise.mean) < 1e-6);
  REQUIRE(j.at("coco_segm").fields().size() == 12);
  for (size_t k = 0; k < 12; ++k)
    CHECK(j.at("coco_segm").at(coco::kSegmStatNames[k]).as_double() == r.coco_segm[k]);
  const std::string md = report_markdown(r);
  CHECK(md.find("Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]") !=
        std::string::npos);
  CHECK(md.find("| tooth brush | - | - | - | - |") != std::string::npos);
}

TEST_CASE("coco evaluate: points by hand (tolerance bounds, crowd boxes, nearest centre)") {
  const fs::path root = fresh_temp_dir("coco_eval_points");
  // cat boxes in image 5: A [10, 20, 30, 40] (x 10..40, y 20..60), B [60, 20, 10, 10] (x 60..70),
  // a crowd region C [0, 70, 100, 10] (y 70..80); a dog box in image 6.
  write_split(root,
              R"({"id": 1, "image_id": 5, "category_id": 2, "bbox": [10, 20, 30, 40]},
                 {"id": 2, "image_id": 5, "category_id": 2, "bbox": [60, 20, 10, 10]},
                 {"id": 3, "image_id": 5, "category_id": 2, "bbox": [0, 70, 100, 10], "iscrowd": 1},
                 {"id": 4, "image_id": 6, "category_id": 9, "bbox": [0, 0, 5, 5]})");
  fs::create_directories(root / "pred");
  // In rank order (scores 0.9 .. 0.3), cat:
  //  (58, 40) 0.9: in A grown (40 + 18 = 58, the bound) and in B grown (60 - 18 = 42 <= 58);
  //                nearest centre: A's (25, 40) is 33 away, B's (65, 25) is 16.6 -> takes B: TP
  //  (58, 40) 0.8: B is taken, A still free -> TP
  //  (0, 40) 0.7:  in A grown (x from 10 - 18 = -8), matched, only -> FP
  //  (50, 79) 0.6: in the crowd region only (A grown reaches y 78) -> ignored
  //  (50, 78) 0.5: in A grown (matched) and the crowd region -> FP
  // Two positives (A, B): ranked TP TP FP FP -> AP 1.
  // dog: (23, 23) 0.3 in image 6: outside [0, 0, 5, 5] grown (5 + 18 = 23 is the bound: inside)
  //  -> TP; (23.5, 2) 0.4: outside -> FP first; AP = naive_ap({0, 1}, 1) = 0.5.
  write_file_atomic((root / "pred" / "points.json").string(),
                    R"([{"image_id": 5, "category_id": 2, "score": 0.9, "point": [58, 40]},
                        {"image_id": 5, "category_id": 2, "score": 0.8, "point": [58, 40]},
                        {"image_id": 5, "category_id": 2, "score": 0.7, "point": [0, 40]},
                        {"image_id": 5, "category_id": 2, "score": 0.6, "point": [50, 79]},
                        {"image_id": 5, "category_id": 2, "score": 0.5, "point": [50, 78]},
                        {"image_id": 6, "category_id": 9, "score": 0.3, "point": [23, 23]},
                        {"image_id": 6, "category_id": 9, "score": 0.4, "point": [23.5, 2]}])");
  EvalReport r = evaluate_folder(root.string(), (root / "pred").string());
  REQUIRE(r.has_points);
  REQUIRE(r.classes == std::vector<std::string>{"cat", "dog"});
  CHECK(r.pointwise.per_class[0].value == 1.0);
  CHECK(r.pointwise.per_class[0].curve.precision.size() == 4);  // the crowd-only point ignored
  CHECK(r.pointwise.per_class[1].value == naive_ap({0, 1}, 1));
  CHECK(r.pointwise.mean == (1.0 + 0.5) / 2);

  // The bounds in y and on the right: y = 60 + 18 = 78 is inside A grown, 78.25 is not (the
  // crowd region alone then holds it: ignored); x = 70 + 18 = 88 is inside B grown, 88.5 is not.
  write_file_atomic((root / "pred" / "points.json").string(),
                    R"([{"image_id": 5, "category_id": 2, "score": 0.9, "point": [25, 78.25]},
                        {"image_id": 5, "category_id": 2, "score": 0.8, "point": [25, 78]},
                        {"image_id": 5, "category_id": 2, "score": 0.7, "point": [88, 30]},
                        {"image_id": 5, "category_id": 2, "score": 0.6, "point": [88.5, 30]},
                        {"image_id": 6, "category_id": 9, "score": 0.4, "point": [3, 3]}])");
  // cat: ignored, TP (A), TP (B: 70 + 18 = 88), FP (88.5 outside B) -> AP 1 over 2 positives;
  // precision has 3 points.
  r = evaluate_folder(root.string(), (root / "pred").string());
  CHECK(r.pointwise.per_class[0].value == 1.0);
  CHECK(r.pointwise.per_class[0].curve.precision.size() == 3);
  CHECK(r.pointwise.per_class[1].value == 1.0);
}

TEST_CASE("coco evaluate: classification by hand (crowd counts, missing pairs rank last)") {
  const fs::path root = fresh_temp_dir("coco_eval_cls");
  // Image 5 has a crowd cat only: positive for cat (crowd included). Image 6 has nothing.
  write_split(root, R"({"id": 1, "image_id": 5, "category_id": 2, "iscrowd": 1,
                        "bbox": [0, 0, 4, 4]})");
  fs::create_directories(root / "pred");
  // cat: image 6 scores 0.5, image 5 has no score (ranks last): ranked FP TP -> AP 0.5.
  // dog has no positive image: absent, out of the mean.
  write_file_atomic((root / "pred" / "classification.json").string(),
                    R"([{"image_id": 6, "category_id": 2, "score": 0.5},
                        {"image_id": 5, "category_id": 9, "score": 0.1}])");
  const EvalReport r = evaluate_folder(root.string(), (root / "pred").string());
  CHECK(r.classification.per_class[0].value == naive_ap({0, 1}, 1));
  CHECK(r.classification.per_class[1].absent);
  CHECK(r.classification.mean == 0.5);
  REQUIRE(r.notes.size() == 1);
  CHECK(r.notes[0].find("2 (image, category) pairs without a score") != std::string::npos);
}

TEST_CASE("coco evaluate: bad results are one line naming the file and the result") {
  const fs::path root = fresh_temp_dir("coco_eval_bad");
  write_split(root, R"({"id": 1, "image_id": 5, "category_id": 2, "area": 4,
                        "segmentation": [[0, 0, 4, 0, 4, 4]]},
                       {"id": 7, "image_id": 6, "category_id": 9, "area": 4, "bbox": [1, 1, 2, 2]},
                       {"id": 8, "image_id": 6, "category_id": 9})");
  const fs::path pred = root / "pred";
  fs::create_directories(pred);
  auto refused = [&](const std::string& file, const std::string& text, bool allow_missing) {
    for (const char* f : {"classification.json", "points.json", "instances.json"})
      fs::remove(pred / f);
    write_file_atomic((pred / file).string(), text);
    const std::string e =
        error_of([&] { evaluate_folder(root.string(), pred.string(), allow_missing); });
    CHECK(e.find('\n') == std::string::npos);
    return e;
  };
  std::string e = refused("classification.json",
                          R"([{"image_id": 5, "category_id": 2, "score": 0.5},
                              {"image_id": 5, "category_id": 2, "score": 0.4}])",
                          true);
  CHECK(e.find("classification.json: [1]: a second score for image 5 and category 2") !=
        std::string::npos);
  e = refused("classification.json", R"([{"image_id": 5, "category_id": 2, "score": 0.5}])", false);
  CHECK(e.find("no result for 1 category with positive images in the split ('dog')") !=
        std::string::npos);
  e = refused("classification.json", "[]", false);
  CHECK(e.find("classification.json: no results in the file") != std::string::npos);
  e = refused("points.json",
              R"([{"image_id": 8, "category_id": 2, "score": 0.5, "point": [1, 1]}])", true);
  CAPTURE(e);
  CHECK(e.find("points.json: [0]: unknown image_id 8") != std::string::npos);
  e = refused("points.json",
              R"([{"image_id": 5, "category_id": 2, "score": 0.5, "point": [1, 1]}])", true);
  CHECK(e.find("annotations[2] (id 8): no bbox, and no segmentation to take one from") !=
        std::string::npos);
  const std::string mask = coco::rle_to_string(coco::Rle{80, 100, {8000}}.counts);
  e = refused("instances.json",
              R"([{"image_id": 5, "category_id": 2, "score": 0.5, "bbox": [0, 0, 2, 2],
                   "segmentation": {"size": [80, 100], "counts": ")" + mask + R"("}},
                  {"image_id": 5, "category_id": 2, "score": 0.4,
                   "segmentation": {"size": [80, 100], "counts": ")" + mask + R"("}}])",
              true);
  CHECK(e.find("instances.json: [1]: no 'bbox', but the first result has one") !=
        std::string::npos);
  // An annotation without a segmentation cannot be scored against masks.
  e = refused("instances.json",
              R"([{"image_id": 5, "category_id": 2, "score": 0.5,
                   "segmentation": {"size": [80, 100], "counts": ")" + mask + R"("}}])",
              true);
  CHECK(e.find("instances_val.json: annotations[1] (id 7): no segmentation") != std::string::npos);
  fs::remove(pred / "instances.json");
  CHECK(error_of([&] { evaluate_folder(root.string(), pred.string()); })
            .find("no classification.json, points.json or instances.json") != std::string::npos);
}

TEST_CASE("coco evaluate: prm synth -> prm train -> prm eval --weights, and --pred again") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh_temp_dir("coco_eval_e2e");
  const std::string data = (dir / "coco").string();
  const CommandResult synth =
      run_command(prm_bin() + " synth --format coco --out " + data +
                  " --train 8 --val 6 --size 64 --classes 3 --seed 4 --val-split val2017");
  INFO(synth.err);
  REQUIRE(synth.exit_code == 0);
  const CommandResult train = run_command(
      prm_bin() + " train --data " + data + " --val-split val2017 --out " + (dir / "run").string() +
      " --epochs 1 --arch resnet18 --width 4 --size 48 --batch 4 --workers 1 --seed 3");
  INFO(train.err);
  REQUIRE(train.exit_code == 0);
  // Peak threshold 0 and masks from the PRMs, so that a barely trained network has instances.
  const std::string out = (dir / "eval").string();
  const CommandResult eval = run_command(
      prm_bin() + " eval --data " + data + " --split val2017 --weights " +
      (dir / "run" / "weights.safetensors").string() + " --out " + out +
      " --peak-threshold 0 --proposals none --extraction-size 48");
  INFO(eval.err);
  REQUIRE(eval.exit_code == 0);
  CHECK(eval.out.find("Average Precision  (AP) @[ IoU=0.50:0.95") != std::string::npos);
  CHECK(fs::exists(out + "/eval.md"));

  // The files read back against the ground truth: one score per (image, category), points in
  // their images, masks of their images' sizes (the readers check both).
  const CocoDataset gt = read_coco_annotations(coco_annotation_path(data, "val2017"));
  const std::string pred = out + "/predictions";
  const std::vector<CocoScoreResult> scores = read_coco_scores(pred + "/classification.json", gt);
  CHECK(scores.size() == gt.images.size() * gt.categories.size());
  const std::vector<CocoPointResult> points = read_coco_points(pred + "/points.json", gt);
  const std::vector<CocoMaskResult> masks = read_coco_masks(pred + "/instances.json", gt);
  CHECK(points.size() > 0);
  CHECK(masks.size() > 0);

  // The report's classification mAP, recomputed here from the scores and the annotations.
  const Json report = parse_json(read_file_bytes(out + "/eval.json"), "eval.json");
  double sum = 0;
  int classes = 0;
  for (size_t c = 0; c < gt.categories.size(); ++c) {
    std::vector<std::pair<double, int>> ranked;  // (score, positive), in image order
    int positives = 0;
    for (size_t i = 0; i < gt.images.size(); ++i) {
      double s = -std::numeric_limits<double>::infinity();
      for (const CocoScoreResult& x : scores)
        if (x.image_id == gt.images[i].id && x.category_id == gt.categories[c].id) s = x.score;
      const int pos = gt.labels(static_cast<int>(i))[c] > 0;
      positives += pos;
      ranked.push_back({s, pos});
    }
    if (positives == 0) continue;
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<int> tp;
    for (const auto& e : ranked) tp.push_back(e.second);
    sum += naive_ap(tp, positives);
    ++classes;
  }
  CHECK(std::abs(report.at("classification").at("map").as_double() - sum / classes) < 1e-6);
  REQUIRE(report.at("coco_segm").fields().size() == 12);
  CHECK(report.at("pointwise").find("map") != nullptr);

  // Scoring the folder again with --pred gives the same report.
  const CommandResult again = run_command(prm_bin() + " eval --data " + data +
                                          " --split val2017 --pred " + pred + " --json " +
                                          (dir / "again.json").string());
  INFO(again.err);
  REQUIRE(again.exit_code == 0);
  const Json second = parse_json(read_file_bytes((dir / "again.json").string()), "again.json");
  CHECK(write_json(second.at("coco_segm")) == write_json(report.at("coco_segm")));
  CHECK(write_json(second.at("classification")) == write_json(report.at("classification")));
  CHECK(write_json(second.at("pointwise")) == write_json(report.at("pointwise")));

  // --classes is VOC's.
  const CommandResult classes_flag = run_command(prm_bin() + " eval --data " + data +
                                                 " --split val2017 --pred " + pred +
                                                 " --classes a,b,c");
  CHECK(classes_flag.exit_code != 0);
  CHECK(classes_flag.err.find("--classes is for VOC") != std::string::npos);
}
