// `prm synth --format coco`: the drawings of data/synth.h written in the MS COCO layout, so that
// tests, CI and demos run the whole COCO path with no download (docs/coco.md, "Layout and
// training"):
//   ROOT/annotations/instances_<split>.json   (info, licenses, images, annotations, categories)
//   ROOT/<split>/<file_name>                   JPEG, file_name "COCO_<split>_<12-digit id>.jpg"
// for the two splits (train and val by default). Image number i of the set (train first, then
// val) is synth_image(options, i) and has id i + 1. What it holds, as real COCO does:
// - categories: the first K of COCO's own (ids with COCO's gaps, names with spaces: "traffic
//   light"), listed in the file in descending id order, so that readers must sort them;
// - one annotation per visible object: its visible mask outlined by polygons (several parts when
//   occlusion or the border splits it, float vertices; data/polygon_trace.h), with `area` the
//   area of the mask those polygons rasterise to (pycocotools' rule, data/coco_mask.h) and `bbox`
//   its box, so that segmentation, area and bbox agree exactly; about one object in ten
//   (chosen by a hash of seed, image and object) is a crowd region instead: iscrowd 1 and the
//   exact mask as an uncompressed RLE (`counts` list);
// - images without annotations: in every split of at least 2 images, the split's images number
//   j with j % 16 == seed % min(n, 16) (n the split's size) show the background alone.
// Annotation ids run from 1 over the whole set; both files are written atomically.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/coco.h"
#include "data/synth.h"

namespace prm {

struct SynthCocoSplits {
  std::string train = "train", val = "val";
};

struct SynthCocoSummary {
  int64_t images = 0, annotations = 0, crowd = 0, polygon_parts = 0, empty_images = 0;
};

// The COCO categories class c of the drawings stands for (c < synth's 20 classes).
const std::vector<CocoCategory>& synth_coco_categories();

// Whether image j of a split of n images shows the background alone.
bool synth_coco_background_only(int j, int n, uint64_t seed);

// Writes the dataset under options.out.
SynthCocoSummary synthesize_coco(const SynthOptions& options, const SynthCocoSplits& splits = {});

}  // namespace prm
