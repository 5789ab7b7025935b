// The evaluation metrics of PRM, on plain data (no files). Protocols (also in docs/evaluation.md):
//
// Average precision (VOC 2012): rank the entries by score, descending; ties keep their input
// order (a stable sort, as the devkit's MATLAB sort does). Entries marked "ignore" are dropped
// from the ranking. AP is the area under the interpolated precision-recall curve: precision is
// replaced by its running maximum from the right, and summed over every recall step
// (sum (r_i - r_{i-1}) * p_interp(r_i)), with recall = TP / positives.
//
// Classification: per class, one entry per image; positive if the class is present, negative if
// absent, ignored if present only as difficult objects (VOC's "0" label).
//
// Pointwise localisation: per class, each predicted point (x, y in 0-based pixel coordinates of
// the original image) is, in score order, a true positive if it lies inside a not-yet-matched,
// non-difficult ground-truth box of its class in its image, grown by `tolerance` pixels on every
// side (VOC boxes are 1-based, so box [xmin, xmax] covers pixels xmin-1 .. xmax-1); among several
// such boxes it takes the one whose centre is nearest. A point that hits difficult boxes only (no
// non-difficult box of its class, matched or not) is ignored; any other point is a false positive
// (duplicates included, also when they lie in a difficult box too). Positives = non-difficult
// boxes. Equal scores rank by image (PointPrediction::image, the split order), then input order.
// The tolerance must be finite and >= 0.
//
// Instance segmentation (mAP^r at an IoU threshold): per class, predicted masks in score order;
// each takes the ground-truth instance of its class in its image with the highest mask IoU
// (void pixels excluded from both intersection and union); it is a true positive if that IoU >=
// the threshold and that instance is not matched yet, else a false positive (VOC detection rule).
// Positives = ground-truth instances of the class.
// ABO: for every ground-truth instance, the best IoU with any predicted mask of its class in its
// image (0 when there is none), averaged over all instances.
// Semantic segmentation: each image's label map is painted from its predicted instances in
// ascending score order (the highest score wins a pixel; among equal scores the earlier
// instance wins), background elsewhere; a confusion
// matrix over background + C classes is accumulated over all non-void pixels of the split;
// IoU_k = TP / (TP + FP + FN), mIoU = mean over background and the classes.
//
// In every mean, classes with no ground truth in the split are left out and reported as absent.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace prm {

enum class Outcome : int8_t { false_positive = 0, true_positive = 1, ignore = 2 };

struct RankedEntry {
  double score = 0;
  Outcome outcome = Outcome::false_positive;
};

struct ApCurve {
  double ap = 0;
  int64_t positives = 0;
  std::vector<double> precision, recall;  // one point per ranked, non-ignored entry
};

// VOC 2012 AP of entries (any order; ranked here). With no positives the AP is 0 and the class
// should be reported absent by the caller.
ApCurve average_precision(std::vector<RankedEntry> entries, int64_t positives);
// The interpolated area under a precision/recall curve (recall ascending).
double voc_ap_area(const std::vector<double>& recall, const std::vector<double>& precision);

struct ClassMetric {
  double value = 0;     // AP or IoU
  bool absent = false;  // no ground truth of this class in the split
  ApCurve curve;        // empty for IoU
};

struct MeanMetric {
  std::vector<ClassMetric> per_class;
  double mean = 0;  // over classes that are not absent
  std::vector<int> absent_classes;
};
// Fills mean and absent_classes from per_class.
void finish_mean(MeanMetric& m);

// Classification. scores[i][c]; labels[i][c]: 1 present, 0 difficult only (ignored), -1 absent.
MeanMetric classification_map(const std::vector<std::vector<double>>& scores,
                              const std::vector<std::vector<int>>& labels, int num_classes);

struct GtBox {
  int class_id = 0;
  bool difficult = false;
  double xmin = 0, ymin = 0, xmax = 0, ymax = 0;  // VOC 1-based inclusive
};
struct PointPrediction {
  int image = 0;  // index into the per-image box lists
  int class_id = 0;
  double score = 0;
  double x = 0, y = 0;  // 0-based pixel coordinates
};
MeanMetric pointwise_map(const std::vector<std::vector<GtBox>>& boxes,
                         const std::vector<PointPrediction>& points, int num_classes,
                         double tolerance = 18.0);

// One image's instance evaluation, after the masks were compared (masks are not kept).
struct InstancePrediction {
  int class_id = 0;
  double score = 0;
  std::vector<double> iou;  // with each ground-truth instance of the image
};
struct ImageInstances {
  std::vector<int> gt_class;  // per ground-truth instance
  std::vector<InstancePrediction> predictions;
};

// IoU of binary masks with void pixels (void[i] != 0) excluded; 0 when the union is empty.
double mask_iou(const uint8_t* a, const uint8_t* b, const uint8_t* void_mask, int64_t n);

MeanMetric instance_map(const std::vector<ImageInstances>& images, int num_classes,
                        double iou_threshold);
// Average best overlap; also returns the number of ground-truth instances in *count.
double average_best_overlap(const std::vector<ImageInstances>& images, int64_t* count = nullptr);

// Semantic segmentation: a (C+1) x (C+1) confusion matrix, rows ground truth, columns prediction.
struct Confusion {
  int num_labels = 0;  // C + 1
  std::vector<int64_t> counts;
  explicit Confusion(int labels = 0)
      : num_labels(labels), counts(static_cast<size_t>(labels) * labels, 0) {}
  // gt and pred hold labels 0..C (gt 255 = void, skipped).
  void add(const uint8_t* gt, const uint8_t* pred, int64_t n);
};
// Label 0 is background, label k+1 is class k; per_class has C + 1 entries.
MeanMetric semantic_miou(const Confusion& confusion);
// Paints instance masks (0/1 bytes, n pixels each) into labels 0..C: a pixel takes the class of
// the highest-scoring mask covering it, the earlier mask among equal scores; 0 where none does.
std::vector<uint8_t> paint_semantic(const std::vector<const uint8_t*>& masks,
                                    const std::vector<int>& class_ids,
                                    const std::vector<double>& scores, int64_t n);

}  // namespace prm
