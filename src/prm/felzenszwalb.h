// Graph-based image segmentation (Felzenszwalb & Huttenlocher, IJCV 2004): the initial regions
// of selective search and the superpixels that the proposal-free mode snaps PRM masks to.
//
// The image is an 8-connected grid graph; an edge's weight is the Euclidean distance between
// the colours of its two pixels after a Gaussian blur (sigma ~0.8, applied by the caller that
// builds the edges). Edges are visited in increasing weight; the components C1, C2 of an edge
// are merged when its weight w <= min(Int(C1) + k/|C1|, Int(C2) + k/|C2|), where Int(C) is the
// largest edge weight inside C (the weight of the last edge that merged into it: edges come
// sorted). A second pass over the same sorted edges merges every component still smaller than
// min_size into a neighbour. Larger k gives larger regions.
#pragma once
#include <cstdint>
#include <vector>

#include "data/image.h"

namespace prm {

// Union-find with path compression (halving) and union by rank, plus the per-component size
// and internal difference Int(C) that the segmentation criterion needs.
class DisjointSet {
 public:
  explicit DisjointSet(int n);
  int find(int x);
  // Joins the components whose roots are a and b (a != b, both roots); returns the new root.
  int join(int a, int b, float internal);
  int size(int root) const { return size_[root]; }
  float internal(int root) const { return internal_[root]; }
  int components() const { return components_; }

 private:
  std::vector<int> parent_, rank_, size_;
  std::vector<float> internal_;
  int components_;
};

struct GridEdge {
  float weight;
  int a, b;  // pixel indices y * W + x
};

// A label per pixel, 0..count-1, numbered in raster order of each region's first pixel.
struct Segmentation {
  int height = 0, width = 0, count = 0;
  std::vector<int32_t> labels;
};

// In-place separable Gaussian blur of a planar float image (C planes of H x W), borders
// replicated; the kernel has radius ceil(4 sigma). sigma <= 0 leaves the image unchanged.
void gaussian_blur(std::vector<float>& planes, int C, int H, int W, double sigma);

// The 8-connected grid edges (right, down, down-right, down-left of each pixel) of a planar
// C x H x W float image, weighted by colour distance, sorted by weight (ties by pixel order,
// so the result is deterministic).
std::vector<GridEdge> grid_edges(const std::vector<float>& planes, int C, int H, int W);

// The FH criterion over edges sorted by grid_edges; the same sorted edges serve every k.
Segmentation segment_graph(const std::vector<GridEdge>& sorted_edges, int H, int W, double k,
                           int min_size);

// The whole method on an RGB image: channels as 0..255 floats, blur, edges, segment_graph.
Segmentation felzenszwalb(const Image& image, double k, double sigma = 0.8, int min_size = 20);

}  // namespace prm
