#include "prm/proposals.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "tensor/error.h"

namespace prm {

namespace {

void check_same_size(const Mask& a, const Mask& b) {
  PRM_CHECK(a.height == b.height && a.width == b.width, "proposal masks differ in size: ", a.height,
            "x", a.width, " vs ", b.height, "x", b.width);
}

// Flood fill over the pixels with the same `on` value as the seed; connectivity 4 or 8.
template <typename Visit>
void flood(const Mask& mask, int seed, int connectivity, std::vector<int>& labels, int label,
           Visit visit) {
  const int H = mask.height, W = mask.width;
  const uint8_t value = mask.data[seed] != 0;
  std::vector<int> stack = {seed};
  labels[seed] = label;
  while (!stack.empty()) {
    const int p = stack.back();
    stack.pop_back();
    visit(p);
    const int y = p / W, x = p % W;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        if ((dy == 0 && dx == 0) || (connectivity == 4 && dy != 0 && dx != 0)) continue;
        const int yy = y + dy, xx = x + dx;
        if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
        const int q = yy * W + xx;
        if (labels[q] != -1 || (mask.data[q] != 0) != value) continue;
        labels[q] = label;
        stack.push_back(q);
      }
  }
}

uint64_t mask_hash(const Mask& m) {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t v : m.data) h = (h ^ (v != 0)) * 1099511628211ull;
  return h;
}

Mask snap_to_superpixels(const Mask& mask, const Segmentation& sp, double fraction) {
  std::vector<int> inside(sp.count, 0), total(sp.count, 0);
  for (size_t p = 0; p < mask.data.size(); ++p) {
    ++total[sp.labels[p]];
    inside[sp.labels[p]] += mask.data[p] != 0;
  }
  Mask out(mask.height, mask.width);
  for (size_t p = 0; p < mask.data.size(); ++p) {
    const int l = sp.labels[p];
    out.data[p] = inside[l] >= fraction * total[l] && inside[l] > 0;
  }
  return out;
}

}  // namespace

double proposal_iou(const Mask& a, const Mask& b) {
  check_same_size(a, b);
  int64_t inter = 0, uni = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    const bool x = a.data[i] != 0, y = b.data[i] != 0;
    inter += x && y;
    uni += x || y;
  }
  return uni > 0 ? static_cast<double>(inter) / uni : 0.0;
}

std::vector<double> best_overlaps(const std::vector<Mask>& objects,
                                  const std::vector<Mask>& proposals) {
  std::vector<double> best(objects.size(), 0.0);
  for (size_t o = 0; o < objects.size(); ++o)
    for (const Mask& p : proposals) best[o] = std::max(best[o], proposal_iou(objects[o], p));
  return best;
}

int connected_components(const Mask& mask, std::vector<int>& labels) {
  labels.assign(mask.data.size(), -1);
  int n = 0;
  for (size_t p = 0; p < mask.data.size(); ++p)
    if (mask.data[p] && labels[p] < 0) flood(mask, static_cast<int>(p), 8, labels, n++, [](int) {});
  return n;
}

Mask fill_holes(const Mask& mask) {
  const int H = mask.height, W = mask.width;
  Mask out = mask;
  std::vector<int> labels(mask.data.size(), -1);
  int n = 0;
  for (int p = 0; p < H * W; ++p) {
    if (mask.data[p] || labels[p] >= 0) continue;
    std::vector<int> pixels;
    bool border = false;
    flood(mask, p, 4, labels, n++, [&](int q) {
      pixels.push_back(q);
      const int y = q / W, x = q % W;
      border = border || y == 0 || x == 0 || y == H - 1 || x == W - 1;
    });
    if (!border)
      for (int q : pixels) out.data[q] = 1;
  }
  return out;
}

std::vector<Mask> masks_from_prm(const float* prm, int H, int W, const Segmentation* superpixels,
                                 const PrmMaskOptions& opts) {
  PRM_CHECK(H > 0 && W > 0, "masks_from_prm: empty PRM (", H, "x", W, ")");
  PRM_CHECK(!superpixels || (superpixels->height == H && superpixels->width == W),
            "masks_from_prm: superpixels are ", superpixels ? superpixels->height : 0, "x",
            superpixels ? superpixels->width : 0, ", the PRM is ", H, "x", W);
  const size_t HW = static_cast<size_t>(H) * W;
  std::vector<float> response(prm, prm + HW);
  for (float& v : response) v = std::isfinite(v) && v > 0 ? v : 0.0f;  // NaN/negative: no evidence
  gaussian_blur(response, 1, H, W, opts.smooth_sigma);
  const float peak = *std::max_element(response.begin(), response.end());
  std::vector<Mask> out;
  if (!(peak > 0)) return out;
  std::unordered_set<uint64_t> seen;
  auto add = [&](Mask m) {
    if (m.area() > 0 && seen.insert(mask_hash(m)).second) out.push_back(std::move(m));
  };
  std::vector<double> fractions = opts.fractions;
  std::sort(fractions.begin(), fractions.end());
  std::vector<int> labels;
  for (double f : fractions) {
    Mask on(H, W);
    for (size_t p = 0; p < HW; ++p) on.data[p] = response[p] >= f * peak;
    const int n = connected_components(on, labels);
    std::vector<float> component_max(n, 0.0f);
    for (size_t p = 0; p < HW; ++p)
      if (labels[p] >= 0)
        component_max[labels[p]] = std::max(component_max[labels[p]], response[p]);
    Mask kept(H, W);
    for (size_t p = 0; p < HW; ++p)
      kept.data[p] = labels[p] >= 0 && component_max[labels[p]] >= opts.keep_fraction * peak;
    if (opts.fill_holes) kept = fill_holes(kept);
    Mask snapped;
    if (opts.refine && superpixels)
      snapped = snap_to_superpixels(kept, *superpixels, opts.snap_fraction);
    add(std::move(kept));
    if (snapped.height > 0) add(std::move(snapped));
  }
  return out;
}

std::vector<Mask> masks_from_prm(const float* prm, int H, int W, const Image* image,
                                 const PrmMaskOptions& opts) {
  if (!image || !opts.refine)
    return masks_from_prm(prm, H, W, static_cast<const Segmentation*>(nullptr), opts);
  PRM_CHECK(image->height == H && image->width == W, "masks_from_prm: the image is ", image->height,
            "x", image->width, ", the PRM is ", H, "x", W);
  const Segmentation sp = felzenszwalb(*image, opts.superpixel_k, 0.8, opts.superpixel_min_size);
  return masks_from_prm(prm, H, W, &sp, opts);
}

}  // namespace prm
