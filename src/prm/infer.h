// Inference of a trained PRM classifier on one image (docs/prm.md steps 1-6): the image resized to
// S x S and normalised as in training, class scores by peak stimulation, peak response maps by
// batched peak back-propagation, segment proposals (ours: selective search on the S x S image;
// "none": masks from the PRMs themselves; or a folder of proposals per image, e.g. MCG/COB), and
// instance extraction. Masks and points come back at the original image size.
#pragma once
#include <string>
#include <vector>

#include "data/image.h"
#include "layers/module.h"
#include "prm/instances.h"
#include "prm/peak_backprop.h"
#include "prm/selective_search.h"

namespace prm {

struct InferOptions {
  int size = 448;                // network input size (as in training)
  // Proposals and instance extraction run on the image resized to E x E, the PRMs bicubic-
  // resized to it (0: E = size). The official pipeline works at its input size 448, where the
  // constants of docs/prm.md step 6 were set (the background penalty 1e-5 per pixel weighs 12x
  // less on a 128 x 128 image): a network trained at another size keeps them meaningful with 448.
  int extraction_size = 0;
  PeakBackpropOptions peaks;     // thresholds (peak_threshold 30 as the official code)
  std::string proposals;         // "" ours (selective search), "none" from PRMs, else a folder
  ProposalOptions search;        // for ours
  InstanceOptions instances;
  bool keep_diagnostics = false;  // fill ImageInference::diagnostics (prm infer/eval --dump)
  int64_t max_pixels = kDefaultMaxImagePixels;  // larger images are refused (load_image)
};

// What instance extraction saw, for studying where quality is lost (tools/demo_diagnose.py):
// everything at the extraction size E x E.
struct InferDiagnostics {
  int size = 0;                               // E
  std::vector<Mask> proposals;                // [P] E x E, in the order extraction sees them
  std::vector<float> prms;                    // [K, E, E], as extraction scores them
  std::vector<std::vector<double>> scores;    // [K][P] step 6 scores (-inf: not considered)
};

struct PointPrediction {
  int class_index = 0;
  double score = 0;  // the peak's CRM value
  double x = 0, y = 0;  // 0-based pixels of the original image
};

struct ImageInference {
  std::string id;
  int width = 0, height = 0;              // original size
  std::vector<double> class_scores;       // [C], peak-stimulation scores
  std::vector<PointPrediction> points;    // one per peak used for PRMs
  std::vector<Instance> instances;        // masks at the original size (prm at S x S)
  PeakResponse response;                  // CRMs, peaks, PRMs at S x S
  InferDiagnostics diagnostics;           // only with InferOptions::keep_diagnostics
  double seconds_forward_backprop = 0, seconds_proposals = 0, seconds_extraction = 0;
};

// net: a ResNet classifier on the tensors' device (device of `device`).
ImageInference infer_image(Module& net, const Image& image, const std::string& id, Device device,
                           const InferOptions& options);

// The pictures of one result into dir: <id>_instances.png (masks, contours, class names),
// <id>_prm_<k>.png (each PRM as a heat map) and <id>_crm_<class>.png for present classes.
void write_inference_pictures(const std::string& dir, const Image& image,
                              const ImageInference& result,
                              const std::vector<std::string>& class_names);

// One JSON object for the result (class scores, points, instances with their mask files).
std::string inference_json(const ImageInference& result,
                           const std::vector<std::string>& class_names,
                           const std::vector<std::string>& mask_files);

}  // namespace prm
