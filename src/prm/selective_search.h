// Selective search (Uijlings, van de Sande, Gevers, Smeulders, IJCV 2013): segment proposals
// from the hierarchical grouping of Felzenszwalb-Huttenlocher regions.
//
// One *strategy* = (colour space, FH scale k, similarity set). For each strategy the initial FH
// regions are grouped bottom-up: the most similar pair of neighbouring regions is merged, and
// the similarities of the new region to its neighbours are computed, until one region covers
// the image. Every region along the way (the initial ones included) is a proposal. Similarities,
// each in [0, 1], summed over the strategy's set:
//   colour  - intersection of L1-normalised colour histograms (25 bins per channel),
//   texture - intersection of L1-normalised gradient histograms: per channel, Gaussian
//             derivatives (sigma 1) steered to 8 orientations, the positive response of each
//             orientation in 10 bins (scaled by that orientation's maximum in the image),
//   size    - 1 - (|a| + |b|) / |image|  (merges small regions first),
//   fill    - 1 - (|bbox(a u b)| - |a| - |b|) / |image|  (merges regions that fit together).
// Histograms of a merged region are the sums of its children's counts, so they are exact.
//
// Ranking (as the paper): in each strategy the region created last (the whole image) has
// position 1, the one before it 2, and so on; a region's rank value is its position times a
// uniform random number (fixed seed per strategy). The strategies' regions are sorted by this
// value, identical masks (the same pixel set, from any strategy) are kept once, best first.
// The work runs at a reduced resolution (longest side <= max_side); masks are returned at the
// image's resolution, upsampled by nearest neighbour.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "data/image.h"
#include "prm/felzenszwalb.h"
#include "prm/mask.h"

namespace prm {

enum class ColourSpace { kRgb, kHsv, kLab };

// Similarity sets are bit sets of these.
enum Similarity : unsigned {
  kSimColour = 1,
  kSimTexture = 2,
  kSimSize = 4,
  kSimFill = 8,
  kSimAll = 15,
};

struct ProposalOptions {
  int max_proposals = 200;                           // 0: every distinct region
  std::vector<double> scales = {50, 100, 150, 300};  // FH k, at the working resolution
  std::vector<ColourSpace> colour_spaces = {ColourSpace::kHsv, ColourSpace::kLab};
  std::vector<unsigned> similarities = {kSimAll, kSimTexture | kSimSize | kSimFill};
  double sigma = 0.8;  // FH blur
  int min_size = -1;   // FH minimum region size in working pixels; < 0: k (the paper's code)
  int max_side = 224;  // working resolution: the image is shrunk (area average) to fit; 0: off
  double max_overlap = 0.9;  // drop a region whose IoU with a better-ranked one is >= this
  uint64_t seed = 1;
};

// The planar 3 x H x W float image (each channel scaled to 0..255) of an RGB image in a space.
std::vector<float> convert_colour(const Image& image, ColourSpace space);

// One merge of the hierarchy: regions a and b (ids) became region `id`.
struct Merge {
  int a, b;
};

// The grouping of one strategy: regions 0..count-1 are the segmentation's labels, region
// count + i is merges[i]. For each region: size in pixels, bounding box (inclusive) and a
// 64-bit hash of its pixel set (the sum of a per-pixel hash), which identifies equal masks.
struct Hierarchy {
  int leaves = 0;
  std::vector<Merge> merges;
  std::vector<int> size;
  std::vector<int> y0, x0, y1, x1;
  std::vector<uint64_t> hash;
  int regions() const { return static_cast<int>(size.size()); }
};

// Per-region colour (75) and texture (240) histogram counts, size, box and pixel-set hash of
// the regions of a segmentation, computed from a planar colour image (3 x H x W, 0..255).
struct RegionFeatures {
  static constexpr int kColourBins = 75, kTextureBins = 240, kBins = 315;
  int count = 0;
  std::vector<float> histograms;  // count x kBins: colour counts, then texture counts
  std::vector<int> size, y0, x0, y1, x1;
  std::vector<uint64_t> hash;
  std::vector<std::pair<int, int>> neighbours;  // (a, b), a < b, 8-connected, sorted
};

// Per pixel: 3 colour-bin and 24 texture-bin indices into a region's 315 bins.
struct PixelBins {
  int height = 0, width = 0;
  std::vector<uint16_t> bins;  // H * W * 27
};
PixelBins pixel_bins(const std::vector<float>& planes, int H, int W);
RegionFeatures region_features(const Segmentation& seg, const PixelBins& bins);

// Hierarchical grouping of the regions by the similarity set `similarities` (a bit set).
Hierarchy hierarchical_grouping(const RegionFeatures& regions, unsigned similarities);
// The same from a segmentation and the planar colour image it was made from.
Hierarchy hierarchical_grouping(const Segmentation& seg, const std::vector<float>& planes,
                                unsigned similarities);

// The leaves under region `region` of `h`, as a flag per leaf label.
std::vector<uint8_t> region_leaves(const Hierarchy& h, int region);

std::vector<Mask> selective_search(const Image& image, const ProposalOptions& opts = {});

}  // namespace prm
