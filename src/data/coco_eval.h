// COCO instance-segmentation evaluation: pycocotools' COCOeval with iouType='segm' and its
// default parameters (evaluate(), accumulate(), summarize()), on plain data (no files), giving the
// same numbers (to rounding in the final means) on the same input. The rules, in the order
// COCOeval applies them (docs/coco.md has the details):
//
// - What is evaluated: the images and categories listed (sorted, duplicates dropped); ground truths
//   and detections of other images or categories are left out. Within one (image, category),
//   ground truths and detections keep their input order (the annotation file's, the results
//   file's) until sorted below.
// - Ground truth: a crowd region (iscrowd) is always "ignored"; for each area range, so is one
//   whose `area` (the annotation's own area field, not its mask's) lies outside the range (the
//   bounds count as inside). Ignored ground truths come after the others (a stable sort).
// - Detections: area = the mask's pixel count (or Detection::area); sorted by score, highest
//   first, ties in input order (a stable sort), and only the first 100 of each (image, category)
//   are used at all.
// - IoU of masks (coco_mask.h's rle_iou): for a crowd ground truth, |dt & gt| / |dt|.
// - Matching, per IoU threshold t in 0.50, 0.55, ..., 0.95 (numpy.linspace's values) and area
//   range: each detection in score order takes, among the ground truths not matched yet (crowd
//   regions can be taken any number of times), the one with the highest IoU >= t (the later one
//   on a tie), but once it holds a non-ignored one it does not move to an ignored one. A detection
//   matched to an ignored ground truth is ignored; an unmatched detection whose area lies outside
//   the area range is ignored too.
// - Accumulation per (category, area range, maxDets in 1, 10, 100): the first maxDets detections
//   of each image, all images together, ranked by score (ties: image id, then rank in the image);
//   recall = TP / (non-ignored ground truths), precision = TP / (TP + FP); precision made
//   non-increasing from the right and read at the 101 recall points 0, 0.01, ..., 1 (the first
//   rank whose recall reaches the point; 0 past the last); recall = the final recall. A setting
//   without non-ignored ground truth is -1 and left out of every mean.
// - summarize(): twelve means of the entries that are not -1 (kSegmStatNames).
//
// Ground truth ids matter as in pycocotools: a match stores the ground truth's id and accumulate
// counts "id != 0" as matched, so a ground truth with id 0 is matched but never counted as a true
// positive (COCO ids start at 1). Ids must be unique (prm::Error otherwise).
//
// Work: the IoUs of each (image, category) from the runs of the masks, then the matching, in
// parallel over (image, category) with OpenMP; the accumulation in parallel over categories. The
// result does not depend on the number of threads.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/coco_mask.h"

namespace prm::coco {

struct GroundTruth {
  int64_t id = 0;  // the annotation's id (unique)
  int64_t image_id = 0;
  int64_t category_id = 0;
  bool iscrowd = false;
  double area = 0;  // the annotation's "area" field
  Rle mask;         // annToRLE: polygons via rle_from_polygons, RLE as given
};

struct Detection {
  int64_t image_id = 0;
  int64_t category_id = 0;
  double score = 0;  // finite
  Rle mask;
  // loadRes' area: < 0 for the mask's pixel count (segmentation results); a results file whose
  // first result has a non-empty "bbox" gets w * h of each result's box instead (loadRes reads
  // such a file as box results, and COCOeval's area ranges then use the box areas).
  double area = -1;
};

// COCOeval's default parameters.
constexpr int kNumIouThresholds = 10;     // T
constexpr int kNumRecallThresholds = 101;  // R
constexpr int kNumAreaRanges = 4;          // A: all, small, medium, large
constexpr int kNumMaxDets = 3;             // M
constexpr std::array<int, kNumMaxDets> kMaxDets = {1, 10, 100};
constexpr std::array<std::array<double, 2>, kNumAreaRanges> kAreaRanges = {
    {{0, 1e10}, {0, 32 * 32}, {32 * 32, 96 * 96}, {96 * 96, 1e10}}};
constexpr std::array<const char*, kNumAreaRanges> kAreaRangeNames = {"all", "small", "medium",
                                                                     "large"};
// numpy.linspace(.5, .95, 10) and numpy.linspace(0, 1, 101), bit for bit.
const std::array<double, kNumIouThresholds>& iou_thresholds();
const std::array<double, kNumRecallThresholds>& recall_thresholds();

// summarize()'s twelve numbers, in its order.
constexpr std::array<const char*, 12> kSegmStatNames = {
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};

struct SegmEvaluation {
  std::vector<int64_t> image_ids;     // evaluated, ascending
  std::vector<int64_t> category_ids;  // evaluated, ascending (K of them)
  // accumulate()'s arrays, -1 where a setting has no non-ignored ground truth:
  // precision[t][r][k][a][m] at ((((t * R + r) * K + k) * A + a) * M + m),
  // recall[t][k][a][m] at (((t * K + k) * A + a) * M + m).
  std::vector<double> precision;
  std::vector<double> recall;
  std::array<double, 12> stats{};  // summarize(), kSegmStatNames

  // Per category: the mean precision over thresholds and recall points (area all, 100
  // detections), -1 when the category has no non-ignored ground truth; `iou_index` picks one
  // threshold instead (0: IoU 0.5).
  double category_ap(size_t k, int iou_index = -1) const;
};

// The evaluation of `detections` against `ground_truths` on the listed images and categories.
// prm::Error on a repeated ground-truth id or a detection score that is NaN.
SegmEvaluation evaluate_segm(const std::vector<GroundTruth>& ground_truths,
                             const std::vector<Detection>& detections,
                             const std::vector<int64_t>& image_ids,
                             const std::vector<int64_t>& category_ids);

}  // namespace prm::coco
