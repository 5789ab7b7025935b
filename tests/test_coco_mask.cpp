// COCO masks (data/coco_mask.h) against pycocotools' own answers (tests/fixtures/coco, made by
// tools/fixtures/make_coco_fixtures.py): polygons rasterised pixel for pixel, compressed strings
// both ways, area, toBbox, merge, IoU with the crowd rule. Plus small cases worked out by hand,
// strict refusal of malformed strings and polygons, and the fast polygon walk against a plain
// step-by-step walk (the procedure docs/coco.md describes) on polygons far outside the image.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "data/coco_mask.h"
#include "data/files.h"
#include "data/json.h"
#include "helpers.h"

using namespace prm;
using namespace prm::coco;

namespace {

const char* kDir = "tests/fixtures/coco/";

Json load_fixture(const std::string& name) {
  const std::string path = std::string(kDir) + name;
  return parse_json(read_file_bytes(path), path);
}

std::vector<uint32_t> counts_of(const Json& j) {
  std::vector<uint32_t> v;
  for (const Json& c : j.items()) v.push_back(static_cast<uint32_t>(c.as_int64()));
  return v;
}

std::vector<double> doubles_of(const Json& j) {
  std::vector<double> v;
  for (const Json& c : j.items()) v.push_back(c.as_double());
  return v;
}

uint32_t u32(const Json& j) { return static_cast<uint32_t>(j.as_int64()); }

Rle rle_of(const Json& counts, const Json& h, const Json& w) {
  return Rle{u32(h), u32(w), counts_of(counts)};
}

// The step-by-step walk: every fine point of every edge, then the toggles where the fine column
// changes at a pixel centre column, assembled as pycocotools does. Slow (one step per fine unit of
// edge length), so only for moderate coordinates.
std::vector<uint32_t> stepwise_polygon_counts(const std::vector<double>& xy, uint32_t h,
                                              uint32_t w) {
  const size_t k = xy.size() / 2;
  std::vector<int64_t> x(k + 1), y(k + 1);
  for (size_t j = 0; j < k; ++j) {
    x[j] = static_cast<int64_t>(5 * xy[2 * j] + .5);
    y[j] = static_cast<int64_t>(5 * xy[2 * j + 1] + .5);
  }
  x[k] = x[0];
  y[k] = y[0];
  std::vector<int64_t> u, v;
  for (size_t j = 0; j < k; ++j) {
    int64_t xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
    const int64_t dx = std::abs(xe - xs), dy = std::abs(ys - ye);
    const bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      std::swap(xs, xe);
      std::swap(ys, ye);
    }
    if (dx >= dy) {
      const double s = dx == 0 ? 0 : double(ye - ys) / double(dx);
      for (int64_t d = 0; d <= dx; ++d) {
        const int64_t t = flip ? dx - d : d;
        u.push_back(t + xs);
        v.push_back(static_cast<int64_t>(double(ys) + s * double(t) + .5));
      }
    } else {
      const double s = double(xe - xs) / double(dy);
      for (int64_t d = 0; d <= dy; ++d) {
        const int64_t t = flip ? dy - d : d;
        v.push_back(t + ys);
        u.push_back(static_cast<int64_t>(double(xs) + s * double(t) + .5));
      }
    }
  }
  std::vector<uint64_t> toggles;
  for (size_t j = 1; j < u.size(); ++j) {
    if (u[j] == u[j - 1]) continue;
    double xd = double(u[j] < u[j - 1] ? u[j] : u[j] - 1);
    xd = (xd + .5) / 5 - .5;
    if (std::floor(xd) != xd || xd < 0 || xd > double(w) - 1) continue;
    double yd = double(std::min(v[j], v[j - 1]));
    yd = (yd + .5) / 5 - .5;
    yd = std::ceil(std::clamp(yd, 0.0, double(h)));
    toggles.push_back(uint64_t(xd) * h + uint64_t(yd));
  }
  toggles.push_back(uint64_t(h) * w);
  std::sort(toggles.begin(), toggles.end());
  std::vector<uint64_t> diff(toggles.size());
  for (size_t j = 0; j < toggles.size(); ++j) diff[j] = toggles[j] - (j ? toggles[j - 1] : 0);
  std::vector<uint32_t> counts{uint32_t(diff[0])};
  for (size_t j = 1; j < diff.size();) {
    if (diff[j] > 0) {
      counts.push_back(uint32_t(diff[j++]));
    } else if (++j < diff.size()) {
      counts.back() += uint32_t(diff[j++]);
    }
  }
  return counts;
}

std::string rows_of(const std::vector<uint8_t>& mask, uint32_t h, uint32_t w) {
  std::string s;
  for (uint32_t y = 0; y < h; ++y) {
    for (uint32_t x = 0; x < w; ++x) s += mask[size_t(y) * w + x] ? '1' : '0';
    s += '\n';
  }
  return s;
}

}  // namespace

TEST_CASE("coco mask: polygons rasterise as pycocotools' annToRLE, pixel for pixel") {
  const Json cases = load_fixture("polygons.json");
  REQUIRE(cases.size() > 150);
  for (const Json& c : cases.items()) {
    const std::string name = c.at("name").as_string();
    CAPTURE(name);
    const uint32_t h = u32(c.at("h")), w = u32(c.at("w"));
    std::vector<std::vector<double>> parts;
    for (const Json& p : c.at("polygons").items()) parts.push_back(doubles_of(p));
    const Rle rle = rle_from_polygons(parts, h, w);
    CHECK(rle.h == h);
    CHECK(rle.w == w);
    CHECK(rle.counts == counts_of(c.at("counts")));
    CHECK(rle_to_string(rle.counts) == c.at("string").as_string());
    if (const Json* rows = c.find("rows")) {
      std::string expected;
      for (const Json& r : rows->items()) expected += r.as_string() + "\n";
      CHECK(rows_of(rle_decode(rle), h, w) == expected);
    }
    if (parts.size() == 1) CHECK(rle_from_polygon(parts[0], h, w) == rle);
  }
}

TEST_CASE("coco mask: a triangle by hand") {
  // Vertices (0,0), (4,0), (0,4) on a 5x5 image: fine grid (0,0), (20,0), (0,20). The slanted
  // edge is walked along x from (0,20) to (20,0): point t is (t, 20 - t); the step t -> t+1 leaves
  // column t, so at the centre column t = 5X+2 of pixel X its lower row is 19 - t = 17 - 5X, and
  // the toggle row is ceil((17 - 5X + .5)/5 - .5) = 3 - X. The top edge toggles every column at
  // row ceil(max(0, .5/5 - .5)) = 0; the edge x = 0 crosses no centre column. So column X is set
  // on rows 0 .. 2-X: 3, 2, 1 pixels in columns 0, 1, 2 (in column 3 both toggles are at row 0).
  const Rle rle = rle_from_polygon({0, 0, 4, 0, 0, 4}, 5, 5);
  CHECK(rle.counts == std::vector<uint32_t>{0, 3, 2, 2, 3, 1, 14});
  CHECK(rows_of(rle_decode(rle), 5, 5) ==
        "11100\n"
        "11000\n"
        "10000\n"
        "00000\n"
        "00000\n");
  CHECK(rle_area(rle) == 6);
  CHECK(rle_to_bbox(rle) == std::array<double, 4>{0, 0, 3, 3});
}

TEST_CASE("coco mask: the fast polygon walk equals the step-by-step walk") {
  std::mt19937 gen(7);
  std::uniform_real_distribution<double> unit(0, 1);
  int compared = 0;
  for (int n = 0; n < 3000; ++n) {
    const uint32_t h = 1 + gen() % 50, w = 1 + gen() % 50;
    // Coordinates from inside the image to far outside it, some integer, some on half pixels,
    // some tiny negatives (where truncation toward zero differs from floor).
    const double reach = n % 3 == 0 ? 10 : n % 3 == 1 ? 200 : 3000;
    const size_t k = 3 + gen() % 8;
    std::vector<double> xy;
    for (size_t j = 0; j < 2 * k; ++j) {
      double v = -reach + unit(gen) * (2 * reach + (j % 2 ? h : w));
      if (n % 7 == 1) v = std::round(v);
      if (n % 7 == 2) v = std::round(2 * v) / 2;
      if (n % 7 == 3) v = -unit(gen);
      xy.push_back(v);
    }
    if (n % 11 == 0) xy[2] = xy[0], xy[3] = xy[1];  // a repeated vertex
    CAPTURE(n);
    CHECK(rle_from_polygon(xy, h, w).counts == stepwise_polygon_counts(xy, h, w));
    ++compared;
  }
  CHECK(compared == 3000);
}

TEST_CASE("coco mask: polygons far out, at the coordinate limit") {
  // An edge from far left to far right across a small image: only the image's columns are
  // visited. The mask is the part of the triangle inside, as the step-by-step walk gives it.
  const std::vector<double> xy = {-kMaxPolygonCoordinate, 2.3, kMaxPolygonCoordinate, 3.1, 2.5,
                                  kMaxPolygonCoordinate};
  const Rle rle = rle_from_polygon(xy, 8, 6);
  CHECK(rle.counts == stepwise_polygon_counts(xy, 8, 6));
  CHECK(rle_area(rle) > 0);
  // A steep edge over a huge height: one bisection per crossed column.
  const std::vector<double> steep = {1.2, -kMaxPolygonCoordinate, 4.7, kMaxPolygonCoordinate, 0.2,
                                     0.4};
  CHECK(rle_from_polygon(steep, 8, 6).counts == stepwise_polygon_counts(steep, 8, 6));
}

TEST_CASE("coco mask: polygon input refused with one line naming the part") {
  CHECK(error_of([] { rle_from_polygons({}, 4, 4); }) == "segmentation: no polygon");
  CHECK(error_of([] { rle_from_polygons({{0, 0, 3, 0, 3, 3}, {1, 1, 2, 2, 3}}, 4, 4); }) ==
        "segmentation polygon 1: 5 coordinates, an odd number");
  CHECK(error_of([] { rle_from_polygons({{0, 0, 3, 0}}, 4, 4); }) ==
        "segmentation polygon 0: 2 points, at least 3 needed");
  CHECK(error_of([] { rle_from_polygons({{0, 0}}, 4, 4); }) ==
        "segmentation polygon 0: 1 point, at least 3 needed");
  CHECK(error_of([] { rle_from_polygon({0, 0, 3, 0, 3}, 4, 4); }) ==
        "segmentation polygon: 5 coordinates, an odd number");
  CHECK(error_of([] { rle_from_polygons({{0, 0, 3, 0, 3, 2e6}}, 4, 4); }) ==
        "segmentation polygon 0: coordinate 5 (2e+06) is outside +-1e+06");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(error_of([&] { rle_from_polygons({{0, 0, nan, 0, 3, 3}}, 4, 4); }) ==
        "segmentation polygon 0: coordinate 2 (nan) is outside +-1e+06");
}

TEST_CASE("coco mask: RLE strings both ways, area and toBbox as pycocotools gives them") {
  const Json cases = load_fixture("rle.json");
  REQUIRE(cases.size() > 50);
  for (const Json& c : cases.items()) {
    CAPTURE(c.at("name").as_string());
    const Rle rle = rle_of(c.at("counts"), c.at("h"), c.at("w"));
    const std::string s = c.at("string").as_string();
    CHECK(rle_to_string(rle.counts) == s);
    CHECK(rle_from_string(s, rle.h, rle.w) == rle);
    CHECK(rle_area(rle) == uint32_t(c.at("area").as_int64()));
    const std::vector<double> box = doubles_of(c.at("bbox"));
    const std::array<double, 4> got = rle_to_bbox(rle);
    CHECK(std::vector<double>(got.begin(), got.end()) == box);
  }
}

TEST_CASE("coco mask: compressed strings by hand") {
  // 5 bits per character from the low end, +48; 0x20 = more follows; 0x10 in the last = negative.
  CHECK(rle_to_string({0}) == "0");
  CHECK(rle_to_string({1}) == "1");
  CHECK(rle_to_string({31}) == "o0");  // 31 has bit 0x10: one more character keeps it positive
  CHECK(rle_to_string({16}) == "`0");
  // From index 3 the difference to two places back: 0 - 1 = -1 -> 31 | sign -> 'O'.
  CHECK(rle_to_string({1, 1, 1, 0}) == "111O");
  CHECK(rle_to_string({5, 3, 10, 1}) == "53:N");  // 1 - 3 = -2 -> 30 -> 'N'
  CHECK(rle_counts_from_string("53:N") == std::vector<uint32_t>{5, 3, 10, 1});
  CHECK(rle_counts_from_string("").empty());
  // The extremes of uint32: differences of +-(2^32 - 1) take 7 characters.
  const std::vector<uint32_t> extreme = {4294967295u, 0, 0, 4294967295u, 4294967295u, 0, 7};
  CHECK(rle_counts_from_string(rle_to_string(extreme)) == extreme);
  // A redundant continuation (zeros written with more characters) reads as the same number.
  CHECK(rle_counts_from_string("P0") == std::vector<uint32_t>{0});
}

TEST_CASE("coco mask: malformed compressed strings refused with one line") {
  CHECK(error_of([] { rle_counts_from_string("12 4"); }) ==
        "compressed RLE counts: byte ' ' (0x20) at offset 2 is not in '0'..'o'");
  CHECK(error_of([] { rle_counts_from_string("1p"); }) ==
        "compressed RLE counts: byte 'p' (0x70) at offset 1 is not in '0'..'o'");
  CHECK(error_of([] { rle_counts_from_string(std::string("1\x80", 2)); }) ==
        "compressed RLE counts: byte 0x80 at offset 1 is not in '0'..'o'");
  CHECK(error_of([] { rle_counts_from_string(std::string("1\0", 2)); }) ==
        "compressed RLE counts: byte 0x00 at offset 1 is not in '0'..'o'");
  CHECK(error_of([] { rle_counts_from_string("12P"); }) ==
        "compressed RLE counts end inside a number (the one at offset 2)");
  CHECK(error_of([] { rle_counts_from_string("1PPPPPPP0"); }) ==
        "compressed RLE counts: the number at offset 1 is longer than 7 characters");
  // 'O' alone is -1: a negative first count.
  CHECK(error_of([] { rle_counts_from_string("O"); }) ==
        "compressed RLE counts: count 0 (at offset 0) is -1, outside 0..4294967295");
  // 2^32: six groups of 0 with continuation ('P'), then 4 ('4').
  CHECK(error_of([] { rle_counts_from_string("PPPPPP4"); }) ==
        "compressed RLE counts: count 0 (at offset 0) is 4294967296, outside 0..4294967295");
  // Index 3 is read as a difference to index 1: 1 + (-4) ('L' = 28 = -4 in 5 bits).
  CHECK(error_of([] { rle_counts_from_string("115L"); }) ==
        "compressed RLE counts: count 3 (at offset 3) is -3, outside 0..4294967295");
  CHECK(error_of([] { rle_from_string("3", 2, 2); }) ==
        "RLE counts sum to 3, not h*w = 4 (size [2, 2])");
  CHECK(error_of([] { check_rle(Rle{65536, 65536, {}}); }) ==
        "RLE size [65536, 65536] has 2^32 pixels or more");
  CHECK(error_of([] { rle_decode(Rle{2, 2, {1, 2}}); }) ==
        "RLE counts sum to 3, not h*w = 4 (size [2, 2])");
}

TEST_CASE("coco mask: encode and decode, column-major with zeros first") {
  // Row-major 3x4 mask; read down the columns: col0 = 0 1 1, col1 = 1 1 0, col2 = 0 0 0,
  // col3 = 0 0 1 -> 0 | 1 1 1 1 | 0 0 0 0 0 0 | 1 -> runs 1, 4, 6, 1.
  const std::vector<uint8_t> mask = {0, 1, 0, 0,  //
                                     1, 1, 0, 0,  //
                                     1, 0, 0, 7};  // any nonzero byte is set
  const Rle rle = rle_encode(mask.data(), 3, 4);
  CHECK(rle.counts == std::vector<uint32_t>{1, 4, 6, 1});
  std::vector<uint8_t> binary = mask;
  binary[11] = 1;
  CHECK(rle_decode(rle) == binary);
  CHECK(rle_encode(binary.data(), 3, 4) == rle);
  const std::vector<uint8_t> ones(6, 1), none(6, 0);
  CHECK(rle_encode(ones.data(), 2, 3).counts == std::vector<uint32_t>{0, 6});
  CHECK(rle_encode(none.data(), 2, 3).counts == std::vector<uint32_t>{6});
  CHECK(rle_encode(nullptr, 0, 5).counts == std::vector<uint32_t>{0});
  std::mt19937 gen(3);
  for (int n = 0; n < 50; ++n) {
    const uint32_t h = 1 + gen() % 20, w = 1 + gen() % 20;
    std::vector<uint8_t> m(size_t(h) * w);
    for (auto& b : m) b = gen() % 3 == 0;
    CHECK(rle_decode(rle_encode(m.data(), h, w)) == m);
  }
}

TEST_CASE("coco mask: merge and IoU as pycocotools gives them, zero-length runs included") {
  const Json ops = load_fixture("ops.json");
  int with_zero_runs = 0;
  for (const Json& c : ops.at("pairs").items()) {
    const std::string name = c.at("name").as_string();
    CAPTURE(name);
    std::vector<Rle> masks;
    for (const Json& m : c.at("masks").items()) masks.push_back(rle_of(m, c.at("h"), c.at("w")));
    const Rle uni = rle_merge(masks, false), inter = rle_merge(masks, true);
    CHECK(rle_to_string(uni.counts) == c.at("union_string").as_string());
    CHECK(rle_to_string(inter.counts) == c.at("intersection_string").as_string());
    if (!c.at("union").is_null()) CHECK(uni.counts == counts_of(c.at("union")));
    CHECK(rle_iou(masks[0], masks[1], false) == c.at("iou").as_double());
    CHECK(rle_iou(masks[0], masks[1], true) == c.at("iou_crowd").as_double());
    with_zero_runs += name.find("zero runs") != std::string::npos;
  }
  CHECK(with_zero_runs >= 10);

  const Json& mx = ops.at("matrix");
  std::vector<Rle> dts, gts;
  for (const Json& m : mx.at("dts").items()) dts.push_back(rle_of(m, mx.at("h"), mx.at("w")));
  for (const Json& m : mx.at("gts").items()) gts.push_back(rle_of(m, mx.at("h"), mx.at("w")));
  std::vector<const Rle*> dp, gp;
  for (const Rle& r : dts) dp.push_back(&r);
  for (const Rle& r : gts) gp.push_back(&r);
  std::vector<uint8_t> crowd;
  for (const Json& v : mx.at("crowd").items()) crowd.push_back(uint8_t(v.as_int64()));
  std::vector<double> iou(dts.size() * gts.size());
  rle_iou_matrix(iou.data(), dp.data(), dp.size(), gp.data(), crowd.data(), gp.size());
  for (size_t d = 0; d < dts.size(); ++d)
    for (size_t g = 0; g < gts.size(); ++g)
      CHECK(iou[d * gts.size() + g] == mx.at("iou").items()[d].items()[g].as_double());

  const Json& sm = ops.at("size_mismatch");
  const Rle dt = rle_of(sm.at("dt").at("counts"), sm.at("dt").at("h"), sm.at("dt").at("w"));
  for (size_t g = 0; g < 2; ++g) {
    const Json& gj = sm.at("gts").items()[g];
    CHECK(rle_iou(dt, rle_of(gj.at("counts"), gj.at("h"), gj.at("w")), false) ==
          sm.at("iou").items()[g].as_double());
  }
}

TEST_CASE("coco mask: IoU, merge and box by hand, the crowd rule") {
  // 4x4 image. a = columns 0-1 full (8 px), b = column 1 full and column 2 full (8 px):
  // intersection 4, union 12 -> 1/3; crowd b: 4 / |a| = 1/2.
  const Rle a{4, 4, {0, 8, 8}}, b{4, 4, {4, 8, 4}};
  CHECK(rle_iou(a, b, false) == doctest::Approx(1.0 / 3.0));
  CHECK(rle_iou(a, b, true) == 0.5);
  CHECK(rle_merge(a, b, false).counts == std::vector<uint32_t>{0, 12, 4});
  CHECK(rle_merge(a, b, true).counts == std::vector<uint32_t>{4, 4, 8});
  CHECK(rle_merge({a}, true) == a);
  // Boxes touching without overlap: 0 (pycocotools never walks the runs then).
  const Rle c{4, 4, {8, 8}};
  CHECK(rle_iou(a, c, false) == 0);
  CHECK(rle_iou(Rle{4, 4, {16}}, a, true) == 0);  // an empty detection on a crowd region
  // A run that wraps from one column into the next spans the full height in the box.
  CHECK(rle_to_bbox(Rle{4, 4, {3, 2, 11}}) == std::array<double, 4>{0, 0, 2, 4});
  CHECK(rle_to_bbox(Rle{4, 4, {16}}) == std::array<double, 4>{0, 0, 0, 0});
  CHECK(error_of([&] { rle_merge(a, Rle{4, 5, {20}}, false); }) ==
        "RLE merge: sizes [4, 4] and [4, 5] differ");
  CHECK(error_of([] { rle_merge(std::vector<Rle>{}, false); }) == "RLE merge: no masks");
}
