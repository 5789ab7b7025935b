// COCO results files (data/coco_results.h): written, read back, and every kind of bad result
// refused in one line naming the file and the result.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "data/coco.h"
#include "data/coco_mask.h"
#include "data/coco_results.h"
#include "data/json.h"
#include "helpers.h"
#include "tensor/error.h"

using namespace prm;

namespace {

// Image 7 is 4 wide and 3 high; categories 5 and 90.
CocoDataset two_class_set() {
  return parse_coco_annotations(R"({"images": [{"id": 7, "file_name": "a.jpg", "width": 4, "height": 3}],
      "categories": [{"id": 90, "name": "b"}, {"id": 5, "name": "a"}], "annotations": []})",
                                "gt.json");
}

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = (fresh_temp_dir("coco-results") / name).string();
  write_bytes(path, text);
  return path;
}

}  // namespace

TEST_CASE("coco results: scores, points and masks written as COCO's results format, read back") {
  const CocoDataset gt = two_class_set();
  const std::vector<CocoScoreResult> scores = {{7, 5, 0.25}, {7, 90, -1.5e-3}};
  const std::string s = coco_scores_json(scores);
  CHECK(s == "[\n{\"image_id\":7,\"category_id\":5,\"score\":0.25},\n"
             "{\"image_id\":7,\"category_id\":90,\"score\":-0.0015}\n]\n");
  const std::vector<CocoScoreResult> s2 = read_coco_scores(write_temp("c.json", s), gt);
  REQUIRE(s2.size() == 2);
  CHECK(s2[1].category_id == 90);
  CHECK(s2[1].score == -1.5e-3);

  const std::vector<CocoPointResult> points = {{7, 90, 0.5, 3, 2}, {7, 5, 0.1, 0, 0.5}};
  const std::vector<CocoPointResult> p2 =
      read_coco_points(write_temp("p.json", coco_points_json(points)), gt);
  REQUIRE(p2.size() == 2);
  CHECK(p2[0].x == 3);
  CHECK(p2[0].y == 2);
  CHECK(p2[1].y == 0.5);

  // A mask of image 7 (3 x 4): its compressed string, as pycocotools writes it.
  const std::vector<uint8_t> mask = {0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0};  // row-major
  const coco::Rle rle = coco::rle_encode(mask.data(), 3, 4);
  const std::vector<CocoMaskResult> masks = {{7, 5, 0.75, 3, 4, coco::rle_to_string(rle.counts)}};
  const std::string m = coco_masks_json(masks);
  const Json parsed = parse_json(m, "m");
  CHECK(parsed.items()[0].at("segmentation").at("size").items()[0].as_int64() == 3);
  const std::vector<CocoMaskResult> m2 = read_coco_masks(write_temp("m.json", m), gt);
  REQUIRE(m2.size() == 1);
  CHECK(m2[0].counts == masks[0].counts);
  CHECK(coco::rle_decode(coco::rle_from_string(m2[0].counts, 3, 4)) == mask);
  CHECK(read_coco_masks(write_temp("e.json", "[]"), gt).empty());
}

TEST_CASE("coco results: a bad result is one line naming the file and the result") {
  const CocoDataset gt = two_class_set();
  struct Case {
    int kind;  // 0 scores, 1 points, 2 masks
    std::string text, error;
  };
  const std::string ok_mask = coco::rle_to_string({12});
  const Case cases[] = {
      {0, R"({"image_id": 7})", "not a COCO results file (the document is not an array)"},
      {0, R"([{"image_id": 8, "category_id": 5, "score": 1}])", "[0]: unknown image_id 8"},
      {0, R"([{"image_id": 7, "category_id": 5, "score": 1}, {"image_id": 7, "category_id": 6,
              "score": 1}])",
       "[1]: unknown category_id 6"},
      {0, R"([{"image_id": 7, "category_id": 5}])", "[0]: no 'score'"},
      {0, R"([{"image_id": 7, "category_id": 5, "score": "high"}])",
       "[0]: field 'score': expected a number, found a string"},
      {0, R"([3])", "[0]: a result is not an object"},
      {1, R"([{"image_id": 7, "category_id": 5, "score": 1}])", "[0]: no 'point'"},
      {1, R"([{"image_id": 7, "category_id": 5, "score": 1, "point": [4, 0]}])",
       "[0]: point (4, 0) is outside image 7 (4x3: x in 0..3, y in 0..2)"},
      {1, R"([{"image_id": 7, "category_id": 5, "score": 1, "point": [1]}])",
       "[0]: point has 1 numbers, not 2"},
      {2, R"([{"image_id": 7, "category_id": 5, "score": 1, "segmentation": {"size": [4, 3],
              "counts": ")" + ok_mask + R"("}}])",
       "[0]: mask size 4 x 3 is not image 7's 3 x 4"},
      {2, R"([{"image_id": 7, "category_id": 5, "score": 1, "segmentation": {"size": [3, 4],
              "counts": [12]}}])",
       "[0]: segmentation counts are not a compressed RLE string"},
      {2, R"([{"image_id": 7, "category_id": 5, "score": 1, "segmentation": {"size": [3, 4],
              "counts": "3"}}])",
       "[0]: segmentation: "},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    const std::string path = write_temp("r.json", c.text);
    const std::string e = error_of([&] {
      if (c.kind == 0) read_coco_scores(path, gt);
      else if (c.kind == 1) read_coco_points(path, gt);
      else read_coco_masks(path, gt);
    });
    CHECK(e.find(path + ": " + c.error) == 0);
    CHECK(e.find('\n') == std::string::npos);
  }
}
