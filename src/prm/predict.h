// Inference over many images (prm/infer.h does one): the prediction pass over a dataset split
// behind `prm eval --weights` (a predictions folder in the format `prm eval --pred` scores,
// docs/evaluation.md), the per-image outputs of `prm infer`, and what `--dump` writes.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "data/coco.h"
#include "data/image.h"
#include "layers/module.h"
#include "prm/infer.h"

namespace prm {

// "12/100 images  3.41 img/s  ETA 0:26", for a progress line.
std::string progress_eta(size_t done, size_t total, double elapsed);

// The images of a split: ImageSets/Main/<split>.txt, then the ids of
// ImageSets/Segmentation/<split>.txt that Main does not list.
std::vector<std::string> split_image_ids(const std::string& voc_root, const std::string& split);

// Inference over ids (images under voc_root/JPEGImages) into the predictions folder pred_dir;
// skip_bad: unreadable images are warned about and left out; dump_dir (or ""): write_diagnostics
// for each image. A progress line on stderr.
void predict_split(const std::string& voc_root, const std::vector<std::string>& ids, Module& net,
                   Device device, const InferOptions& options,
                   const std::vector<std::string>& classes, const std::string& pred_dir,
                   bool skip_bad, const std::string& dump_dir);

// The same over an MS COCO split (images ROOT/<split>/<file_name>, in the annotation file's
// order) into pred_dir's classification.json, points.json and instances.json (data/coco_results.h;
// masks as compressed RLE at the image's size). `classes` must be the dataset's class names, in
// its order (category ids ascending). An image whose size is not the one its annotation file
// gives is refused (skipped with skip_bad): its masks could not be scored.
void predict_coco_split(const std::string& root, const std::string& split,
                        const CocoDataset& dataset, Module& net, Device device,
                        const InferOptions& options, const std::vector<std::string>& classes,
                        const std::string& pred_dir, bool skip_bad, const std::string& dump_dir);

// The images `prm infer --input` names: the file itself, or the folder's .jpg, .jpeg and .png
// files (any case) in name order. prm::Error, before any work, when the folder has none, when two
// of them share a stem (their outputs, named by the stem, would mix), or when `out` is the folder
// itself; a dangling symbolic link or a non-file entry is reported on stderr and left out.
std::vector<std::string> input_images(const std::string& input, const std::string& out);

// `prm infer`'s outputs for one image into `out` (which has a masks/ folder): masks/<id>_<k>.png
// (8-bit grey, 255 inside), <id>.json and the pictures (visualize.h).
void write_image_results(const std::string& out, const Image& image, const ImageInference& r,
                         const std::vector<std::string>& classes);

// What instance extraction saw for one image, at the extraction size E (tools/demo_diagnose.py
// reads it): DIR/<id>_proposals.npy (uint8 [P, E, E]), <id>_prms.npy (float32 [K, E, E]),
// <id>_scores.npy (float64 [K, P], step 6 scores, -1e300 for proposals not considered) and
// <id>.json (peaks with their CRM values, instances with the proposal and peak each chose).
// Needs InferOptions::keep_diagnostics.
void write_diagnostics(const std::string& dir, const ImageInference& r);

}  // namespace prm
