// `prm eval`: scores predictions against VOC ground truth with the protocols of metrics.h.
//
// Predictions live in one folder (all files optional; a metric is computed when its file exists):
//   classification.txt  "<image_id> <class_name> <score>"             image-level class scores
//   points.txt          "<image_id> <class_name> <score> <x> <y>"     predicted points, 0-based
//                                                                      pixels of the original image
//   instances.txt       "<image_id> <class_name> <score> <mask.png>"  instance masks: an 8-bit grey
//                       or palette PNG of the original image size, non-zero inside; the path is
//                       relative to the predictions folder
// On an MS COCO root (ROOT/annotations/instances_<split>.json; docs/coco.md) the folder holds the
// JSON results files instead (data/coco_results.h): classification.json and points.json, scored
// with the same protocols on the split's images (COCO boxes [x, y, w, h] for points, crowd boxes
// playing VOC's difficult ones), and instances.json, scored by COCOeval's segm rules
// (data/coco_eval.h): its twelve numbers and the AP of each category.
//
// Blank lines, lines starting with '#' and a UTF-8 byte-order mark are skipped; scores and
// coordinates must be finite, points inside their image. Classification and points are scored on
// ImageSets/Main/<split>.txt, instances (mAP^r, ABO) and semantic mIoU on
// ImageSets/Segmentation/<split>.txt. An (image, class) pair of the split with no
// classification score ranks last; predictions for images outside the split are ignored and
// counted in the notes.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "data/metrics.h"
#include "data/voc.h"

namespace prm {

struct EvalOptions {
  std::string data;  // VOC root or its parent, or a COCO root
  std::string format = "auto";  // "voc", "coco" or "auto" (resolve_dataset_format)
  std::string split = "val";
  std::string pred;  // predictions folder
  std::vector<std::string> classes = voc_class_names();
  double tolerance = 18.0;
  std::vector<double> iou_thresholds = {0.25, 0.5, 0.75};
  bool skip_bad = false;
  // A predictions file with no prediction line, or one whose classes with positives in the split
  // have no line, is refused unless this is set: an empty or partial file still scores (missing
  // classification scores rank last, so a class's AP is its positives' share of the images, not
  // 0), which hides a failed export. prm eval --weights sets it (its own files are complete).
  bool allow_missing = false;
};

struct EvalReport {
  std::string split;
  std::vector<std::string> classes;
  bool has_classification = false, has_points = false, has_instances = false;
  MeanMetric classification, pointwise;
  std::vector<double> iou_thresholds;
  std::vector<MeanMetric> instance;  // one per threshold
  double abo = 0;
  int64_t gt_instances = 0;
  MeanMetric semantic;  // background + classes
  double tolerance = 18.0;
  int64_t main_images = 0, segmentation_images = 0;
  int skipped = 0;
  std::vector<std::string> notes;
  // COCO (format "coco"): instances.json scored by COCOeval, and the AP of each category over
  // IoU 0.5:0.95 and at 0.5 (absent: no non-crowd ground truth).
  std::string format = "voc";
  bool has_coco_segm = false;
  std::array<double, 12> coco_segm{};  // coco::kSegmStatNames, -1 where COCOeval gives -1
  MeanMetric coco_segm_ap, coco_segm_ap50;
  int64_t instance_results = 0;
};

EvalReport evaluate(const EvalOptions& options);
// The classes with a positive image (labels[i][c] == 1) but no prediction (present[c] false),
// ascending: what EvalOptions::allow_missing lets a predictions file leave out.
std::vector<int> classes_missing_predictions(const std::vector<bool>& present,
                                             const std::vector<std::vector<int>>& labels);
// The COCO part of evaluate(), into a report that has split and tolerance set.
void evaluate_coco(const EvalOptions& options, EvalReport& report);
std::string report_json(const EvalReport& report);
std::string report_markdown(const EvalReport& report);

}  // namespace prm
