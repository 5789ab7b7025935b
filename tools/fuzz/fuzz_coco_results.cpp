// libFuzzer target for the COCO results readers (data/coco_results.h) and what `prm eval` does
// with their output (data/eval.h on a COCO root): the input's first byte picks the file
// (classification.json, points.json or instances.json), the rest is its text, read against a
// fixed ground truth of two images and three categories. Any input must either be read or throw
// prm::Error. What is read must hold together:
//   - every result names a known image and category, and its score is finite;
//   - points lie inside their image; masks have their image's size and decode (to that size);
//   - written back with coco_*_json and read again, the results are the same;
//   - scored as `prm eval --pred` scores the folder (also prm::Error or a report), the numbers
//     are in [0, 1] (COCOeval's: in [0, 1] or -1).
// Crashes, hangs, sanitizer reports and a broken check (abort) are bugs. Build with build.sh.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "data/coco.h"
#include "data/coco_mask.h"
#include "data/coco_results.h"
#include "data/eval.h"
#include "fuzz_util.h"
#include "tensor/error.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_coco_results: broken: %s\n", what);
    std::abort();
  }
}

const char* const kGroundTruth = R"({
 "images": [{"id": 1, "file_name": "a.jpg", "width": 12, "height": 10},
            {"id": 4, "file_name": "b.jpg", "width": 7, "height": 9}],
 "categories": [{"id": 5, "name": "dog"}, {"id": 2, "name": "cat"}, {"id": 9, "name": "cow"}],
 "annotations": [
  {"id": 1, "image_id": 1, "category_id": 2, "area": 20, "bbox": [1, 1, 5, 4],
   "segmentation": [[1, 1, 6, 1, 6, 5, 1, 5]]},
  {"id": 2, "image_id": 1, "category_id": 5, "iscrowd": 1, "area": 120, "bbox": [0, 0, 12, 10],
   "segmentation": {"size": [10, 12], "counts": [0, 120]}},
  {"id": 3, "image_id": 4, "category_id": 9, "area": 9,
   "segmentation": {"size": [9, 7], "counts": "e036000?"}},
  {"id": 4, "image_id": 4, "category_id": 2, "area": 4, "bbox": [2, 2, 2, 2],
   "segmentation": [[2, 2, 4, 2, 4, 4], [2.5, 2, 3.5, 4, 2, 4]]}]})";

const prm::CocoDataset& ground_truth() {
  static const prm::CocoDataset d = [] {
    const std::string dir = prm_fuzz::scratch_dir() + "/annotations";
    std::filesystem::create_directories(dir);
    prm_fuzz::write_bytes(dir + "/instances_val.json", kGroundTruth);
    return prm::read_coco_annotations(dir + "/instances_val.json");
  }();
  return d;
}

const prm::CocoImage& image_of(const prm::CocoDataset& d, int64_t id) {
  const auto it = d.image_index.find(id);
  check(it != d.image_index.end(), "a result names a known image");
  return d.images[it->second];
}

void check_head(const prm::CocoDataset& d, int64_t image_id, int64_t category_id, double score) {
  image_of(d, image_id);
  check(d.category_index.count(category_id) == 1, "a result names a known category");
  check(std::isfinite(score), "scores are finite");
}

// Reads `path` as `kind`, checks what was read, writes it back and reads it again.
void read_and_check(int kind, const std::string& path) {
  const prm::CocoDataset& d = ground_truth();
  const std::string again = prm_fuzz::scratch_dir() + "/again.json";
  if (kind == 0) {
    const auto r = prm::read_coco_scores(path, d);
    for (const auto& x : r) check_head(d, x.image_id, x.category_id, x.score);
    prm_fuzz::write_bytes(again, prm::coco_scores_json(r));
    const auto s = prm::read_coco_scores(again, d);
    check(s.size() == r.size(), "scores: the same count read back");
    for (size_t i = 0; i < r.size(); ++i)
      check(s[i].image_id == r[i].image_id && s[i].category_id == r[i].category_id &&
                s[i].score == r[i].score,
            "scores: the same results read back");
  } else if (kind == 1) {
    const auto r = prm::read_coco_points(path, d);
    for (const auto& x : r) {
      check_head(d, x.image_id, x.category_id, x.score);
      const prm::CocoImage& im = image_of(d, x.image_id);
      check(x.x >= 0 && x.x <= im.width - 1 && x.y >= 0 && x.y <= im.height - 1,
            "points lie in their image");
    }
    prm_fuzz::write_bytes(again, prm::coco_points_json(r));
    const auto s = prm::read_coco_points(again, d);
    check(s.size() == r.size(), "points: the same count read back");
    for (size_t i = 0; i < r.size(); ++i)
      check(s[i].score == r[i].score && s[i].x == r[i].x && s[i].y == r[i].y,
            "points: the same results read back");
  } else {
    const auto r = prm::read_coco_masks(path, d);
    for (const auto& x : r) {
      check_head(d, x.image_id, x.category_id, x.score);
      const prm::CocoImage& im = image_of(d, x.image_id);
      check(x.height == im.height && x.width == im.width, "masks have their image's size");
      const prm::coco::Rle m = prm::coco::rle_from_string(x.counts, static_cast<uint32_t>(x.height),
                                                          static_cast<uint32_t>(x.width));
      check(prm::coco::rle_decode(m).size() == static_cast<size_t>(im.height * im.width),
            "masks decode to their image's size");
    }
    prm_fuzz::write_bytes(again, prm::coco_masks_json(r));
    const auto s = prm::read_coco_masks(again, d);
    check(s.size() == r.size(), "masks: the same count read back");
    for (size_t i = 0; i < r.size(); ++i)
      check(s[i].counts == r[i].counts && s[i].score == r[i].score,
            "masks: the same results read back");
  }
}

bool in_unit(double v) { return v >= 0 && v <= 1; }

void check_metric(const prm::MeanMetric& m) {
  check(in_unit(m.mean), "a mean AP is in [0, 1]");
  for (const prm::ClassMetric& c : m.per_class) check(in_unit(c.value), "an AP is in [0, 1]");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int kind = data[0] % 3;
  static const char* const kNames[3] = {"classification.json", "points.json", "instances.json"};
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  ground_truth();
  const std::string pred = prm_fuzz::scratch_dir() + "/pred";
  std::filesystem::remove_all(pred);
  std::filesystem::create_directories(pred);
  const std::string path = pred + "/" + kNames[kind];
  prm_fuzz::write_bytes(path, text);
  try {
    read_and_check(kind, path);
  } catch (const prm::Error&) {
    return 0;  // refused: fine
  }
  prm::EvalOptions o;
  o.data = prm_fuzz::scratch_dir();
  o.split = "val";
  o.pred = pred;
  o.allow_missing = (data[0] & 4) != 0;
  try {
    const prm::EvalReport r = prm::evaluate(o);
    check(r.format == "coco", "the fixed root is read as COCO");
    if (r.has_classification) check_metric(r.classification);
    if (r.has_points) check_metric(r.pointwise);
    if (r.has_coco_segm)
      for (double v : r.coco_segm) check(v == -1 || in_unit(v), "COCOeval's numbers in [0, 1] or -1");
  } catch (const prm::Error&) {
    // e.g. a category without results when allow_missing is off
  }
  return 0;
}
