// Predictions on MS COCO: the three JSON files `prm eval` writes and scores on a COCO split
// (docs/coco.md), each a JSON array in the results format every COCO tool reads:
//   classification.json  [{"image_id": 42, "category_id": 18, "score": 0.93}, ...]
//   points.json          [{"image_id": 42, "category_id": 18, "score": 0.93, "point": [x, y]}, ...]
//                        (x, y: 0-based pixels of the original image, x the column)
//   instances.json       [{"image_id": 42, "category_id": 18, "score": 0.93,
//                          "segmentation": {"size": [h, w], "counts": "<compressed RLE>"}}, ...]
// Readers check every result against the ground truth's index and refuse, in one line naming the
// file and the result's index: an unknown image_id or category_id, a missing or mistyped field, a
// point outside its image, a mask whose size is not its image's or whose counts are not a valid
// compressed RLE of that size.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/coco.h"

namespace prm {

struct CocoScoreResult {
  int64_t image_id = 0, category_id = 0;
  double score = 0;
};

struct CocoPointResult {
  int64_t image_id = 0, category_id = 0;
  double score = 0;
  double x = 0, y = 0;
};

struct CocoMaskResult {
  int64_t image_id = 0, category_id = 0;
  double score = 0;
  int64_t height = 0, width = 0;
  std::string counts;  // pycocotools' compressed string
  // An optional "bbox": [x, y, w, h] beside the mask (never written here). pycocotools' loadRes
  // reads a file whose first result has a non-empty bbox as box results: each result's area is
  // then its box's w * h, which COCOeval's area ranges use (coco::Detection::area).
  bool has_bbox = false, empty_bbox = false;
  double bbox[4] = {0, 0, 0, 0};
};

// The files' text (one result per line inside the array). Scores and coordinates must be finite.
std::string coco_scores_json(const std::vector<CocoScoreResult>& results);
std::string coco_points_json(const std::vector<CocoPointResult>& results);
std::string coco_masks_json(const std::vector<CocoMaskResult>& results);

// The same read back from `path`, checked against `gt` (see above).
std::vector<CocoScoreResult> read_coco_scores(const std::string& path, const CocoDataset& gt);
std::vector<CocoPointResult> read_coco_points(const std::string& path, const CocoDataset& gt);
std::vector<CocoMaskResult> read_coco_masks(const std::string& path, const CocoDataset& gt);

}  // namespace prm
