#include "prm/selective_search.h"

#include <algorithm>
#include <cmath>
#include <queue>
#include <unordered_set>

#include "tensor/error.h"

namespace prm {

namespace {

constexpr int kOrientations = 8, kTextureLevels = 10, kColourLevels = 25;
constexpr int kBinsPerPixel = 3 + 3 * kOrientations;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

float clamp255(double v) { return static_cast<float>(v < 0 ? 0 : v > 255 ? 255 : v); }

void rgb_to_hsv(double r, double g, double b, double out[3]) {
  const double mx = std::max({r, g, b}), mn = std::min({r, g, b}), d = mx - mn;
  double h = 0;
  if (d > 0) {
    if (mx == r)
      h = std::fmod((g - b) / d + 6.0, 6.0);
    else if (mx == g)
      h = (b - r) / d + 2.0;
    else
      h = (r - g) / d + 4.0;
  }
  out[0] = h / 6.0 * 255.0;
  out[1] = mx > 0 ? d / mx * 255.0 : 0.0;
  out[2] = mx * 255.0;
}

// sRGB (D65) -> CIE Lab, then L * 2.55 and a, b + 128 so each channel spans about 0..255.
void rgb_to_lab(double r, double g, double b, double out[3]) {
  auto linear = [](double c) {
    return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
  };
  const double R = linear(r), G = linear(g), B = linear(b);
  const double X = (0.4124 * R + 0.3576 * G + 0.1805 * B) / 0.95047;
  const double Y = 0.2126 * R + 0.7152 * G + 0.0722 * B;
  const double Z = (0.0193 * R + 0.1192 * G + 0.9505 * B) / 1.08883;
  auto f = [](double t) { return t > 0.008856 ? std::cbrt(t) : 7.787 * t + 16.0 / 116.0; };
  const double fx = f(X), fy = f(Y), fz = f(Z);
  out[0] = (116.0 * fy - 16.0) * 2.55;
  out[1] = 500.0 * (fx - fy) + 128.0;
  out[2] = 200.0 * (fy - fz) + 128.0;
}

// Shrinks an RGB image by area averaging so that its longest side is at most max_side. Source
// pixel (y, x) falls in working pixel (y * h / H, x * w / W): the same map upsamples masks back.
Image shrink(const Image& image, int max_side) {
  const int H = image.height, W = image.width;
  if (max_side <= 0 || std::max(H, W) <= max_side) return image;
  const double s = static_cast<double>(max_side) / std::max(H, W);
  Image out;
  out.height = std::max(1, static_cast<int>(std::lround(H * s)));
  out.width = std::max(1, static_cast<int>(std::lround(W * s)));
  out.channels = 3;
  const int h = out.height, w = out.width;
  std::vector<uint32_t> sum(static_cast<size_t>(h) * w * 3, 0), n(static_cast<size_t>(h) * w, 0);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const size_t t = static_cast<size_t>(y * static_cast<int64_t>(h) / H) * w +
                       static_cast<size_t>(x * static_cast<int64_t>(w) / W);
      const uint8_t* p = image.at(y, x);
      for (int c = 0; c < 3; ++c) sum[3 * t + c] += p[c];
      ++n[t];
    }
  out.pixels.resize(sum.size());
  for (size_t t = 0; t < n.size(); ++t)
    for (int c = 0; c < 3; ++c)
      out.pixels[3 * t + c] = static_cast<uint8_t>((sum[3 * t + c] + n[t] / 2) / n[t]);
  return out;
}

// Gaussian-derivative responses of one plane (blurred with sigma 1, then central differences),
// steered to 8 orientations, positive part, in 10 levels of that orientation's maximum.
void texture_bins(const float* plane, int channel, int H, int W, std::vector<uint16_t>& bins) {
  const size_t HW = static_cast<size_t>(H) * W;
  std::vector<float> smooth(plane, plane + HW);
  gaussian_blur(smooth, 1, H, W, 1.0);
  std::vector<float> gx(HW), gy(HW);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const size_t i = static_cast<size_t>(y) * W + x;
      gx[i] = 0.5f * (smooth[y * W + std::min(x + 1, W - 1)] - smooth[y * W + std::max(x - 1, 0)]);
      gy[i] = 0.5f * (smooth[std::min(y + 1, H - 1) * W + x] - smooth[std::max(y - 1, 0) * W + x]);
    }
  for (int o = 0; o < kOrientations; ++o) {
    const double theta = o * 3.14159265358979323846 / 4;
    const float c = static_cast<float>(std::cos(theta)), s = static_cast<float>(std::sin(theta));
    float mx = 0;
    for (size_t i = 0; i < HW; ++i) mx = std::max(mx, c * gx[i] + s * gy[i]);
    const int base = RegionFeatures::kColourBins + (channel * kOrientations + o) * kTextureLevels;
    for (size_t i = 0; i < HW; ++i) {
      const float r = std::max(0.0f, c * gx[i] + s * gy[i]);
      const int level = mx > 0 ? std::min(kTextureLevels - 1, static_cast<int>(r / mx * 10)) : 0;
      bins[i * kBinsPerPixel + 3 + channel * kOrientations + o] =
          static_cast<uint16_t>(base + level);
    }
  }
}

// The pixels of a hierarchy region as a bit set over the working image.
std::vector<uint64_t> region_bits(const Hierarchy& h, const Segmentation& seg, int region) {
  const std::vector<uint8_t> inside = region_leaves(h, region);
  std::vector<uint64_t> bits((seg.labels.size() + 63) / 64, 0);
  for (size_t p = 0; p < seg.labels.size(); ++p)
    if (inside[seg.labels[p]]) bits[p / 64] |= uint64_t(1) << (p % 64);
  return bits;
}

struct Candidate {
  float similarity;
  int a, b;
  bool operator<(const Candidate& o) const {  // priority_queue pops the largest
    if (similarity != o.similarity) return similarity < o.similarity;
    if (a != o.a) return a > o.a;
    return b > o.b;
  }
};

}  // namespace

std::vector<float> convert_colour(const Image& image, ColourSpace space) {
  PRM_CHECK(image.channels == 3, "selective search: expected an RGB image, got ", image.channels,
            " channels");
  const size_t HW = static_cast<size_t>(image.height) * image.width;
  std::vector<float> planes(3 * HW);
  for (size_t i = 0; i < HW; ++i) {
    const uint8_t* p = &image.pixels[3 * i];
    double v[3] = {static_cast<double>(p[0]), static_cast<double>(p[1]), static_cast<double>(p[2])};
    if (space == ColourSpace::kHsv) rgb_to_hsv(p[0] / 255.0, p[1] / 255.0, p[2] / 255.0, v);
    if (space == ColourSpace::kLab) rgb_to_lab(p[0] / 255.0, p[1] / 255.0, p[2] / 255.0, v);
    for (int c = 0; c < 3; ++c) planes[c * HW + i] = clamp255(v[c]);
  }
  return planes;
}

PixelBins pixel_bins(const std::vector<float>& planes, int H, int W) {
  const size_t HW = static_cast<size_t>(H) * W;
  PRM_CHECK(planes.size() == 3 * HW, "selective search: colour planes of the wrong size");
  PixelBins out;
  out.height = H;
  out.width = W;
  out.bins.resize(HW * kBinsPerPixel);
  for (int c = 0; c < 3; ++c) {
    for (size_t i = 0; i < HW; ++i) {
      const int level =
          std::min(kColourLevels - 1, static_cast<int>(planes[c * HW + i] * kColourLevels / 256));
      out.bins[i * kBinsPerPixel + c] = static_cast<uint16_t>(c * kColourLevels + level);
    }
    texture_bins(planes.data() + c * HW, c, H, W, out.bins);
  }
  return out;
}

RegionFeatures region_features(const Segmentation& seg, const PixelBins& bins) {
  PRM_CHECK(seg.height == bins.height && seg.width == bins.width,
            "selective search: segmentation and pixel bins differ in size");
  const int H = seg.height, W = seg.width, R = seg.count;
  RegionFeatures f;
  f.count = R;
  f.histograms.assign(static_cast<size_t>(R) * RegionFeatures::kBins, 0.0f);
  f.size.assign(R, 0);
  f.y0.assign(R, H);
  f.x0.assign(R, W);
  f.y1.assign(R, -1);
  f.x1.assign(R, -1);
  f.hash.assign(R, 0);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const size_t i = static_cast<size_t>(y) * W + x;
      const int l = seg.labels[i];
      float* hist = &f.histograms[static_cast<size_t>(l) * RegionFeatures::kBins];
      for (int k = 0; k < kBinsPerPixel; ++k) hist[bins.bins[i * kBinsPerPixel + k]] += 1.0f;
      ++f.size[l];
      f.y0[l] = std::min(f.y0[l], y);
      f.x0[l] = std::min(f.x0[l], x);
      f.y1[l] = std::max(f.y1[l], y);
      f.x1[l] = std::max(f.x1[l], x);
      f.hash[l] += splitmix64(i);
      const int dx[4] = {1, 0, 1, -1}, dy[4] = {0, 1, 1, 1};
      for (int d = 0; d < 4; ++d) {
        const int yy = y + dy[d], xx = x + dx[d];
        if (yy >= H || xx < 0 || xx >= W) continue;
        const int m = seg.labels[static_cast<size_t>(yy) * W + xx];
        if (m != l) f.neighbours.emplace_back(std::min(l, m), std::max(l, m));
      }
    }
  std::sort(f.neighbours.begin(), f.neighbours.end());
  f.neighbours.erase(std::unique(f.neighbours.begin(), f.neighbours.end()), f.neighbours.end());
  return f;
}

Hierarchy hierarchical_grouping(const RegionFeatures& regions, unsigned similarities) {
  constexpr int B = RegionFeatures::kBins, CB = RegionFeatures::kColourBins;
  const int R = regions.count, total = std::max(0, 2 * R - 1);
  Hierarchy h;
  h.leaves = R;
  h.size = regions.size;
  h.y0 = regions.y0;
  h.x0 = regions.x0;
  h.y1 = regions.y1;
  h.x1 = regions.x1;
  h.hash = regions.hash;
  std::vector<float> hist(static_cast<size_t>(total) * B);
  std::copy(regions.histograms.begin(), regions.histograms.end(), hist.begin());
  double image_size = 0;
  for (int s : regions.size) image_size += s;

  auto similarity = [&](int a, int b) {
    double sim = 0;
    const float* ha = &hist[static_cast<size_t>(a) * B];
    const float* hb = &hist[static_cast<size_t>(b) * B];
    const float sa = static_cast<float>(h.size[a]), sb = static_cast<float>(h.size[b]);
    if (similarities & kSimColour) {  // each pixel counts once per channel: 3 * size in all
      float s = 0;
      for (int k = 0; k < CB; ++k) s += std::min(ha[k] * sb, hb[k] * sa);
      sim += s / (3.0 * sa * sb);
    }
    if (similarities & kSimTexture) {  // 24 counts per pixel
      float s = 0;
      for (int k = CB; k < B; ++k) s += std::min(ha[k] * sb, hb[k] * sa);
      sim += s / (24.0 * sa * sb);
    }
    if (similarities & kSimSize) sim += 1.0 - (sa + sb) / image_size;
    if (similarities & kSimFill) {
      const double box = (std::max(h.y1[a], h.y1[b]) - std::min(h.y0[a], h.y0[b]) + 1.0) *
                         (std::max(h.x1[a], h.x1[b]) - std::min(h.x0[a], h.x0[b]) + 1.0);
      sim += 1.0 - (box - sa - sb) / image_size;
    }
    return static_cast<float>(sim);
  };

  std::vector<std::vector<int>> nb(total);
  std::priority_queue<Candidate> queue;
  for (const auto& [a, b] : regions.neighbours) {
    nb[a].push_back(b);
    nb[b].push_back(a);
    queue.push({similarity(a, b), a, b});
  }
  std::vector<uint8_t> alive(total, 0);
  std::fill(alive.begin(), alive.begin() + R, 1);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const int a = top.a, b = top.b;
    if (!alive[a] || !alive[b]) continue;
    const int t = h.regions();
    h.merges.push_back({a, b});
    h.size.push_back(h.size[a] + h.size[b]);
    h.y0.push_back(std::min(h.y0[a], h.y0[b]));
    h.x0.push_back(std::min(h.x0[a], h.x0[b]));
    h.y1.push_back(std::max(h.y1[a], h.y1[b]));
    h.x1.push_back(std::max(h.x1[a], h.x1[b]));
    h.hash.push_back(h.hash[a] + h.hash[b]);
    float* ht = &hist[static_cast<size_t>(t) * B];
    const float* ha = &hist[static_cast<size_t>(a) * B];
    const float* hb = &hist[static_cast<size_t>(b) * B];
    for (int k = 0; k < B; ++k) ht[k] = ha[k] + hb[k];
    alive[a] = alive[b] = 0;
    alive[t] = 1;
    std::vector<int>& nt = nb[t];
    nt.reserve(nb[a].size() + nb[b].size());
    for (int n : nb[a])
      if (n != b) nt.push_back(n);
    for (int n : nb[b])
      if (n != a) nt.push_back(n);
    std::sort(nt.begin(), nt.end());
    nt.erase(std::unique(nt.begin(), nt.end()), nt.end());
    for (int n : nt) {  // n's neighbour list: a and b become t
      std::vector<int>& nn = nb[n];
      nn.erase(std::remove_if(nn.begin(), nn.end(), [&](int m) { return m == a || m == b; }),
               nn.end());
      nn.push_back(t);
      queue.push({similarity(n, t), n, t});
    }
    std::vector<int>().swap(nb[a]);
    std::vector<int>().swap(nb[b]);
  }
  return h;
}

Hierarchy hierarchical_grouping(const Segmentation& seg, const std::vector<float>& planes,
                                unsigned similarities) {
  return hierarchical_grouping(region_features(seg, pixel_bins(planes, seg.height, seg.width)),
                               similarities);
}

std::vector<uint8_t> region_leaves(const Hierarchy& h, int region) {
  PRM_CHECK(region >= 0 && region < h.regions(), "region_leaves: region ", region,
            " out of range (", h.regions(), " regions)");
  std::vector<uint8_t> flags(h.leaves, 0);
  std::vector<int> stack = {region};
  while (!stack.empty()) {
    const int r = stack.back();
    stack.pop_back();
    if (r < h.leaves) {
      flags[r] = 1;
    } else {
      stack.push_back(h.merges[r - h.leaves].a);
      stack.push_back(h.merges[r - h.leaves].b);
    }
  }
  return flags;
}

std::vector<Mask> selective_search(const Image& image, const ProposalOptions& opts) {
  PRM_CHECK(image.channels == 3 && image.height > 0 && image.width > 0,
            "selective search: expected a non-empty RGB image, got ", image.height, "x",
            image.width, "x", image.channels);
  PRM_CHECK(!opts.scales.empty() && !opts.colour_spaces.empty() && !opts.similarities.empty(),
            "selective search: scales, colour spaces and similarity sets must not be empty");
  for (unsigned s : opts.similarities)
    PRM_CHECK(s != 0 && (s & ~unsigned(kSimAll)) == 0, "selective search: bad similarity set ", s);
  const Image work = shrink(image, opts.max_side);
  const int h = work.height, w = work.width;
  const int NC = static_cast<int>(opts.colour_spaces.size());
  const int NK = static_cast<int>(opts.scales.size());
  const int NS = static_cast<int>(opts.similarities.size());

  std::vector<PixelBins> bins(NC);
  std::vector<std::vector<GridEdge>> edges(NC);
#pragma omp parallel for schedule(dynamic)
  for (int c = 0; c < NC; ++c) {
    std::vector<float> planes = convert_colour(work, opts.colour_spaces[c]);
    bins[c] = pixel_bins(planes, h, w);
    gaussian_blur(planes, 3, h, w, opts.sigma);
    edges[c] = grid_edges(planes, 3, h, w);
  }
  std::vector<Segmentation> segs(NC * NK);
  std::vector<RegionFeatures> features(NC * NK);
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < NC * NK; ++i) {
    const double k = opts.scales[i % NK];
    const int min_size = opts.min_size >= 0 ? opts.min_size : static_cast<int>(k);
    segs[i] = segment_graph(edges[i / NK], h, w, k, min_size);
    features[i] = region_features(segs[i], bins[i / NK]);
  }
  const int strategies = NC * NK * NS;
  std::vector<Hierarchy> hierarchies(strategies);
#pragma omp parallel for schedule(dynamic)
  for (int s = 0; s < strategies; ++s)
    hierarchies[s] = hierarchical_grouping(features[s / NS], opts.similarities[s % NS]);

  // Rank: position in the hierarchy (1 = the last region created) times a uniform random number.
  struct Ranked {
    double value;
    int strategy, region;
  };
  std::vector<Ranked> ranked;
  for (int s = 0; s < strategies; ++s) {
    uint64_t state = splitmix64(opts.seed * 0x100000001B3ull + static_cast<uint64_t>(s));
    const int n = hierarchies[s].regions();
    for (int r = 0; r < n; ++r) {
      state = splitmix64(state);
      const double u = static_cast<double>(state >> 11) * (1.0 / 9007199254740992.0);
      ranked.push_back({(n - r) * u, s, r});
    }
  }
  std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    if (a.value != b.value) return a.value < b.value;
    if (a.strategy != b.strategy) return a.strategy < b.strategy;
    return a.region < b.region;
  });
  // Identical masks (equal hashes) are kept once. With max_overlap < 1, near-identical ones are
  // demoted: a region whose IoU with a better-ranked kept one reaches max_overlap goes to the end
  // of the list (in rank order), so the top of the list is diverse and, where the image has
  // too few distinct regions, the count is still filled. The IoU is computed on
  // working-resolution bit sets, only for pairs whose sizes allow it.
  const size_t limit = opts.max_proposals > 0 ? opts.max_proposals : ranked.size();
  std::vector<Ranked> chosen, demoted;
  std::vector<std::vector<uint64_t>> kept_bits;
  std::vector<int> kept_size;
  std::unordered_set<uint64_t> seen;
  const size_t words = (static_cast<size_t>(h) * w + 63) / 64;
  for (const Ranked& r : ranked) {
    if (chosen.size() >= limit) break;
    const Hierarchy& hier = hierarchies[r.strategy];
    if (!seen.insert(hier.hash[r.region]).second) continue;
    if (opts.max_overlap < 1) {
      const double size = hier.size[r.region];
      std::vector<uint64_t> bits;
      bool duplicate = false;
      for (size_t k = 0; k < kept_bits.size() && !duplicate; ++k) {
        // IoU <= min(|a|, |b|) / max(|a|, |b|): skip pairs that cannot reach the threshold.
        const double other = kept_size[k];
        if (std::min(size, other) < opts.max_overlap * std::max(size, other)) continue;
        if (bits.empty()) bits = region_bits(hier, segs[r.strategy / NS], r.region);
        int64_t inter = 0;
        for (size_t i = 0; i < words; ++i) inter += __builtin_popcountll(bits[i] & kept_bits[k][i]);
        duplicate = inter >= opts.max_overlap * (size + other - inter);
      }
      if (duplicate) {
        demoted.push_back(r);
        continue;
      }
      if (bits.empty()) bits = region_bits(hier, segs[r.strategy / NS], r.region);
      kept_bits.push_back(std::move(bits));
      kept_size.push_back(hier.size[r.region]);
    }
    chosen.push_back(r);
  }
  for (size_t i = 0; i < demoted.size() && chosen.size() < limit; ++i) chosen.push_back(demoted[i]);

  // Masks at the image's resolution: source pixel -> working pixel -> leaf -> in the region?
  const int H = image.height, W = image.width;
  std::vector<int> map(static_cast<size_t>(H) * W);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x)
      map[static_cast<size_t>(y) * W + x] = static_cast<int>(y * static_cast<int64_t>(h) / H) * w +
                                            static_cast<int>(x * static_cast<int64_t>(w) / W);
  std::vector<Mask> masks(chosen.size());
#pragma omp parallel for schedule(dynamic)
  for (size_t i = 0; i < chosen.size(); ++i) {
    const Hierarchy& hier = hierarchies[chosen[i].strategy];
    const std::vector<int32_t>& labels = segs[chosen[i].strategy / NS].labels;
    const std::vector<uint8_t> inside = region_leaves(hier, chosen[i].region);
    Mask m(H, W);
    for (size_t p = 0; p < m.data.size(); ++p) m.data[p] = inside[labels[map[p]]];
    masks[i] = std::move(m);
  }
  return masks;
}

}  // namespace prm
