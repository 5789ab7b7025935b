// `prm eval`: scores predictions against VOC ground truth with the protocols of metrics.h.
//
// Predictions live in one folder (all files optional; a metric is computed when its file exists):
//   classification.txt  "<image_id> <class_name> <score>"             image-level class scores
//   points.txt          "<image_id> <class_name> <score> <x> <y>"     predicted points, 0-based
//                                                                      pixels of the original image
//   instances.txt       "<image_id> <class_name> <score> <mask.png>"  instance masks: an 8-bit grey
//                       or palette PNG of the original image size, non-zero inside; the path is
//                       relative to the predictions folder
// Blank lines, lines starting with '#' and a UTF-8 byte-order mark are skipped; scores and
// coordinates must be finite, points inside their image. Classification and points are scored on
// ImageSets/Main/<split>.txt, instances (mAP^r, ABO) and semantic mIoU on
// ImageSets/Segmentation/<split>.txt. An (image, class) pair of the split with no
// classification score ranks last; predictions for images outside the split are ignored and
// counted in the notes.
#pragma once
#include <string>
#include <vector>

#include "data/metrics.h"
#include "data/voc.h"

namespace prm {

struct EvalOptions {
  std::string data;  // VOC root or its parent
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
};

EvalReport evaluate(const EvalOptions& options);
std::string report_json(const EvalReport& report);
std::string report_markdown(const EvalReport& report);

}  // namespace prm
