#include "data/polygon_trace.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "data/coco_mask.h"

namespace prm {

namespace {

// A piece of the mask: its pixels in a box of the image (row-major, 0/1).
struct Region {
  int x0 = 0, y0 = 0, w = 0, h = 0;
  std::vector<uint8_t> set;
  int64_t pixels = 0;

  bool at(int x, int y) const {  // local coordinates; outside the box is background
    return x >= 0 && y >= 0 && x < w && y < h && set[static_cast<size_t>(y) * w + x];
  }
};

struct Point {
  double x = 0, y = 0;
};

// The 4-connected components of `r`, each cropped to its own box.
std::vector<Region> components(const Region& r) {
  std::vector<int> label(r.set.size(), 0);
  std::vector<Region> out;
  std::vector<int> stack;
  for (int start = 0; start < static_cast<int>(r.set.size()); ++start) {
    if (!r.set[start] || label[start]) continue;
    const int id = static_cast<int>(out.size()) + 1;
    int x0 = r.w, y0 = r.h, x1 = -1, y1 = -1;
    int64_t n = 0;
    label[start] = id;
    stack.assign(1, start);
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      const int x = i % r.w, y = i / r.w;
      x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
      ++n;
      const int nx[4] = {x + 1, x - 1, x, x}, ny[4] = {y, y, y + 1, y - 1};
      for (int k = 0; k < 4; ++k) {
        if (!r.at(nx[k], ny[k])) continue;
        const int j = ny[k] * r.w + nx[k];
        if (label[j]) continue;
        label[j] = id;
        stack.push_back(j);
      }
    }
    Region c;
    c.x0 = r.x0 + x0, c.y0 = r.y0 + y0, c.w = x1 - x0 + 1, c.h = y1 - y0 + 1;
    c.set.assign(static_cast<size_t>(c.w) * c.h, 0);
    c.pixels = n;
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x)
        c.set[static_cast<size_t>(y - y0) * c.w + (x - x0)] = label[y * r.w + x] == id;
    out.push_back(std::move(c));
  }
  return out;
}

// The first pixel (local, raster order) of background that one component encloses: background
// not 8-connected to the outside of its box. false when it encloses none.
bool find_hole(const Region& c, int& hx, int& hy) {
  const int W = c.w + 2, H = c.h + 2;  // a margin of background all round
  std::vector<uint8_t> outside(static_cast<size_t>(W) * H, 0);
  std::vector<int> stack{0};
  outside[0] = 1;
  while (!stack.empty()) {
    const int i = stack.back();
    stack.pop_back();
    const int x = i % W, y = i / W;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        const int xx = x + dx, yy = y + dy;
        if (xx < 0 || yy < 0 || xx >= W || yy >= H || c.at(xx - 1, yy - 1)) continue;
        const int j = yy * W + xx;
        if (outside[j]) continue;
        outside[j] = 1;
        stack.push_back(j);
      }
  }
  for (int y = 0; y < c.h; ++y)
    for (int x = 0; x < c.w; ++x)
      if (!c.at(x, y) && !outside[static_cast<size_t>(y + 1) * W + (x + 1)]) {
        hx = x, hy = y;
        return true;
      }
  return false;
}

// The pixels of `c` in columns [from, to) (local), as a region of the same box.
Region columns(const Region& c, int from, int to) {
  Region r = c;
  r.pixels = 0;
  for (int y = 0; y < c.h; ++y)
    for (int x = 0; x < c.w; ++x) {
      uint8_t& v = r.set[static_cast<size_t>(y) * c.w + x];
      if (x < from || x >= to) v = 0;
      r.pixels += v;
    }
  return r;
}

// The outline of a 4-connected component without holes along the pixel edges, clockwise on
// screen (y down), as its corners in image coordinates. The walk keeps the component on its
// right; at a vertex it turns right when the pixel ahead on the right is background, left when
// both pixels ahead are set, and goes straight otherwise (so diagonal neighbours stay apart).
std::vector<Point> outline_corners(const Region& c) {
  // Directions east, south, west, north; the pixel ahead-right of a vertex going direction d is
  // at vertex + kAheadRight[d]; the one ahead-left at vertex + kAheadRight[left turn of d].
  static const int kDx[4] = {1, 0, -1, 0}, kDy[4] = {0, 1, 0, -1};
  static const int kRx[4] = {0, -1, -1, 0}, kRy[4] = {0, 0, -1, -1};
  int x0 = 0, y0 = 0;
  while (!c.at(x0, y0))
    if (++x0 == c.w) x0 = 0, ++y0;
  std::vector<Point> corners;
  int x = x0, y = y0, d = 0;  // along the top edge of the first pixel, eastwards
  do {
    x += kDx[d], y += kDy[d];
    const int l = (d + 3) % 4;
    const bool right = c.at(x + kRx[d], y + kRy[d]), left = c.at(x + kRx[l], y + kRy[l]);
    const int next = !right ? (d + 1) % 4 : left ? l : d;
    if (next != d) corners.push_back({double(c.x0 + x), double(c.y0 + y)});
    d = next;
  } while (!(x == x0 && y == y0 && d == 0));
  return corners;
}

double segment_distance(const Point& p, const Point& a, const Point& b) {
  const double vx = b.x - a.x, vy = b.y - a.y, len2 = vx * vx + vy * vy;
  double t = len2 > 0 ? ((p.x - a.x) * vx + (p.y - a.y) * vy) / len2 : 0;
  t = std::clamp(t, 0.0, 1.0);
  return std::hypot(p.x - (a.x + t * vx), p.y - (a.y + t * vy));
}

// Douglas-Peucker on the open chain pts[a..b]: marks the points kept.
void thin(const std::vector<Point>& pts, size_t a, size_t b, double tolerance,
          std::vector<char>& keep) {
  std::vector<std::pair<size_t, size_t>> stack{{a, b}};
  while (!stack.empty()) {
    const auto [i, j] = stack.back();
    stack.pop_back();
    double worst = -1;
    size_t at = i;
    for (size_t k = i + 1; k < j; ++k) {
      const double dist = segment_distance(pts[k], pts[i], pts[j]);
      if (dist > worst) worst = dist, at = k;
    }
    if (worst <= tolerance) continue;
    keep[at] = 1;
    stack.push_back({i, at});
    stack.push_back({at, j});
  }
}

// The smoothed outline: every unit step between the corners, each averaged with its two
// neighbours, thinned by Douglas-Peucker (closed: split at the point farthest from the first).
std::vector<Point> smooth_outline(const std::vector<Point>& corners, double tolerance) {
  std::vector<Point> steps;
  for (size_t i = 0; i < corners.size(); ++i) {
    const Point& a = corners[i];
    const Point& b = corners[(i + 1) % corners.size()];
    const int n = static_cast<int>(std::lround(std::abs(b.x - a.x) + std::abs(b.y - a.y)));
    for (int k = 0; k < n; ++k)
      steps.push_back({a.x + (b.x - a.x) * k / n, a.y + (b.y - a.y) * k / n});
  }
  const size_t n = steps.size();
  std::vector<Point> avg(n);
  for (size_t i = 0; i < n; ++i) {
    const Point& p = steps[(i + n - 1) % n];
    const Point& q = steps[(i + 1) % n];
    avg[i] = {(p.x + steps[i].x + q.x) / 3, (p.y + steps[i].y + q.y) / 3};
  }
  size_t far = 0;
  for (size_t i = 1; i < n; ++i)
    if (std::hypot(avg[i].x - avg[0].x, avg[i].y - avg[0].y) >
        std::hypot(avg[far].x - avg[0].x, avg[far].y - avg[0].y))
      far = i;
  std::vector<Point> ring = avg;
  ring.push_back(avg[0]);  // closes the chain
  std::vector<char> keep(ring.size(), 0);
  keep[0] = keep[far] = 1;
  thin(ring, 0, far, tolerance, keep);
  thin(ring, far, n, tolerance, keep);
  std::vector<Point> out;
  for (size_t i = 0; i < n; ++i)
    if (keep[i]) out.push_back(avg[i]);
  return out;
}

// v rounded to `decimals` decimals: the double that its "%.*f" text reads back as.
double rounded(double v, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, v);
  return std::strtod(text, nullptr);
}

std::vector<double> flatten(const std::vector<Point>& pts, int decimals) {
  std::vector<double> xy;
  for (const Point& p : pts) {
    xy.push_back(rounded(p.x, decimals));
    xy.push_back(rounded(p.y, decimals));
  }
  return xy;
}

// Outlines one 4-connected component, cutting it at its holes first.
void outline_component(const Region& c, int h, int w, const TraceOptions& options,
                       std::vector<std::vector<double>>& parts) {
  int hx = 0, hy = 0;
  if (find_hole(c, hx, hy)) {
    for (const Region& side : {columns(c, 0, hx + 1), columns(c, hx + 1, c.w)})
      for (const Region& piece : components(side)) outline_component(piece, h, w, options, parts);
    return;
  }
  const std::vector<Point> corners = outline_corners(c);
  if (options.smooth && c.pixels >= options.smooth_min_pixels) {
    const std::vector<Point> smooth = smooth_outline(corners, options.tolerance);
    if (smooth.size() >= 3) {
      std::vector<double> xy = flatten(smooth, options.decimals);
      if (coco::rle_area(coco::rle_from_polygon(xy, static_cast<uint32_t>(h),
                                                static_cast<uint32_t>(w))) > 0) {
        parts.push_back(std::move(xy));
        return;
      }
    }
  }
  parts.push_back(flatten(corners, options.decimals));
}

}  // namespace

std::vector<std::vector<double>> mask_to_polygons(const uint8_t* mask, int h, int w,
                                                  const TraceOptions& options) {
  Region all;
  all.w = w, all.h = h;
  all.set.resize(static_cast<size_t>(w) * h);
  for (size_t i = 0; i < all.set.size(); ++i) all.set[i] = mask[i] != 0;
  std::vector<Region> found = components(all);
  std::vector<std::vector<double>> parts;
  if (found.empty()) return parts;
  const auto largest = std::max_element(found.begin(), found.end(), [](const Region& a,
                                                                       const Region& b) {
    return a.pixels < b.pixels;
  });
  for (const Region& c : found)
    if (c.pixels >= options.min_part_pixels || &c == &*largest)
      outline_component(c, h, w, options, parts);
  return parts;
}

}  // namespace prm
