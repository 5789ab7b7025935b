// COCO masks as pycocotools computes them (coco_mask.h states the formats; docs/coco.md the
// rules). Where pycocotools' result depends on the exact floating-point expression (the polygon
// walk), the expression here is the same one, term for term, in double precision, and the build's
// -ffp-contract=off keeps the compiler from fusing it differently.
#include "data/coco_mask.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "tensor/error.h"

namespace prm::coco {

namespace {

constexpr uint64_t kMaxPixels = uint64_t(1) << 32;  // counts are uint32
constexpr double kFine = 5;                         // polygon grid: 5 fine steps per pixel

uint64_t pixel_count(uint32_t h, uint32_t w) { return uint64_t(h) * w; }

int64_t floor_div(int64_t a, int64_t b) {  // b > 0
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

}  // namespace

void check_rle(const Rle& rle) {
  const uint64_t n = pixel_count(rle.h, rle.w);
  PRM_CHECK(n < kMaxPixels, "RLE size [", rle.h, ", ", rle.w, "] has 2^32 pixels or more");
  uint64_t sum = 0;
  for (uint32_t c : rle.counts) sum += c;
  PRM_CHECK(sum == n, "RLE counts sum to ", sum, ", not h*w = ", n, " (size [", rle.h, ", ",
            rle.w, "])");
}

// ---- masks <-> RLE ----

Rle rle_encode(const uint8_t* mask, uint32_t h, uint32_t w) {
  PRM_CHECK(pixel_count(h, w) < kMaxPixels, "RLE size [", h, ", ", w, "] has 2^32 pixels or more");
  Rle rle{h, w, {}};
  bool value = false;  // runs start with zeros
  uint32_t run = 0;
  for (uint32_t x = 0; x < w; ++x) {
    for (uint32_t y = 0; y < h; ++y) {
      const bool set = mask[size_t(y) * w + x] != 0;
      if (set != value) {
        rle.counts.push_back(run);
        run = 0;
        value = set;
      }
      ++run;
    }
  }
  rle.counts.push_back(run);
  return rle;
}

std::vector<uint8_t> rle_decode(const Rle& rle) {
  check_rle(rle);
  std::vector<uint8_t> mask(pixel_count(rle.h, rle.w), 0);
  uint64_t pos = 0;  // column-major pixel number
  for (size_t i = 0; i < rle.counts.size(); ++i) {
    const uint64_t end = pos + rle.counts[i];
    if (i % 2 == 1) {
      for (uint64_t p = pos; p < end; ++p) mask[(p % rle.h) * rle.w + p / rle.h] = 1;
    }
    pos = end;
  }
  return mask;
}

// ---- compressed strings ----

std::string rle_to_string(const std::vector<uint32_t>& counts) {
  std::string s;
  s.reserve(counts.size() * 2);
  for (size_t i = 0; i < counts.size(); ++i) {
    int64_t x = counts[i];
    if (i > 2) x -= counts[i - 2];
    for (bool more = true; more;) {
      int c = static_cast<int>(x & 0x1f);
      x >>= 5;  // arithmetic: the sign stays
      // Stop once the rest is all sign: zeros after a positive group, ones after a negative one.
      more = (c & 0x10) ? x != -1 : x != 0;
      if (more) c |= 0x20;
      s.push_back(static_cast<char>(c + 48));
    }
  }
  return s;
}

std::vector<uint32_t> rle_counts_from_string(std::string_view s) {
  constexpr int kMaxChars = 7;  // 35 bits: every difference of two uint32 counts fits
  std::vector<uint32_t> counts;
  size_t p = 0;
  while (p < s.size()) {
    const size_t start = p;
    int64_t x = 0;
    for (int k = 0;; ++k) {
      PRM_CHECK(p < s.size(), "compressed RLE counts end inside a number (the one at offset ",
                start, ")");
      PRM_CHECK(k < kMaxChars, "compressed RLE counts: the number at offset ", start,
                " is longer than ", kMaxChars, " characters");
      const unsigned char ch = static_cast<unsigned char>(s[p]);
      if (ch < '0' || ch > 'o') {
        char shown[32];
        if (ch >= 0x20 && ch < 0x7f)
          std::snprintf(shown, sizeof shown, "'%c' (0x%02x)", ch, ch);
        else
          std::snprintf(shown, sizeof shown, "0x%02x", ch);
        throw Error(str_cat("compressed RLE counts: byte ", shown, " at offset ", p,
                            " is not in '0'..'o'"));
      }
      const int c = ch - '0';
      x |= int64_t(c & 0x1f) << (5 * k);
      ++p;
      if (!(c & 0x20)) {
        if (c & 0x10) x -= int64_t(1) << (5 * (k + 1));  // sign-extend from bit 5(k+1)-1
        break;
      }
    }
    if (counts.size() > 2) x += counts[counts.size() - 2];
    PRM_CHECK(x >= 0 && x <= int64_t(std::numeric_limits<uint32_t>::max()),
              "compressed RLE counts: count ", counts.size(), " (at offset ", start, ") is ", x,
              ", outside 0..4294967295");
    counts.push_back(static_cast<uint32_t>(x));
  }
  return counts;
}

Rle rle_from_string(std::string_view s, uint32_t h, uint32_t w) {
  Rle rle{h, w, rle_counts_from_string(s)};
  check_rle(rle);
  return rle;
}

// ---- polygons ----
//
// pycocotools walks every edge of the fine-grid polygon one fine step at a time (along x when
// the edge is at least as wide as it is tall, else along y; the other coordinate is interpolated
// and rounded as (int)(a + s * t + 0.5)), and records a toggle where two consecutive points lie in
// different fine columns u and u+1 with u = 5 X + 2, the centre column of pixel X in [0, w): the
// toggle's row is ceil(((min of the two fine rows) + 0.5) / 5 - 0.5), clamped to [0, h].
// Consecutive edges share their vertex point unless a coordinate is negative, and there the
// column is negative too, so no toggle is lost between edges. Here only the crossings of pixel
// centre columns are visited instead of every fine step: along x the column of step t is known,
// along y the column is a monotone function of t, found by bisection. With coordinates within
// kMaxPolygonCoordinate the interpolated column moves by at most one per step (|s| < 1 and the
// rounding error of s * t is far below 1 / dy), so each crossed centre column is crossed by
// exactly one step of the walk, the one found here.

namespace {

int64_t to_fine(double v) { return static_cast<int64_t>(kFine * v + .5); }

// The interpolated coordinate of step t, as pycocotools rounds it.
int64_t interpolate(int64_t start, double slope, int64_t t) {
  return static_cast<int64_t>(static_cast<double>(start) + slope * static_cast<double>(t) + .5);
}

// Records the toggle of pixel column X at fine row fine_y.
void add_toggle(std::vector<uint32_t>& toggles, int64_t X, int64_t fine_y, uint32_t h) {
  double yd = (static_cast<double>(fine_y) + .5) / kFine - .5;
  if (yd < 0)
    yd = 0;
  else if (yd > h)
    yd = h;
  const uint64_t y = static_cast<uint64_t>(std::ceil(yd));
  toggles.push_back(static_cast<uint32_t>(uint64_t(X) * h + y));
}

// The pixel columns X in [0, w) whose centre fine column 5X+2 lies in [lo, hi].
void centre_columns(int64_t lo, int64_t hi, uint32_t w, int64_t& X0, int64_t& X1) {
  X0 = std::max<int64_t>(0, ceil_div(lo - 2, 5));
  X1 = std::min<int64_t>(int64_t(w) - 1, floor_div(hi - 2, 5));
}

void edge_toggles(std::vector<uint32_t>& toggles, int64_t xs, int64_t ys, int64_t xe, int64_t ye,
                  uint32_t h, uint32_t w) {
  const int64_t dx = std::abs(xe - xs), dy = std::abs(ye - ys);
  if (dx == 0 && dy == 0) return;  // a repeated vertex: one point, no step
  const bool along_x = dx >= dy;
  // Walk from the end with the smaller coordinate along the walking axis (pycocotools' flip).
  if (along_x ? xs > xe : ys > ye) {
    std::swap(xs, xe);
    std::swap(ys, ye);
  }
  int64_t X0, X1;
  if (along_x) {
    // Point t = (xs + t, interpolate(ys, s, t)); step t -> t+1 leaves fine column xs + t.
    const double s = static_cast<double>(ye - ys) / static_cast<double>(dx);
    centre_columns(xs, xs + dx - 1, w, X0, X1);
    for (int64_t X = X0; X <= X1; ++X) {
      const int64_t t = 5 * X + 2 - xs;
      add_toggle(toggles, X, std::min(interpolate(ys, s, t), interpolate(ys, s, t + 1)), h);
    }
    return;
  }
  // Point t = (interpolate(xs, s, t), ys + t): the column is monotone in t.
  const double s = static_cast<double>(xe - xs) / static_cast<double>(dy);
  const int64_t u0 = interpolate(xs, s, 0), u1 = interpolate(xs, s, dy);
  if (u0 == u1) return;
  const bool rising = u1 > u0;
  centre_columns(std::min(u0, u1), std::max(u0, u1) - 1, w, X0, X1);
  for (int64_t X = X0; X <= X1; ++X) {
    // The first t whose column is past 5X+2 (rising) or at most 5X+2 (falling); the step
    // t-1 -> t crosses between columns 5X+2 and 5X+3, at fine row ys + t - 1.
    int64_t lo = 1, hi = dy;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      const int64_t u = interpolate(xs, s, mid);
      if (rising ? u >= 5 * X + 3 : u <= 5 * X + 2)
        hi = mid;
      else
        lo = mid + 1;
    }
    add_toggle(toggles, X, ys + lo - 1, h);
  }
}

// pycocotools' assembly of the toggles: sorted, the end h*w appended, differences taken; a zero
// difference (a toggle repeated) is dropped together with the next difference, which is added to
// the previous run instead.
std::vector<uint32_t> counts_from_toggles(std::vector<uint32_t>& toggles, uint32_t h, uint32_t w) {
  toggles.push_back(static_cast<uint32_t>(pixel_count(h, w)));
  std::sort(toggles.begin(), toggles.end());
  std::vector<uint32_t> counts;
  counts.reserve(toggles.size());
  counts.push_back(toggles[0]);
  for (size_t j = 1; j < toggles.size();) {
    const uint32_t diff = toggles[j] - toggles[j - 1];
    if (diff > 0) {
      counts.push_back(diff);
      ++j;
    } else {
      ++j;
      if (j < toggles.size()) counts.back() += toggles[j] - toggles[j - 1];
      ++j;
    }
  }
  return counts;
}

void check_polygon(const std::vector<double>& xy, const std::string& name) {
  PRM_CHECK(xy.size() % 2 == 0, name, ": ", xy.size(), " coordinates, an odd number");
  PRM_CHECK(xy.size() >= 6, name, ": ", xy.size() / 2, " point", xy.size() == 2 ? "" : "s",
            ", at least 3 needed");
  for (size_t i = 0; i < xy.size(); ++i) {
    PRM_CHECK(std::abs(xy[i]) <= kMaxPolygonCoordinate, name, ": coordinate ", i, " (", xy[i],
              ") is outside +-", kMaxPolygonCoordinate);
  }
}

Rle rasterise_polygon(const std::vector<double>& xy, uint32_t h, uint32_t w) {
  PRM_CHECK(pixel_count(h, w) < kMaxPixels, "RLE size [", h, ", ", w, "] has 2^32 pixels or more");
  const size_t k = xy.size() / 2;
  std::vector<uint32_t> toggles;
  for (size_t j = 0; j < k; ++j) {
    const size_t n = (j + 1) % k;  // the last edge closes the polygon
    edge_toggles(toggles, to_fine(xy[2 * j]), to_fine(xy[2 * j + 1]), to_fine(xy[2 * n]),
                 to_fine(xy[2 * n + 1]), h, w);
  }
  return Rle{h, w, counts_from_toggles(toggles, h, w)};
}

}  // namespace

Rle rle_from_polygon(const std::vector<double>& xy, uint32_t h, uint32_t w) {
  check_polygon(xy, "segmentation polygon");
  return rasterise_polygon(xy, h, w);
}

Rle rle_from_polygons(const std::vector<std::vector<double>>& parts, uint32_t h, uint32_t w) {
  PRM_CHECK(!parts.empty(), "segmentation: no polygon");
  for (size_t i = 0; i < parts.size(); ++i)
    check_polygon(parts[i], str_cat("segmentation polygon ", i));
  Rle merged = rasterise_polygon(parts[0], h, w);
  for (size_t i = 1; i < parts.size(); ++i)
    merged = rle_merge(merged, rasterise_polygon(parts[i], h, w), false);
  return merged;
}

// ---- measures ----

uint32_t rle_area(const Rle& rle) {
  uint32_t a = 0;
  for (size_t j = 1; j < rle.counts.size(); j += 2) a += rle.counts[j];
  return a;
}

namespace {

// Column and row of column-major pixel number t. Run boundaries mostly move forward by less than
// a column or two, so the column is stepped forward rather than divided out (a division per
// boundary was a quarter of evaluate_segm's time); far jumps and steps back divide.
struct PixelLocator {
  uint32_t h, col = 0, col_start = 0;

  void locate(uint32_t t, uint32_t& x, uint32_t& y) {
    if (t < col_start || t - col_start >= uint64_t(4) * h) {
      col = t / h;
      col_start = col * h;
    } else {
      while (t - col_start >= h) {
        ++col;
        col_start += h;
      }
    }
    x = col;
    y = t - col_start;
  }
};

}  // namespace

std::array<double, 4> rle_to_bbox(const Rle& rle) {
  // Each run of ones spans pixels [first, last]; a run that wraps into another column covers
  // the full height. Only complete (zeros, ones) pairs are read, as pycocotools does, with its
  // uint32 arithmetic (a zero-length run's "last" pixel is the one before its first).
  const size_t m = rle.counts.size() / 2 * 2;
  if (m == 0 || rle.h == 0 || rle.w == 0) return {0, 0, 0, 0};
  const uint32_t h = rle.h;
  PixelLocator at{h};
  uint32_t xs = rle.w, ys = h, xe = 0, ye = 0, x_first = 0, cc = 0;
  for (size_t j = 0; j < m; ++j) {
    cc += rle.counts[j];
    uint32_t x, y;
    at.locate(cc - uint32_t(j % 2), x, y);  // first pixel of a ones run, or last of one
    if (j % 2 == 0) {
      x_first = x;
    } else if (x_first < x) {
      ys = 0;
      ye = h - 1;
    }
    xs = std::min(xs, x);
    xe = std::max(xe, x);
    ys = std::min(ys, y);
    ye = std::max(ye, y);
  }
  return {double(xs), double(ys), double(xe - xs + 1), double(ye - ys + 1)};
}

namespace {

// Walks two RLEs run boundary by run boundary, as pycocotools does: each step advances by the
// shorter of the two current runs and moves on to the next run of each side that is used up
// (one run per side per step), and the walk ends when both current runs are empty. visit(c, a, b)
// sees each stretch of c pixels with the two sides' values. (With zero-length runs inside the
// counts, which no encoder writes, the walk can end early; it does so here too.)
template <typename Visit>
void walk_runs(const Rle& A, const Rle& B, Visit&& visit) {
  static const uint32_t kEmpty = 0;
  const uint32_t* a = A.counts.empty() ? &kEmpty : A.counts.data();
  const uint32_t* b = B.counts.empty() ? &kEmpty : B.counts.data();
  const size_t na = std::max<size_t>(1, A.counts.size()), nb = std::max<size_t>(1, B.counts.size());
  uint64_t ca = a[0], cb = b[0];
  size_t ia = 1, ib = 1;
  bool va = false, vb = false;
  for (;;) {
    const uint64_t c = std::min(ca, cb);
    ca -= c;
    cb -= c;
    const bool va_before = va, vb_before = vb;
    if (ca == 0 && ia < na) {
      ca = a[ia++];
      va = !va;
    }
    if (cb == 0 && ib < nb) {
      cb = b[ib++];
      vb = !vb;
    }
    const bool last = ca + cb == 0;
    visit(c, va_before, vb_before, va, vb, last);
    if (last) break;
  }
}

}  // namespace

Rle rle_merge(const Rle& A, const Rle& B, bool intersect) {
  PRM_CHECK(A.h == B.h && A.w == B.w, "RLE merge: sizes [", A.h, ", ", A.w, "] and [", B.h, ", ",
            B.w, "] differ");
  Rle out{A.h, A.w, {}};
  uint64_t run = 0;
  bool v = false;
  walk_runs(A, B, [&](uint64_t c, bool, bool, bool va, bool vb, bool last) {
    // pycocotools looks at the values after the step's advance: a run ends where they change.
    run += c;
    const bool next = intersect ? (va && vb) : (va || vb);
    if (next != v || last) {
      out.counts.push_back(static_cast<uint32_t>(run));
      run = 0;
    }
    v = next;
  });
  return out;
}

Rle rle_merge(const std::vector<Rle>& rles, bool intersect) {
  PRM_CHECK(!rles.empty(), "RLE merge: no masks");
  Rle out = rles[0];
  for (size_t i = 1; i < rles.size(); ++i) out = rle_merge(out, rles[i], intersect);
  return out;
}

namespace {

bool boxes_overlap(const std::array<double, 4>& d, const std::array<double, 4>& g) {
  // pycocotools' box IoU is positive exactly when both overlaps are.
  const double ow = std::fmin(d[2] + d[0], g[2] + g[0]) - std::fmax(d[0], g[0]);
  if (ow <= 0) return false;
  const double oh = std::fmin(d[3] + d[1], g[3] + g[1]) - std::fmax(d[1], g[1]);
  return oh > 0;
}

double iou_of_runs(const Rle& dt, const Rle& gt, bool gt_crowd) {
  if (dt.h != gt.h || dt.w != gt.w) return -1;
  uint64_t inter = 0, uni = 0;
  walk_runs(dt, gt, [&](uint64_t c, bool va, bool vb, bool, bool, bool) {
    if (va || vb) uni += c;
    if (va && vb) inter += c;
  });
  if (inter == 0) return 0;
  if (gt_crowd) uni = rle_area(dt);
  return static_cast<double>(inter) / static_cast<double>(uni);
}

}  // namespace

double rle_iou(const Rle& dt, const Rle& gt, bool gt_crowd) {
  if (!boxes_overlap(rle_to_bbox(dt), rle_to_bbox(gt))) return 0;
  return iou_of_runs(dt, gt, gt_crowd);
}

void rle_iou_matrix(double* iou, const Rle* const* dts, size_t D, const Rle* const* gts,
                    const uint8_t* gt_crowd, size_t G) {
  std::vector<std::array<double, 4>> gt_boxes(G);
  for (size_t g = 0; g < G; ++g) gt_boxes[g] = rle_to_bbox(*gts[g]);
  for (size_t d = 0; d < D; ++d) {
    const std::array<double, 4> box = rle_to_bbox(*dts[d]);
    for (size_t g = 0; g < G; ++g) {
      iou[d * G + g] = boxes_overlap(box, gt_boxes[g])
                           ? iou_of_runs(*dts[d], *gts[g], gt_crowd[g] != 0)
                           : 0;
    }
  }
}

}  // namespace prm::coco
