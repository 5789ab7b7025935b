#include "prm/instances.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tensor/error.h"

namespace prm {

namespace {

// Keys' cubic convolution kernel with a = -0.75 (torch's choice), split at |x| = 1.
constexpr double kCubicA = -0.75;
double cubic_near(double x) { return ((kCubicA + 2) * x - (kCubicA + 3)) * x * x + 1; }  // |x|<=1
double cubic_far(double x) {  // 1 < |x| < 2
  return ((kCubicA * x - 5 * kCubicA) * x + 8 * kCubicA) * x - 4 * kCubicA;
}

struct CubicTaps {
  int index[4];
  double weight[4];
};

// The 4 source taps of output index `dst` when `in` samples are resized to `out`.
CubicTaps cubic_taps(int dst, int in, int out) {
  const double scale = static_cast<double>(in) / out;
  const double src = (dst + 0.5) * scale - 0.5;
  const double base = std::floor(src);
  const double t = src - base;
  CubicTaps taps;
  taps.weight[0] = cubic_far(t + 1);
  taps.weight[1] = cubic_near(t);
  taps.weight[2] = cubic_near(1 - t);
  taps.weight[3] = cubic_far(2 - t);
  for (int k = 0; k < 4; ++k) {
    taps.index[k] = std::clamp(static_cast<int>(base) - 1 + k, 0, in - 1);
  }
  return taps;
}

// Inclusive bounds of the on pixels of a mask; false when it has none.
bool bounding_box(const Mask& m, int* y0, int* y1, int* x0, int* x1) {
  *y0 = m.height;
  *y1 = -1;
  *x0 = m.width;
  *x1 = -1;
  for (int y = 0; y < m.height; ++y) {
    for (int x = 0; x < m.width; ++x) {
      if (!m.at(y, x)) continue;
      *y0 = std::min(*y0, y);
      *y1 = std::max(*y1, y);
      *x0 = std::min(*x0, x);
      *x1 = std::max(*x1, x);
    }
  }
  return *y1 >= 0;
}

// The morphological gradient of `mask` with a (2r+1)-square, calling emit(y, x) for each pixel on
// it, column by column.
template <typename Emit>
void gradient_pixels(const Mask& mask, int r, int y0, int y1, int x0, int x1, Emit emit) {
  // On 0/1 values a square dilation is "some on pixel in the window" and the erosion "every
  // in-image pixel of the window on", so both come from one count of on pixels per window, row
  // pass then column pass (separable). Only the bounding box (y0..y1, x0..x1) of the on pixels
  // grown by r can be on the contour.
  const int H = mask.height, W = mask.width;
  const int ry0 = std::max(0, y0 - r), ry1 = std::min(H - 1, y1 + r);
  const int rx0 = std::max(0, x0 - r), rx1 = std::min(W - 1, x1 + r);
  const int RH = ry1 - ry0 + 1, RW = rx1 - rx0 + 1;
  // Row pass: dilated / eroded along x, for the rows and columns of the region.
  std::vector<uint8_t> row_dil(static_cast<size_t>(RH) * RW), row_ero(row_dil.size());
  std::vector<int> prefix(RW + 1);
  for (int y = ry0; y <= ry1; ++y) {
    for (int x = rx0; x <= rx1; ++x) prefix[x - rx0 + 1] = prefix[x - rx0] + (mask.at(y, x) != 0);
    for (int x = rx0; x <= rx1; ++x) {
      const int lo = std::max(0, x - r), hi = std::min(W - 1, x + r);  // in-image window
      const int on = prefix[std::min(hi, rx1) - rx0 + 1] - prefix[std::max(lo, rx0) - rx0];
      const size_t i = static_cast<size_t>(y - ry0) * RW + (x - rx0);
      row_dil[i] = on > 0;
      row_ero[i] = on == hi - lo + 1;  // pixels outside the region are off
    }
  }
  // Column pass over the row results; rows outside the region hold 0 for both.
  std::vector<int> dil_prefix(RH + 1), ero_prefix(RH + 1);
  for (int x = rx0; x <= rx1; ++x) {
    for (int y = ry0; y <= ry1; ++y) {
      const size_t i = static_cast<size_t>(y - ry0) * RW + (x - rx0);
      dil_prefix[y - ry0 + 1] = dil_prefix[y - ry0] + row_dil[i];
      ero_prefix[y - ry0 + 1] = ero_prefix[y - ry0] + row_ero[i];
    }
    for (int y = ry0; y <= ry1; ++y) {
      const int lo = std::max(0, y - r), hi = std::min(H - 1, y + r);
      const int a = std::max(lo, ry0) - ry0, b = std::min(hi, ry1) - ry0 + 1;
      const bool dilated = dil_prefix[b] - dil_prefix[a] > 0;
      const bool eroded = ero_prefix[b] - ero_prefix[a] == hi - lo + 1;
      if (dilated && !eroded) emit(y, x);
    }
  }
}

// The contour pixels (row-major indices) of a proposal whose on pixels are `inside`.
std::vector<int32_t> contour_pixels(const Mask& mask, const std::vector<int32_t>& inside,
                                    int size) {
  std::vector<int32_t> out;
  if (inside.empty()) return out;
  const int W = mask.width;
  int x0 = W, x1 = -1;
  for (int32_t i : inside) {
    x0 = std::min(x0, i % W);
    x1 = std::max(x1, i % W);
  }
  gradient_pixels(mask, size / 2, inside.front() / W, inside.back() / W, x0, x1,
                  [&](int y, int x) { out.push_back(y * W + x); });
  std::sort(out.begin(), out.end());
  return out;
}

bool all_finite(const float* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(p[i])) return false;
  }
  return true;
}

// Checks what extract_instances and proposal_scores are given (K >= 1).
void validate(const std::vector<PeakPrm>& prms, const float* crms, int C, int h, int w,
              const std::vector<Mask>& proposals, const InstanceOptions& opts) {
  const char* op = "extract_instances";
  PRM_CHECK(opts.proposal_limit >= 0, op, ": proposal_limit must be >= 0, got ",
            opts.proposal_limit);
  PRM_CHECK(std::isfinite(opts.area_penalty) && opts.area_penalty >= 0, op,
            ": area_penalty must be finite and >= 0, got ", opts.area_penalty);
  PRM_CHECK(opts.contour_width >= 1 && opts.contour_width % 2 == 1, op,
            ": contour_width must be odd and >= 1, got ", opts.contour_width);
  const int H = prms[0].height, W = prms[0].width;
  PRM_CHECK(H > 0 && W > 0, op, ": PRM 0 has size ", H, "x", W);
  for (size_t k = 0; k < prms.size(); ++k) {
    const PeakPrm& p = prms[k];
    PRM_CHECK(p.height == H && p.width == W, op, ": PRM ", k, " is ", p.height, "x", p.width,
              ", PRM 0 is ", H, "x", W);
    PRM_CHECK(p.prm.size() == static_cast<size_t>(H) * W, op, ": PRM ", k, " holds ",
              p.prm.size(), " values, its size ", H, "x", W, " needs ",
              static_cast<size_t>(H) * W);
    PRM_CHECK(all_finite(p.prm.data(), p.prm.size()), op, ": PRM ", k,
              " has a non-finite value");
    PRM_CHECK(p.peak.c >= 0 && p.peak.c < C, op, ": peak ", k, " has class ", p.peak.c,
              ", the CRMs have ", C,
              " classes");
  }
  PRM_CHECK(crms != nullptr && C > 0 && h > 0 && w > 0, op, ": no CRMs given (C=", C, ", h=", h,
            ", w=", w, ")");
  PRM_CHECK(all_finite(crms, static_cast<size_t>(C) * h * w), op, ": a CRM has a non-finite value");
  for (size_t j = 0; j < proposals.size(); ++j) {
    const Mask& m = proposals[j];
    PRM_CHECK(m.height == H && m.width == W, op, ": proposal ", j, " is ", m.height, "x", m.width,
              ", the PRMs are ", H, "x", W);
    PRM_CHECK(m.data.size() == static_cast<size_t>(H) * W, op, ": proposal ", j, " holds ",
              m.data.size(), " bytes for a ", H, "x", W, " mask");
  }
}

// Indices of the proposals that are scored: the official order is the first proposal_limit
// proposals, then the size filter area in [min_area, max_area) of the image.
std::vector<int> considered_proposals(const std::vector<Mask>& proposals, int H, int W,
                                      const InstanceOptions& opts) {
  const double image_area = static_cast<double>(H) * W;
  std::vector<int> kept;
  const int P = static_cast<int>(proposals.size());
  const int first = opts.filter_before_limit ? P : std::min(P, opts.proposal_limit);
  for (int j = 0; j < first; ++j) {
    if (opts.filter_before_limit && static_cast<int>(kept.size()) >= opts.proposal_limit) break;
    const double area = static_cast<double>(proposals[j].area());
    if (area >= opts.max_area * image_area || area < opts.min_area * image_area) continue;
    kept.push_back(j);
  }
  return kept;
}

// Q for one class: [bicubic-upsampled CRM < factor * mean of the upsampled CRM].
std::vector<uint8_t> background_prior(const float* crm, int h, int w, int H, int W,
                                      double factor) {
  const std::vector<float> up = bicubic_upsample(crm, h, w, H, W);
  const double mean = std::accumulate(up.begin(), up.end(), 0.0) / static_cast<double>(up.size());
  std::vector<uint8_t> q(up.size());
  for (size_t i = 0; i < up.size(); ++i) q[i] = up[i] < factor * mean;
  return q;
}

std::vector<int32_t> on_pixels(const std::vector<uint8_t>& data) {
  std::vector<int32_t> idx;
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i]) idx.push_back(static_cast<int32_t>(i));
  }
  return idx;
}

// sums[k] = sum over the listed pixels i of values[i * K + k], in double.
void sum_rows(double* sums, const float* values, size_t K, const std::vector<int32_t>& idx) {
  std::fill(sums, sums + K, 0.0);
  for (int32_t i : idx) {
    const float* row = values + static_cast<size_t>(i) * K;
    for (size_t k = 0; k < K; ++k) sums[k] += row[k];
  }
}

// The score matrix [K][P] after validation (-inf for proposals not considered).
std::vector<std::vector<double>> score_matrix(const std::vector<PeakPrm>& prms, const float* crms,
                                              int C, int h, int w,
                                              const std::vector<Mask>& proposals,
                                              const InstanceOptions& opts) {
  const double ninf = -std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> scores(prms.size(),
                                          std::vector<double>(proposals.size(), ninf));
  if (prms.empty()) return scores;
  validate(prms, crms, C, h, w, proposals, opts);
  const int H = prms[0].height, W = prms[0].width;
  const std::vector<int> considered = considered_proposals(proposals, H, W, opts);
  if (considered.empty()) return scores;

  // Background priors of the classes that have peaks, built once per class.
  std::vector<std::vector<uint8_t>> background(C);
  for (const PeakPrm& p : prms) {
    std::vector<uint8_t>& q = background[p.peak.c];
    if (q.empty()) {
      q = background_prior(crms + p.peak.c * static_cast<size_t>(h) * w, h, w, H, W,
                           opts.background_factor);
    }
  }
  // The PRMs interleaved pixel-major ([H*W][K]), so that summing all K maps over a proposal's
  // pixels reads memory in order.
  const size_t K = prms.size(), HW = static_cast<size_t>(H) * W;
  std::vector<float> interleaved(HW * K);
  for (size_t k = 0; k < K; ++k) {
    for (size_t i = 0; i < HW; ++i) interleaved[i * K + k] = prms[k].prm[i];
  }
  std::vector<double> in_mask(K), on_contour(K);
  for (int j : considered) {
    const Mask& s = proposals[j];
    const std::vector<int32_t> inside = on_pixels(s.data);
    const std::vector<int32_t> contour = contour_pixels(s, inside, opts.contour_width);
    sum_rows(in_mask.data(), interleaved.data(), K, inside);
    sum_rows(on_contour.data(), interleaved.data(), K, contour);
    std::vector<int64_t> background_inside(C, -1);  // sum(Q over S) per class, when needed
    const double area_term = opts.area_penalty * static_cast<double>(inside.size()) /
                             static_cast<double>(HW);
    for (size_t k = 0; k < K; ++k) {
      const int c = static_cast<int>(prms[k].peak.c);
      if (background_inside[c] < 0) {
        int64_t n = 0;
        for (int32_t i : inside) n += background[c][i];
        background_inside[c] = n;
      }
      scores[k][j] = opts.balance * in_mask[k] + on_contour[k] -
                     opts.penalty * static_cast<double>(background_inside[c]) - area_term;
    }
  }
  return scores;
}

}  // namespace

void bicubic_upsample(float* out, const float* in, int h, int w, int H, int W) {
  PRM_CHECK(h > 0 && w > 0 && H > 0 && W > 0, "bicubic_upsample: sizes must be positive, got ",
            h, "x", w, " -> ", H, "x", W);
  // Along x for every input row, then along y: the same sum as torch's 4x4 taps per output.
  std::vector<double> rows(static_cast<size_t>(h) * W);
  for (int x = 0; x < W; ++x) {
    const CubicTaps t = cubic_taps(x, w, W);
    for (int y = 0; y < h; ++y) {
      const float* r = in + static_cast<size_t>(y) * w;
      double v = 0;
      for (int k = 0; k < 4; ++k) v += t.weight[k] * r[t.index[k]];
      rows[static_cast<size_t>(y) * W + x] = v;
    }
  }
  for (int y = 0; y < H; ++y) {
    const CubicTaps t = cubic_taps(y, h, H);
    for (int x = 0; x < W; ++x) {
      double v = 0;
      for (int k = 0; k < 4; ++k) v += t.weight[k] * rows[static_cast<size_t>(t.index[k]) * W + x];
      out[static_cast<size_t>(y) * W + x] = static_cast<float>(v);
    }
  }
}

std::vector<float> bicubic_upsample(const float* in, int h, int w, int H, int W) {
  std::vector<float> out(static_cast<size_t>(std::max(H, 0)) * std::max(W, 0));
  bicubic_upsample(out.data(), in, h, w, H, W);
  return out;
}

Mask morphological_gradient(const Mask& mask, int size) {
  PRM_CHECK(size >= 1 && size % 2 == 1, "morphological_gradient: size must be odd and >= 1, got ",
            size);
  PRM_CHECK(mask.height >= 0 && mask.width >= 0 &&
                mask.data.size() == static_cast<size_t>(mask.height) * mask.width,
            "morphological_gradient: mask data holds ", mask.data.size(), " bytes for ",
            mask.height, "x", mask.width);
  Mask out(mask.height, mask.width);
  int y0, y1, x0, x1;
  if (!bounding_box(mask, &y0, &y1, &x0, &x1)) return out;
  gradient_pixels(mask, size / 2, y0, y1, x0, x1, [&](int y, int x) { out.at(y, x) = 1; });
  return out;
}

Mask resize_mask_nearest(const Mask& mask, int height, int width) {
  PRM_CHECK(mask.height > 0 && mask.width > 0 && height > 0 && width > 0,
            "resize_mask_nearest: sizes must be positive, got ", mask.height, "x", mask.width,
            " -> ", height, "x", width);
  Mask out(height, width);
  for (int y = 0; y < height; ++y) {
    const int sy = std::min(mask.height - 1, static_cast<int>((y + 0.5) * mask.height / height));
    for (int x = 0; x < width; ++x) {
      const int sx = std::min(mask.width - 1, static_cast<int>((x + 0.5) * mask.width / width));
      out.at(y, x) = mask.at(sy, sx) != 0;
    }
  }
  return out;
}

double mask_iou(const Mask& a, const Mask& b) {
  PRM_CHECK(a.height == b.height && a.width == b.width && a.data.size() == b.data.size(),
            "mask_iou: masks are ", a.height, "x", a.width, " and ", b.height, "x", b.width);
  int64_t inter = 0, uni = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    const bool x = a.data[i] != 0, y = b.data[i] != 0;
    inter += x && y;
    uni += x || y;
  }
  return uni == 0 ? 0.0 : static_cast<double>(inter) / static_cast<double>(uni);
}

std::vector<PeakPrm> make_peak_prms(const std::vector<Peak>& peaks, const float* prms, int H,
                                    int W) {
  PRM_CHECK(H > 0 && W > 0, "make_peak_prms: bad PRM size ", H, "x", W);
  std::vector<PeakPrm> out(peaks.size());
  const size_t n = static_cast<size_t>(H) * W;
  for (size_t k = 0; k < peaks.size(); ++k) {
    PeakPrm& p = out[k];
    p.peak = peaks[k];
    p.height = H;
    p.width = W;
    p.prm.assign(prms + k * n, prms + (k + 1) * n);
  }
  return out;
}

std::vector<std::vector<double>> proposal_scores(const std::vector<PeakPrm>& prms,
                                                 const float* crms, int C, int h, int w,
                                                 const std::vector<Mask>& proposals,
                                                 const InstanceOptions& opts) {
  return score_matrix(prms, crms, C, h, w, proposals, opts);
}

std::vector<Instance> extract_instances(const std::vector<PeakPrm>& prms, const float* crms,
                                        int C, int h, int w, const std::vector<Mask>& proposals,
                                        const InstanceOptions& opts) {
  const std::vector<std::vector<double>> scores =
      score_matrix(prms, crms, C, h, w, proposals, opts);
  std::vector<Instance> found;
  for (size_t k = 0; k < prms.size(); ++k) {
    const PeakPrm& p = prms[k];
    if (std::all_of(p.prm.begin(), p.prm.end(), [](float v) { return v == 0.0f; })) continue;
    int best = -1;
    double best_score = -std::numeric_limits<double>::infinity();
    for (size_t j = 0; j < proposals.size(); ++j) {
      if (scores[k][j] > best_score) {  // strict: the first proposal wins a tie
        best_score = scores[k][j];
        best = static_cast<int>(j);
      }
    }
    if (best < 0) continue;
    Instance inst;
    inst.score = best_score;
    inst.peak = p.peak;
    inst.proposal = best;
    inst.mask = proposals[best];
    for (uint8_t& v : inst.mask.data) v = v != 0;
    inst.prm = p.prm;
    inst.peak_index = static_cast<int>(k);
    found.push_back(std::move(inst));
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const Instance& a, const Instance& b) { return a.score > b.score; });
  return instance_nms(std::move(found), opts);
}

std::vector<Instance> instance_nms(std::vector<Instance> sorted, const InstanceOptions& opts) {
  std::vector<bool> alive(sorted.size(), true);
  std::vector<Instance> kept;
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (!alive[i]) continue;
    Instance& keep = sorted[i];
    for (size_t j = i + 1; j < sorted.size(); ++j) {
      if (!alive[j]) continue;
      const Instance& other = sorted[j];
      if (!opts.nms_across_classes && other.peak.c != keep.peak.c) continue;
      if (mask_iou(keep.mask, other.mask) < opts.nms_iou) continue;
      alive[j] = false;
      keep.merged_peaks.push_back(other.peak_index);
      if (opts.merge_prms) {
        PRM_CHECK(other.prm.size() == keep.prm.size(), "instance_nms: PRM sizes differ (",
                  other.prm.size(), " vs ", keep.prm.size(), ")");
        for (size_t t = 0; t < keep.prm.size(); ++t) keep.prm[t] += other.prm[t];
      }
    }
    kept.push_back(std::move(keep));
  }
  return kept;
}

LabelMaps instance_label_maps(const std::vector<Instance>& instances, int height, int width) {
  PRM_CHECK(height >= 0 && width >= 0, "instance_label_maps: bad size ", height, "x", width);
  LabelMaps maps;
  maps.height = height;
  maps.width = width;
  maps.instance_labels.assign(static_cast<size_t>(height) * width, 0);
  maps.class_labels.assign(static_cast<size_t>(height) * width, 0);
  // Ascending score; among equal scores the later instance first, so the earlier one paints last.
  std::vector<size_t> order(instances.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (instances[a].score != instances[b].score) return instances[a].score < instances[b].score;
    return a > b;
  });
  for (size_t i : order) {
    const Mask& m = instances[i].mask;
    PRM_CHECK(m.height == height && m.width == width && m.data.size() == maps.class_labels.size(),
              "instance_label_maps: instance ", i, " has a ", m.height, "x", m.width,
              " mask, the map is ", height, "x", width);
    for (size_t p = 0; p < m.data.size(); ++p) {
      if (!m.data[p]) continue;
      maps.instance_labels[p] = static_cast<int32_t>(i + 1);
      maps.class_labels[p] = static_cast<int32_t>(instances[i].peak.c + 1);
    }
  }
  return maps;
}

}  // namespace prm
