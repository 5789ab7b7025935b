// Segment proposals for PRM instance extraction (docs/prm.md step 6): where the
// candidate masks come from. Three sources, all giving prm::Mask at the image's resolution:
//   - selective_search (prm/selective_search.h): our own, from the image alone;
//   - masks_from_prm (below): proposal-free, from one peak's response map itself;
//   - load_proposals & co. (prm/proposal_files.h): MCG / COB / any masks from files.
// docs/proposals.md describes the algorithms, their parameters, speed and recall.
#pragma once
#include <vector>

#include "data/image.h"
#include "prm/felzenszwalb.h"
#include "prm/mask.h"
#include "prm/proposal_files.h"
#include "prm/selective_search.h"

namespace prm {

// Proposal-free masks from a PRM (H x W, row-major, non-negative). For each fraction f, the
// pixels with response >= f * max(PRM) after an optional Gaussian smoothing form a binary map;
// its 8-connected components whose own maximum reaches keep_fraction * max are kept (the
// parts that carry the peak's evidence, not stray specks), their holes are filled (background
// components not touching the border), and the union is one mask. With superpixels (refine),
// each mask also yields a snapped version: a superpixel is on when at least snap_fraction of
// its pixels are inside. Order: fractions ascending, each raw mask then its snapped one;
// repeated and empty masks are dropped. An all-zero (or NaN-free but non-positive) PRM gives
// no masks.
struct PrmMaskOptions {
  std::vector<double> fractions = {0.05, 0.1, 0.2, 0.3, 0.5};
  double keep_fraction = 0.5;
  double smooth_sigma = 1.0;  // pixels; 0: none
  bool fill_holes = true;
  bool refine = true;          // snap to FH superpixels when an image (or superpixels) is given
  double snap_fraction = 0.5;  // a superpixel is on when this share of it is inside
  double superpixel_k = 100;   // FH scale of the superpixels made from the image
  int superpixel_min_size = 20;
};

std::vector<Mask> masks_from_prm(const float* prm, int H, int W, const Image* image,
                                 const PrmMaskOptions& opts = {});
// The same with superpixels made once per image and shared by all its peaks (nullptr: none).
std::vector<Mask> masks_from_prm(const float* prm, int H, int W, const Segmentation* superpixels,
                                 const PrmMaskOptions& opts = {});

// Helpers on masks (named for proposals to stay clear of the instance-extraction code).
// Intersection over union; two empty masks give 0. Sizes must agree.
double proposal_iou(const Mask& a, const Mask& b);
// For each object, the best IoU of any proposal (the "best overlap"; its mean is MABO).
std::vector<double> best_overlaps(const std::vector<Mask>& objects,
                                  const std::vector<Mask>& proposals);
// Labels the 8-connected components of the on pixels; returns the number of components and
// writes labels 0..n-1 (-1 for off pixels).
int connected_components(const Mask& mask, std::vector<int>& labels);
// Fills the holes of a mask: off regions (4-connected) that do not touch the border.
Mask fill_holes(const Mask& mask);

}  // namespace prm
