// Pins of issue 20 for segment proposals (docs/proposals.md):
//   - Felzenszwalb's 8-connected grid edges against a naive enumeration of every pixel pair, the
//     image borders and 1-pixel-wide images included, and their tie order;
//   - the colour spaces of selective search (HSV hue around red, where it wraps from 360 to 0;
//     greys and black, whose hue is undefined; Lab against an independent CIE formula);
//   - selective search's ranking, recomputed independently from the documented rule;
//   - proposal folders read in file-name order whatever the order of creation;
//   - .npy proposal files of format versions 2.0 (4-byte header length) and 3.0.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "data/image.h"
#include "data/synth.h"
#include "helpers.h"
#include "references.h"
#include "prm/proposals.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) { return fresh_temp_dir("pins_" + name).string(); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Felzenszwalb's grid edges

TEST_CASE("felzenszwalb: grid edges are every 8-neighbour pair once, borders included, in order") {
  // Planes with small integer values, so that many weights tie exactly (a sum of integer squares
  // is exact in float, and so is its square root's rounding, the same for equal sums). Naive
  // reference: every pair of pixels p < q (raster index) at Chebyshev distance 1, weight the
  // Euclidean colour distance; sorted by weight, ties by p, then by the documented direction
  // order right, down, down-right, down-left.
  std::mt19937 rng(17);
  for (auto [H, W] : {std::pair<int, int>{4, 5}, {5, 4}, {1, 6}, {6, 1}, {2, 2}, {1, 1}, {3, 7}}) {
    CAPTURE(H);
    CAPTURE(W);
    const int C = 3, N = H * W;
    std::vector<float> planes(static_cast<size_t>(C) * N);
    for (float& v : planes) v = static_cast<float>(rng() % 3);
    struct Naive {
      int sq, a, dir, b;
    };
    std::vector<Naive> naive;
    for (int p = 0; p < N; ++p)
      for (int q = p + 1; q < N; ++q) {
        const int py = p / W, px = p % W, qy = q / W, qx = q % W;
        if (std::abs(py - qy) > 1 || std::abs(px - qx) > 1) continue;
        int sq = 0;
        for (int c = 0; c < C; ++c) {
          const int d = static_cast<int>(planes[c * N + p] - planes[c * N + q]);
          sq += d * d;
        }
        // q > p, so q is right (0), down (1), down-right (2) or down-left (3) of p.
        const int dir = qy == py ? 0 : qx == px ? 1 : qx > px ? 2 : 3;
        naive.push_back({sq, p, dir, q});
      }
    // A grid of H x W has H(W-1) + (H-1)W + 2(H-1)(W-1) such pairs.
    REQUIRE(naive.size() ==
            static_cast<size_t>(H * (W - 1) + (H - 1) * W + 2 * (H - 1) * (W - 1)));
    std::sort(naive.begin(), naive.end(), [](const Naive& x, const Naive& y) {
      return std::tie(x.sq, x.a, x.dir) < std::tie(y.sq, y.a, y.dir);
    });
    const std::vector<prm::GridEdge> edges = prm::grid_edges(planes, C, H, W);
    REQUIRE(edges.size() == naive.size());
    for (size_t i = 0; i < edges.size(); ++i) {
      CAPTURE(i);
      CHECK(edges[i].a == naive[i].a);
      CHECK(edges[i].b == naive[i].b);
      CHECK(edges[i].weight == doctest::Approx(std::sqrt(static_cast<double>(naive[i].sq))));
    }
  }
}

TEST_CASE("felzenszwalb: grid edge weights are colour distances over all channels") {
  // Real-valued planes, C = 1 and C = 3: each edge's weight against the naive distance.
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.0f, 255.0f);
  for (int C : {1, 3}) {
    const int H = 3, W = 4, N = H * W;
    std::vector<float> planes(static_cast<size_t>(C) * N);
    for (float& v : planes) v = u(rng);
    const std::vector<prm::GridEdge> edges = prm::grid_edges(planes, C, H, W);
    REQUIRE(edges.size() == static_cast<size_t>(3 * 3 + 2 * 4 + 2 * 2 * 3));
    for (size_t i = 0; i < edges.size(); ++i) {
      const prm::GridEdge& e = edges[i];
      REQUIRE(std::abs(e.a / W - e.b / W) <= 1);
      REQUIRE(std::abs(e.a % W - e.b % W) <= 1);
      double sq = 0;
      for (int c = 0; c < C; ++c) {
        const double d = static_cast<double>(planes[c * N + e.a]) - planes[c * N + e.b];
        sq += d * d;
      }
      CHECK(e.weight == doctest::Approx(std::sqrt(sq)).epsilon(1e-5));
      if (i > 0) CHECK(edges[i - 1].weight <= e.weight);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Colour spaces

namespace {

// HSV hue in degrees, written sector by sector of the colour hexagon (which channel is the
// largest and which the smallest), not with the code's modulo formula. Undefined (grey): 0.
double hue_degrees(double r, double g, double b) {
  const double mx = std::max({r, g, b}), mn = std::min({r, g, b}), d = mx - mn;
  if (d == 0) return 0;
  if (mx == r && mn == b) return 60 * (g - b) / d;           // red -> yellow,   [0, 60]
  if (mx == g && mn == b) return 60 * (2 - (r - b) / d);     // yellow -> green, [60, 120]
  if (mx == g && mn == r) return 60 * (2 + (b - r) / d);     // green -> cyan,   [120, 180]
  if (mx == b && mn == r) return 60 * (4 - (g - r) / d);     // cyan -> blue,    [180, 240]
  if (mx == b && mn == g) return 60 * (4 + (r - g) / d);     // blue -> magenta, [240, 300]
  return 60 * (6 - (b - g) / d);                             // magenta -> red,  [300, 360)
}

// CIE L*a*b* (D65) of an sRGB colour with the full-precision sRGB matrix and the exact CIE
// constants (epsilon 216/24389, kappa 24389/27); the code's rounded constants agree to < 0.02.
void reference_lab(double r8, double g8, double b8, double out[3]) {
  auto lin = [](double c) {
    c /= 255.0;
    return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
  };
  const double R = lin(r8), G = lin(g8), B = lin(b8);
  const double X = (0.4124564 * R + 0.3575761 * G + 0.1804375 * B) / 0.95047;
  const double Y = 0.2126729 * R + 0.7151522 * G + 0.0721750 * B;
  const double Z = (0.0193339 * R + 0.1191920 * G + 0.9503041 * B) / 1.08883;
  auto f = [](double t) {
    return t > 216.0 / 24389.0 ? std::cbrt(t) : (24389.0 / 27.0 * t + 16.0) / 116.0;
  };
  out[0] = 116 * f(Y) - 16;
  out[1] = 500 * (f(X) - f(Y));
  out[2] = 200 * (f(Y) - f(Z));
}

// Colours worth checking: hues on both sides of red's wrap-around, every hexagon sector and its
// edges, greys (undefined hue), black and white, and a few ordinary ones.
const std::vector<std::array<int, 3>> kColours = {
    {255, 0, 0},     {255, 0, 1},     {255, 1, 0},     {254, 0, 255},   {255, 0, 254},
    {200, 10, 100},  {200, 100, 10},  {255, 255, 0},   {0, 255, 0},     {0, 255, 255},
    {0, 0, 255},     {255, 0, 255},   {10, 200, 100},  {100, 10, 200},  {0, 0, 0},
    {128, 128, 128}, {255, 255, 255}, {1, 1, 1},       {10, 10, 10},    {200, 120, 40},
    {30, 60, 200},   {128, 0, 0},     {128, 127, 127}, {127, 128, 128}, {77, 200, 3}};

prm::Image colour_row() {
  prm::Image im = black_rgb(1, static_cast<int>(kColours.size()));
  for (size_t i = 0; i < kColours.size(); ++i)
    for (int c = 0; c < 3; ++c) im.pixels[3 * i + c] = static_cast<uint8_t>(kColours[i][c]);
  return im;
}

}  // namespace

TEST_CASE("selective search: HSV hue wraps around at red; greys have hue 0 and saturation 0") {
  // Hand values (channels scaled to 0..255: H = degrees / 360 * 255):
  //   (255, 0, 0): 0 degrees -> 0;  (255, 1, 0): 60 * 1/255 = 0.2353 degrees -> 0.16667;
  //   (255, 0, 1): 360 - 0.2353 = 359.7647 degrees -> 254.8333 (not 0: the hue wraps, it is
  //   not clamped); (255, 0, 255): 300 degrees -> 212.5; (128, 128, 128): hue 0, S 0, V 128;
  //   black: H = S = V = 0 (S = d / max is undefined there).
  const prm::Image im = colour_row();
  const size_t N = kColours.size();
  const std::vector<float> hsv = prm::convert_colour(im, prm::ColourSpace::kHsv);
  REQUIRE(hsv.size() == 3 * N);
  auto H = [&](size_t i) { return hsv[i]; };
  auto S = [&](size_t i) { return hsv[N + i]; };
  auto V = [&](size_t i) { return hsv[2 * N + i]; };
  CHECK(H(0) == doctest::Approx(0.0));
  CHECK(H(1) == doctest::Approx(254.83333).epsilon(1e-6));
  CHECK(H(2) == doctest::Approx(0.166667).epsilon(1e-5));
  CHECK(H(11) == doctest::Approx(212.5));
  CHECK(H(15) == 0.0f);
  CHECK(S(15) == 0.0f);
  CHECK(V(15) == doctest::Approx(128.0));
  CHECK(H(14) == 0.0f);
  CHECK(S(14) == 0.0f);
  CHECK(V(14) == 0.0f);
  // Every colour against the sector-by-sector formula.
  for (size_t i = 0; i < N; ++i) {
    CAPTURE(i);
    const double r = kColours[i][0] / 255.0, g = kColours[i][1] / 255.0, b = kColours[i][2] / 255.0;
    const double mx = std::max({r, g, b}), mn = std::min({r, g, b});
    const double hue = hue_degrees(r, g, b);
    REQUIRE(hue >= 0);
    REQUIRE(hue < 360);
    CHECK(H(i) == doctest::Approx(hue / 360.0 * 255.0).epsilon(1e-5));
    CHECK(S(i) == doctest::Approx(mx > 0 ? (mx - mn) / mx * 255.0 : 0.0).epsilon(1e-5));
    CHECK(V(i) == doctest::Approx(mx * 255.0).epsilon(1e-5));
  }
}

TEST_CASE("selective search: Lab channels are CIE L*a*b* (D65) scaled to 0..255") {
  // Channels: L * 2.55, a + 128, b + 128. Reference values (full-precision CIE formula):
  //   white L 100, a 0, b 0 -> (255, 128, 128);  pure red (53.24, 80.09, 67.20);
  //   pure blue (32.30, 79.19, -107.86) -> b channel 20.14; (10, 10, 10): L 2.742, on the
  //   linear segments of both the sRGB curve and f.
  const prm::Image im = colour_row();
  const size_t N = kColours.size();
  const std::vector<float> lab = prm::convert_colour(im, prm::ColourSpace::kLab);
  REQUIRE(lab.size() == 3 * N);
  CHECK(lab[16] == doctest::Approx(255.0).epsilon(1e-3));
  CHECK(lab[N + 16] == doctest::Approx(128.0).epsilon(1e-3));
  CHECK(lab[0] == doctest::Approx(53.24 * 2.55).epsilon(1e-3));
  CHECK(lab[N + 0] == doctest::Approx(80.09 + 128).epsilon(1e-3));
  CHECK(lab[2 * N + 0] == doctest::Approx(67.20 + 128).epsilon(1e-3));
  CHECK(lab[2 * N + 10] == doctest::Approx(-107.86 + 128).epsilon(2e-3));
  CHECK(lab[18] == doctest::Approx(2.742 * 2.55).epsilon(1e-3));
  for (size_t i = 0; i < N; ++i) {
    CAPTURE(i);
    double ref[3];
    reference_lab(kColours[i][0], kColours[i][1], kColours[i][2], ref);
    CHECK(std::fabs(lab[i] - ref[0] * 2.55) < 0.13);  // 0.05 L units
    CHECK(std::fabs(lab[N + i] - (ref[1] + 128)) < 0.05);
    CHECK(std::fabs(lab[2 * N + i] - (ref[2] + 128)) < 0.05);
  }
  // RGB is the identity.
  const std::vector<float> rgb = prm::convert_colour(im, prm::ColourSpace::kRgb);
  for (size_t i = 0; i < N; ++i)
    for (int c = 0; c < 3; ++c) CHECK(rgb[c * N + i] == static_cast<float>(kColours[i][c]));
}

// ---------------------------------------------------------------------------------------------
// Selective search's ranking

namespace {

// SplitMix64 (Steele, Lea, Flood 2014; Vigna's reference code), written out here.
uint64_t splitmix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The documented ranking, from the hierarchies of the strategies (numbered colour space, then
// scale, then similarity set, as ProposalOptions lists them): in strategy s with n regions,
// region r (0 = first leaf, n - 1 = the whole image) has position n - r and value
// (n - r) * u, u uniform in [0, 1) from the splitmix64 stream of (seed, s): state0 =
// splitmix(seed * 0x100000001B3 + s), then state = splitmix(state) per region in order, u = the
// top 53 bits / 2^53. Ascending value (ties: strategy, region); equal masks kept once (the
// first); with max_overlap < 1 a mask whose IoU with an earlier kept one reaches max_overlap is
// moved to the end (in rank order); the first max_proposals (0: all).
// docs/proposals.md says "a splitmix64 stream seeded by (seed, strategy)"; the exact seeding
// and draw above are the implementation's, so a deliberate change of the stream must update
// this reference (the rule itself, position x uniform, ascending, is the paper's).
// po.min_size must be >= 0 here. *ties counts the demotions decided by an IoU exactly equal to
// max_overlap.
std::vector<prm::Mask> reference_ranking(const prm::Image& im, const prm::ProposalOptions& po,
                                         int* ties = nullptr) {
  const int H = im.height, W = im.width;
  struct Entry {
    double value;
    int s, r;
    prm::Mask mask;
  };
  std::vector<Entry> all;
  int s = 0;
  for (prm::ColourSpace cs : po.colour_spaces) {
    const std::vector<float> planes = prm::convert_colour(im, cs);
    std::vector<float> blurred = planes;
    prm::gaussian_blur(blurred, 3, H, W, po.sigma);
    const std::vector<prm::GridEdge> edges = prm::grid_edges(blurred, 3, H, W);
    for (double k : po.scales) {
      const prm::Segmentation seg = prm::segment_graph(edges, H, W, k, po.min_size);
      for (unsigned sims : po.similarities) {
        const prm::Hierarchy h = prm::hierarchical_grouping(seg, planes, sims);
        const int n = h.regions();
        uint64_t state = splitmix(po.seed * 0x100000001B3ull + static_cast<uint64_t>(s));
        for (int r = 0; r < n; ++r) {
          state = splitmix(state);
          const double u = static_cast<double>(state >> 11) / 9007199254740992.0;
          prm::Mask m(H, W);
          const std::vector<uint8_t> leaves = prm::region_leaves(h, r);
          for (size_t p = 0; p < m.data.size(); ++p) m.data[p] = leaves[seg.labels[p]];
          all.push_back({(n - r) * u, s, r, std::move(m)});
        }
        ++s;
      }
    }
  }
  std::sort(all.begin(), all.end(), [](const Entry& x, const Entry& y) {
    return std::tie(x.value, x.s, x.r) < std::tie(y.value, y.s, y.r);
  });
  std::vector<prm::Mask> kept, demoted;
  for (const Entry& e : all) {
    bool seen = false;
    for (const prm::Mask& m : kept) seen = seen || m.data == e.mask.data;
    for (const prm::Mask& m : demoted) seen = seen || m.data == e.mask.data;
    if (seen) continue;
    bool overlaps = false;
    for (const prm::Mask& m : kept) {
      if (po.max_overlap >= 1) break;  // exact duplicates only: nothing to measure
      int64_t inter = 0, uni = 0;
      for (size_t p = 0; p < m.data.size(); ++p) {
        inter += m.data[p] && e.mask.data[p];
        uni += m.data[p] || e.mask.data[p];
      }
      const double bound = po.max_overlap * static_cast<double>(uni);
      if (ties && !overlaps && static_cast<double>(inter) == bound) ++*ties;
      overlaps = overlaps || static_cast<double>(inter) >= bound;
    }
    (po.max_overlap < 1 && overlaps ? demoted : kept).push_back(e.mask);
  }
  kept.insert(kept.end(), demoted.begin(), demoted.end());
  if (po.max_proposals > 0 && kept.size() > static_cast<size_t>(po.max_proposals))
    kept.resize(po.max_proposals);
  return kept;
}

}  // namespace

TEST_CASE("selective search: proposals come in the documented rank order") {
  prm::SynthOptions so;
  so.size = 40;
  so.seed = 4;
  const prm::Image im = prm::synth_image(so, 3).rgb;
  prm::ProposalOptions po;
  po.colour_spaces = {prm::ColourSpace::kHsv, prm::ColourSpace::kLab};
  po.scales = {20, 60};
  po.similarities = {prm::kSimAll, prm::kSimSize | prm::kSimFill};
  po.min_size = 8;
  po.max_side = 0;  // no shrinking: the reference works on the image itself
  po.seed = 5;
  for (double overlap : {1.0, 0.8}) {
    for (int limit : {0, 20}) {
      CAPTURE(overlap);
      CAPTURE(limit);
      po.max_overlap = overlap;
      po.max_proposals = limit;
      const std::vector<prm::Mask> got = prm::selective_search(im, po);
      const std::vector<prm::Mask> want = reference_ranking(im, po);
      REQUIRE(want.size() >= 20);  // enough regions for the order to mean something
      REQUIRE(got.size() == want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        CHECK(got[i].data == want[i].data);
      }
    }
  }
}

TEST_CASE("selective search: a region whose IoU equals max_overlap exactly is demoted") {
  // Eight flat blocks of 8x8 pixels in distinct colours, no blur: the FH regions are the blocks
  // (64 px each), and a merge of two of them has IoU exactly 64 / 128 = 0.5 with each child.
  // With max_overlap = 0.5 ("IoU at least max_overlap") such pairs are demoted.
  prm::Image im = black_rgb(16, 32);
  const uint8_t colours[8][3] = {{250, 20, 20}, {20, 250, 20}, {20, 20, 250}, {250, 250, 20},
                                 {20, 250, 250}, {250, 20, 250}, {120, 60, 0}, {0, 60, 120}};
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 32; ++x)
      for (int c = 0; c < 3; ++c) im.at(y, x)[c] = colours[(y / 8) * 4 + x / 8][c];
  prm::ProposalOptions po;
  po.colour_spaces = {prm::ColourSpace::kLab};
  po.scales = {10};
  po.similarities = {prm::kSimAll, prm::kSimSize};
  po.sigma = 0;
  po.min_size = 4;
  po.max_side = 0;
  po.max_overlap = 0.5;
  po.max_proposals = 0;
  po.seed = 2;
  int ties = 0;
  const std::vector<prm::Mask> want = reference_ranking(im, po, &ties);
  REQUIRE(ties > 0);  // the exact case occurs
  const std::vector<prm::Mask> got = prm::selective_search(im, po);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].data == want[i].data);
  }
}

// ---------------------------------------------------------------------------------------------
// Proposal files

TEST_CASE("proposal files: a PNG folder is read in file-name order, not creation or mtime order") {
  // Names in byte order: 0_first < 10 < 9 < a < b (so "10" before "9": names, not numbers).
  // Created in the order b, 9, a, 10, 0_first, and each file's modification time set so that
  // the newest is the first name. Mask of the i-th name (in name order) has i + 1 pixels on.
  const std::string dir = temp_dir("png_order");
  const std::vector<std::string> by_name = {"0_first", "10", "9", "a", "b"};
  const std::vector<int> creation = {4, 2, 3, 1, 0};  // indices into by_name
  const auto now = fs::file_time_type::clock::now();
  for (int n = 0; n < 5; ++n) {
    const int i = creation[n];
    prm::Image img;
    img.height = 3;
    img.width = 4;
    img.channels = 1;
    img.pixels.assign(12, 0);
    for (int p = 0; p <= i; ++p) img.pixels[p] = 255;
    const std::string path = dir + "/" + by_name[i] + ".png";
    prm::save_png(path, img);
    fs::last_write_time(path, now - std::chrono::hours(i + 1));
  }
  write_bytes(dir + "/notes.txt", "not a mask");
  const std::vector<prm::Mask> masks = prm::load_proposals_png_dir(dir, 3, 4);
  REQUIRE(masks.size() == 5);
  for (int i = 0; i < 5; ++i) {
    CAPTURE(i);
    CHECK(masks[i].area() == i + 1);
    for (int p = 0; p < 12; ++p) CHECK(masks[i].data[p] == (p <= i ? 1 : 0));
  }
  fs::remove_all(dir);
}

namespace {

// A proposal .npy built by hand, its header dict padded with `pad` spaces.
std::string proposal_npy(int major, const std::string& dict, size_t pad, const std::string& data) {
  return npy_bytes(major, dict + std::string(pad, ' '), data);
}

}  // namespace

TEST_CASE("proposal files: .npy versions 2.0 and 3.0 are read; unknown versions refused") {
  const std::string dir = temp_dir("npy_versions");
  // [2, 3, 4] uint8, values 0, 1 or 7 (non-zero is on).
  std::string data(24, '\0');
  for (int i = 0; i < 24; ++i) data[i] = static_cast<char>(i % 3 == 0 ? 0 : i % 3 == 1 ? 1 : 7);
  const std::string dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 4), }";
  auto check_masks = [&](const std::vector<prm::Mask>& m) {
    REQUIRE(m.size() == 2);
    for (int p = 0; p < 2; ++p) {
      CHECK(m[p].height == 3);
      CHECK(m[p].width == 4);
      for (int i = 0; i < 12; ++i) CHECK(m[p].data[i] == ((p * 12 + i) % 3 == 0 ? 0 : 1));
    }
  };
  // Version 2.0 with a header of 70,000 bytes: its length needs the third byte of the 4-byte
  // field (70001 = 0x011171), which a 2-byte reading would get wrong.
  const size_t big_pad = 70000 - dict.size();
  write_bytes(dir + "/v2.npy", proposal_npy(2, dict, big_pad, data));
  check_masks(prm::load_proposals_npy(dir + "/v2.npy", 3, 4));
  // Version 2.0 with a short header, and the same as version 3.0 (the header is UTF-8; plain
  // ASCII here, as NumPy writes it for a uint8 array).
  write_bytes(dir + "/v2s.npy", proposal_npy(2, dict, 3, data));
  check_masks(prm::load_proposals_npy(dir + "/v2s.npy"));
  write_bytes(dir + "/v3.npy", proposal_npy(3, dict, 53, data));
  check_masks(prm::load_proposals_npy(dir + "/v3.npy", 3, 4));
  // Version 3.0, a bool [3, 4] file (one mask), through the per-image lookup.
  std::string bools(12, '\0');
  bools[5] = 1;
  bools[11] = 1;
  write_bytes(dir + "/img.npy",
             proposal_npy(3, "{'descr': '|b1', 'fortran_order': False, 'shape': (3, 4), }", 0,
                          bools));
  const std::vector<prm::Mask> one = prm::load_proposals(dir, "img", 3, 4);
  REQUIRE(one.size() == 1);
  CHECK(one[0].area() == 2);
  CHECK(one[0].data[5] == 1);
  CHECK(one[0].data[11] == 1);
  // Versions 0 and 4 are refused, naming the file.
  for (int major : {0, 4}) {
    CAPTURE(major);
    std::string bytes = proposal_npy(2, dict, 3, data);
    bytes[6] = static_cast<char>(major);
    write_bytes(dir + "/bad.npy", bytes);
    const std::string e = error_of([&] { prm::load_proposals_npy(dir + "/bad.npy"); });
    CHECK(e.find("bad.npy") != std::string::npos);
    CHECK(e.find("version") != std::string::npos);
  }
  fs::remove_all(dir);
}
