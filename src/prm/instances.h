// Instance extraction (docs/prm.md step 6): each peak's response map (PRM) picks the segment
// proposal that best explains it, and overlapping picks are merged by greedy NMS.
//
// For a peak of class c with PRM R (float [H, W], input resolution) and a proposal S:
//   C = morphological gradient of S with a 5x5 square (its contour band),
//   Q = [bicubic-upsampled CRM of class c < 0.95 * mean of that upsampled CRM] (background prior),
//   score = 0.8 * sum(R over S) + sum(R over C) - 1e-5 * sum(Q over S)
//           [- area_penalty * |S| / (H * W), an option of ours, off by default].
// Each peak keeps its best proposal (first on ties); instances are sorted by score (descending,
// stable) and a kept instance suppresses every later one whose mask IoU with it is >= 0.3, adding
// the suppressed PRMs to its own. The choices where the official code (ZhouYanzhao/PRM,
// peak_response_mapping.py) and docs/prm.md leave room are documented in docs/instances.md:
// the official order "first 100 proposals, then the size filter", the half-open size range
// [0.00002, 0.85) of the image area, OpenCV's border rule for the gradient, and NMS across
// classes.
//
// Plain host code on float arrays; sums are accumulated in double.
#pragma once
#include <cstddef>  // before mask.h, which uses size_t
#include <cstdint>
#include <vector>

#include "prm/image_ops.h"
#include "prm/mask.h"
#include "prm/peak.h"

namespace prm {

// One peak and its response map, as `prm forward --prm-dir` writes them: the peak in
// upsampled-CRM coordinates (peaks.npy) and the PRM at input resolution (prms.npy).
struct PeakPrm {
  Peak peak;
  int height = 0, width = 0;
  std::vector<float> prm;  // height * width, row-major
};

// prms: float [K, H, W], K = peaks.size().
std::vector<PeakPrm> make_peak_prms(const std::vector<Peak>& peaks, const float* prms, int H,
                                    int W);

struct InstanceOptions {
  int proposal_limit = 100;      // proposals considered per image
  double min_area = 0.00002;     // a proposal's area / image area must be >= min_area
  double max_area = 0.85;        // ... and < max_area
  bool filter_before_limit = false;  // false (official): the first `proposal_limit` proposals,
                                     // then the size filter; true: the first `proposal_limit`
                                     // proposals that pass the filter
  int contour_width = 5;         // square of the morphological gradient
  double background_factor = 0.95;  // Q = [upsampled CRM < factor * its mean]
  double balance = 0.8;          // weight of sum(R over S)
  double penalty = 1e-5;         // weight of sum(Q over S)
  // Ours, not the paper's (0 = off, the default): minus area_penalty * |S| / (H * W), i.e.
  // area_penalty times the mass a uniform PRM would put inside S. With it a pixel adds to the
  // score only where balance * R exceeds area_penalty / (H * W): for diffuse PRMs (a network
  // trained from scratch on small images spreads most of a PRM's mass over the background),
  // which otherwise favour the largest proposals through the peak (docs/prm.md, the demo).
  double area_penalty = 0;
  double nms_iou = 0.3;          // suppress at IoU >= this; a value > 1 disables NMS
  bool nms_across_classes = true;  // official: any class suppresses any class
  bool merge_prms = true;        // a kept instance adds the suppressed ones' PRMs
};

struct Instance {
  double score = 0;  // the extraction score above; also the ranking score for mAP^r
  Peak peak;         // the peak that chose the mask (peak.c: the instance's class)
  int proposal = -1;                   // index into the proposals vector
  Mask mask;
  std::vector<float> prm;       // own PRM plus the PRMs of the instances it suppressed
  std::vector<int> merged_peaks;  // indices (into the input peaks) of those suppressed
  int peak_index = -1;            // index of its own peak in the input
};

// crms: float [C, h, w], the class response maps the background prior is built from (the
// official code passes the x8 sub-pixel-upsampled CRMs); each is bicubic-upsampled to the PRM
// size. Every PRM and every proposal must have the same size (prm::Error otherwise, naming the
// offending index); peaks' classes must lie in [0, C). A PRM that is all zero (no evidence) gives
// no instance, as in the official code where its normalisation makes it NaN. Non-finite values in
// a PRM or CRM are an error. No peaks or no proposal that passes the size filter: no instances.
std::vector<Instance> extract_instances(const std::vector<PeakPrm>& prms, const float* crms,
                                        int C, int h, int w, const std::vector<Mask>& proposals,
                                        const InstanceOptions& opts = {});

// The score of every (peak, proposal) pair, -inf for proposals left out by the limit or size
// filter: [K][P]. What extract_instances maximises; exposed for tests and study.
std::vector<std::vector<double>> proposal_scores(const std::vector<PeakPrm>& prms,
                                                 const float* crms, int C, int h, int w,
                                                 const std::vector<Mask>& proposals,
                                                 const InstanceOptions& opts = {});

// Greedy NMS on instances already sorted by descending score (the second half of
// extract_instances).
std::vector<Instance> instance_nms(std::vector<Instance> sorted, const InstanceOptions& opts);

// Per-pixel labels for evaluation, painted in ascending score order so that the highest-scoring
// instance wins an overlapped pixel: instance_labels holds 1 + the index into `instances` (0 =
// none), class_labels 1 + the class index (0 = background). Both [height, width].
struct LabelMaps {
  int height = 0, width = 0;
  std::vector<int32_t> instance_labels, class_labels;
};
LabelMaps instance_label_maps(const std::vector<Instance>& instances, int height, int width);

}  // namespace prm
