#include "prm/instances.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tensor/error.h"

namespace prm {

namespace {

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
