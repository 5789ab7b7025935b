#include "prm/felzenszwalb.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"

namespace prm {

DisjointSet::DisjointSet(int n)
    : parent_(n), rank_(n, 0), size_(n, 1), internal_(n, 0.0f), components_(n) {
  for (int i = 0; i < n; ++i) parent_[i] = i;
}

int DisjointSet::find(int x) {
  while (parent_[x] != x) {
    parent_[x] = parent_[parent_[x]];  // path halving: every other node skips to its grandparent
    x = parent_[x];
  }
  return x;
}

int DisjointSet::join(int a, int b, float internal) {
  if (rank_[a] < rank_[b]) std::swap(a, b);
  parent_[b] = a;
  if (rank_[a] == rank_[b]) ++rank_[a];
  size_[a] += size_[b];
  internal_[a] = internal;
  --components_;
  return a;
}

void gaussian_blur(std::vector<float>& planes, int C, int H, int W, double sigma) {
  if (sigma <= 0) return;
  const int r = static_cast<int>(std::ceil(4 * sigma));
  std::vector<float> kernel(2 * r + 1);
  double sum = 0;
  for (int i = -r; i <= r; ++i) sum += kernel[i + r] = std::exp(-0.5 * i * i / (sigma * sigma));
  for (float& v : kernel) v = static_cast<float>(v / sum);
  std::vector<float> tmp(static_cast<size_t>(H) * W);
  for (int c = 0; c < C; ++c) {
    float* p = planes.data() + static_cast<size_t>(c) * H * W;
    for (int y = 0; y < H; ++y)  // rows
      for (int x = 0; x < W; ++x) {
        float acc = 0;
        for (int i = -r; i <= r; ++i) acc += kernel[i + r] * p[y * W + std::clamp(x + i, 0, W - 1)];
        tmp[y * W + x] = acc;
      }
    for (int y = 0; y < H; ++y)  // columns
      for (int x = 0; x < W; ++x) {
        float acc = 0;
        for (int i = -r; i <= r; ++i)
          acc += kernel[i + r] * tmp[std::clamp(y + i, 0, H - 1) * W + x];
        p[y * W + x] = acc;
      }
  }
}

std::vector<GridEdge> grid_edges(const std::vector<float>& planes, int C, int H, int W) {
  const size_t HW = static_cast<size_t>(H) * W;
  auto dist = [&](int a, int b) {
    float d = 0;
    for (int c = 0; c < C; ++c) {
      const float t = planes[c * HW + a] - planes[c * HW + b];
      d += t * t;
    }
    return std::sqrt(d);
  };
  std::vector<GridEdge> edges;
  edges.reserve(4 * HW);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const int a = y * W + x;
      if (x + 1 < W) edges.push_back({dist(a, a + 1), a, a + 1});
      if (y + 1 < H) edges.push_back({dist(a, a + W), a, a + W});
      if (y + 1 < H && x + 1 < W) edges.push_back({dist(a, a + W + 1), a, a + W + 1});
      if (y + 1 < H && x > 0) edges.push_back({dist(a, a + W - 1), a, a + W - 1});
    }
  // Edges were pushed in pixel order, so a stable sort by weight alone is deterministic.
  std::stable_sort(edges.begin(), edges.end(),
                   [](const GridEdge& e, const GridEdge& f) { return e.weight < f.weight; });
  return edges;
}

Segmentation segment_graph(const std::vector<GridEdge>& sorted_edges, int H, int W, double k,
                           int min_size) {
  PRM_CHECK(H > 0 && W > 0, "felzenszwalb: empty image (", H, "x", W, ")");
  const int N = H * W;
  DisjointSet sets(N);
  for (const GridEdge& e : sorted_edges) {
    const int a = sets.find(e.a), b = sets.find(e.b);
    if (a == b) continue;
    const double ta = sets.internal(a) + k / sets.size(a);
    const double tb = sets.internal(b) + k / sets.size(b);
    if (e.weight <= std::min(ta, tb)) sets.join(a, b, e.weight);
  }
  for (const GridEdge& e : sorted_edges) {  // small components join their closest neighbour
    const int a = sets.find(e.a), b = sets.find(e.b);
    if (a != b && (sets.size(a) < min_size || sets.size(b) < min_size))
      sets.join(a, b, std::max({sets.internal(a), sets.internal(b), e.weight}));
  }
  Segmentation seg;
  seg.height = H;
  seg.width = W;
  seg.labels.assign(N, -1);
  std::vector<int32_t> label_of_root(N, -1);
  for (int i = 0; i < N; ++i) {
    int32_t& l = label_of_root[sets.find(i)];
    if (l < 0) l = seg.count++;
    seg.labels[i] = l;
  }
  return seg;
}

Segmentation felzenszwalb(const Image& image, double k, double sigma, int min_size) {
  PRM_CHECK(image.channels == 3, "felzenszwalb: expected an RGB image, got ", image.channels,
            " channels");
  const int H = image.height, W = image.width;
  const size_t HW = static_cast<size_t>(H) * W;
  std::vector<float> planes(3 * HW);
  for (size_t i = 0; i < HW; ++i)
    for (int c = 0; c < 3; ++c) planes[c * HW + i] = image.pixels[3 * i + c];
  gaussian_blur(planes, 3, H, W, sigma);
  return segment_graph(grid_edges(planes, 3, H, W), H, W, k, min_size);
}

}  // namespace prm
