// COCOeval (iouType 'segm') on plain data; coco_eval.h states the rules. Three steps:
//   1. index: ground truths and detections grouped by (category, image), input order kept;
//   2. per group (in parallel): IoUs, then pycocotools' evaluateImg for each area range, kept as
//      two bit sets per detection and area range (matched / ignored, one bit per threshold);
//   3. per category (in parallel): accumulate(), then summarize() on the arrays.
#include "data/coco_eval.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "tensor/error.h"

namespace prm::coco {

namespace {

constexpr int T = kNumIouThresholds, R = kNumRecallThresholds, A = kNumAreaRanges, M = kNumMaxDets;
constexpr int kMaxDetsUsed = kMaxDets[M - 1];

// numpy.linspace(start, stop, num): start + i * ((stop - start) / (num - 1)), the last one = stop.
template <size_t N>
std::array<double, N> linspace(double start, double stop) {
  std::array<double, N> v{};
  const double step = (stop - start) / static_cast<double>(N - 1);
  for (size_t i = 0; i < N; ++i) v[i] = static_cast<double>(i) * step + start;
  v[N - 1] = stop;
  return v;
}

// The sorted distinct ids and a map id -> position.
struct IdIndex {
  std::vector<int64_t> ids;
  std::unordered_map<int64_t, uint32_t> position;

  explicit IdIndex(std::vector<int64_t> list) : ids(std::move(list)) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    position.reserve(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) position.emplace(ids[i], static_cast<uint32_t>(i));
  }
  int64_t find(int64_t id) const {
    const auto it = position.find(id);
    return it == position.end() ? -1 : int64_t(it->second);
  }
};

// The entries (of an image and a category in the index) ordered by (category, image), input
// order kept within each: a stable counting sort by image, then by category.
template <typename Entry>
std::vector<uint32_t> group_order(const std::vector<Entry>& entries, const IdIndex& images,
                                  const IdIndex& categories, std::vector<uint64_t>& keys) {
  std::vector<uint32_t> image_of, category_of, kept;
  for (size_t n = 0; n < entries.size(); ++n) {
    const int64_t i = images.find(entries[n].image_id);
    const int64_t k = categories.find(entries[n].category_id);
    if (i < 0 || k < 0) continue;
    kept.push_back(static_cast<uint32_t>(n));
    image_of.push_back(static_cast<uint32_t>(i));
    category_of.push_back(static_cast<uint32_t>(k));
  }
  auto counting_sort = [&](const std::vector<uint32_t>& order, const std::vector<uint32_t>& bucket,
                           size_t buckets) {
    std::vector<uint32_t> start(buckets + 1, 0), out(order.size());
    for (uint32_t j : order) ++start[bucket[j] + 1];
    std::partial_sum(start.begin(), start.end(), start.begin());
    for (uint32_t j : order) out[start[bucket[j]]++] = j;
    return out;
  };
  std::vector<uint32_t> order(kept.size());
  std::iota(order.begin(), order.end(), 0u);
  order = counting_sort(order, image_of, images.ids.size());
  order = counting_sort(order, category_of, categories.ids.size());
  keys.resize(order.size());
  std::vector<uint32_t> result(order.size());
  for (size_t j = 0; j < order.size(); ++j) {
    keys[j] = uint64_t(category_of[order[j]]) * images.ids.size() + image_of[order[j]];
    result[j] = kept[order[j]];
  }
  return result;
}

// One (category, image) with a ground truth or a detection (pycocotools' evalImgs entries that
// are not None).
struct Group {
  uint32_t k = 0;
  size_t gt_begin = 0, gt_end = 0;  // into gt_order
  size_t dt_begin = 0, dt_end = 0;  // into dt_order (input order)
  size_t slot = 0;                  // first of its kept detections in the DetResult array
  std::array<uint32_t, A> non_ignored_gts{};
};

// A kept detection (one of the first 100 of its group by score), in its group's score order.
struct DetResult {
  double score = 0;
  uint32_t rank = 0;                // position in its group's score order
  std::array<uint16_t, A> matched{};  // bit t: matched to a ground truth (with id != 0)
  std::array<uint16_t, A> ignored{};  // bit t
};

std::vector<Group> make_groups(const std::vector<uint64_t>& gt_keys,
                               const std::vector<uint64_t>& dt_keys, size_t num_images) {
  std::vector<Group> groups;
  size_t g = 0, d = 0;
  while (g < gt_keys.size() || d < dt_keys.size()) {
    const uint64_t key = std::min(g < gt_keys.size() ? gt_keys[g] : UINT64_MAX,
                                  d < dt_keys.size() ? dt_keys[d] : UINT64_MAX);
    Group group;
    group.k = static_cast<uint32_t>(key / num_images);
    group.gt_begin = g;
    while (g < gt_keys.size() && gt_keys[g] == key) ++g;
    group.gt_end = g;
    group.dt_begin = d;
    while (d < dt_keys.size() && dt_keys[d] == key) ++d;
    group.dt_end = d;
    groups.push_back(group);
  }
  return groups;
}

// Scratch space of one thread for evaluate_group: one group's detections (kept ones, in score
// order) and ground truths (input order), their IoUs, and the matching's working state.
struct GroupScratch {
  std::vector<uint32_t> dts;  // detection indices in score order
  std::vector<const Rle*> dt_masks, gt_masks;
  std::vector<double> dt_area, gt_area;
  std::vector<int64_t> gt_id;
  std::vector<uint8_t> crowd, ignore, taken;
  std::vector<double> iou;      // [D][G]
  std::vector<uint32_t> order;  // ground truths, non-ignored first
};

// pycocotools' evaluateImg for one area range: the greedy matching at every threshold, into the
// detections' bits for that range. Returns the number of non-ignored ground truths.
uint32_t match_area_range(DetResult* results, int a, GroupScratch& s) {
  const auto& thresholds = iou_thresholds();
  const size_t D = s.dt_masks.size(), G = s.gt_masks.size();
  const double lo = kAreaRanges[a][0], hi = kAreaRanges[a][1];
  s.order.clear();
  for (size_t g = 0; g < G; ++g) {
    s.ignore[g] = s.crowd[g] || s.gt_area[g] < lo || s.gt_area[g] > hi;
    if (!s.ignore[g]) s.order.push_back(static_cast<uint32_t>(g));
  }
  const uint32_t non_ignored = static_cast<uint32_t>(s.order.size());
  for (size_t g = 0; g < G; ++g)
    if (s.ignore[g]) s.order.push_back(static_cast<uint32_t>(g));

  for (int t = 0; t < T; ++t) {
    std::fill(s.taken.begin(), s.taken.end(), 0);
    const uint16_t bit = uint16_t(1u << t);
    for (size_t d = 0; d < D; ++d) {
      double best = std::min(thresholds[t], 1 - 1e-10);
      int64_t m = -1;
      for (uint32_t g : s.order) {
        if (s.taken[g] && !s.crowd[g]) continue;
        // Holding a non-ignored ground truth, stop at the first ignored one.
        if (m >= 0 && !s.ignore[m] && s.ignore[g]) break;
        if (s.iou[d * G + g] < best) continue;
        best = s.iou[d * G + g];
        m = g;
      }
      if (m < 0) continue;
      if (s.ignore[m]) results[d].ignored[a] |= bit;
      if (s.gt_id[m] != 0) results[d].matched[a] |= bit;
      s.taken[m] = 1;
    }
  }
  // Detections left unmatched outside the area range are ignored.
  for (size_t d = 0; d < D; ++d) {
    if (s.dt_area[d] < lo || s.dt_area[d] > hi)
      results[d].ignored[a] |= uint16_t(~results[d].matched[a]);
  }
  return non_ignored;
}

// pycocotools' computeIoU + evaluateImg for every area range, into results[0, kept).
void evaluate_group(Group& group, DetResult* results, const std::vector<uint32_t>& gt_order,
                    const std::vector<uint32_t>& dt_order,
                    const std::vector<GroundTruth>& ground_truths,
                    const std::vector<Detection>& detections, GroupScratch& s) {
  s.dts.assign(dt_order.begin() + group.dt_begin, dt_order.begin() + group.dt_end);
  std::stable_sort(s.dts.begin(), s.dts.end(), [&](uint32_t a, uint32_t b) {
    return detections[a].score > detections[b].score;
  });
  const size_t D = std::min<size_t>(s.dts.size(), kMaxDetsUsed);
  const size_t G = group.gt_end - group.gt_begin;
  s.dt_masks.resize(D);
  s.dt_area.resize(D);
  for (size_t d = 0; d < D; ++d) {
    s.dt_masks[d] = &detections[s.dts[d]].mask;
    const double area = detections[s.dts[d]].area;  // loadRes' area
    s.dt_area[d] = area >= 0 ? area : static_cast<double>(rle_area(*s.dt_masks[d]));
    results[d] = DetResult{};
    results[d].score = detections[s.dts[d]].score;
    results[d].rank = static_cast<uint32_t>(d);
  }
  s.gt_masks.resize(G);
  s.gt_area.resize(G);
  s.gt_id.resize(G);
  s.crowd.resize(G);
  s.ignore.resize(G);
  s.taken.resize(G);
  for (size_t g = 0; g < G; ++g) {
    const GroundTruth& gt = ground_truths[gt_order[group.gt_begin + g]];
    s.gt_masks[g] = &gt.mask;
    s.gt_area[g] = gt.area;
    s.gt_id[g] = gt.id;
    s.crowd[g] = gt.iscrowd;
  }
  s.iou.resize(D * G);
  rle_iou_matrix(s.iou.data(), s.dt_masks.data(), D, s.gt_masks.data(), s.crowd.data(), G);
  for (int a = 0; a < A; ++a) group.non_ignored_gts[a] = match_area_range(results, a, s);
}

// accumulate() for one (category, area range, maxDets): precision at the recall points and the
// final recall for every threshold. `ranked` are the category's kept detections in score order.
void accumulate_setting(double* precision_out /* [T][R], stride R */, double* recall_out /* [T] */,
                        const std::vector<const DetResult*>& ranked, int a, int max_dets,
                        uint32_t non_ignored) {
  const auto& recall_points = recall_thresholds();
  const double eps = std::numeric_limits<double>::epsilon();  // numpy.spacing(1)
  std::array<std::vector<double>, T> tp_precision;  // precision at each true positive
  std::array<uint32_t, T> tp{}, fp{};
  for (const DetResult* r : ranked) {
    if (r->rank >= uint32_t(max_dets)) continue;
    for (int t = 0; t < T; ++t) {
      if (r->ignored[a] >> t & 1) continue;
      if (r->matched[a] >> t & 1) {
        ++tp[t];
        tp_precision[t].push_back(double(tp[t]) / (double(fp[t]) + double(tp[t]) + eps));
      } else {
        ++fp[t];
      }
    }
  }
  // Between two true positives precision only falls, so the envelope (the maximum to the right)
  // at any rank is the maximum over the true positives from there on, and the first rank whose
  // recall reaches a recall point is a true positive (or rank 0, for the point 0).
  const double npig = double(non_ignored);
  for (int t = 0; t < T; ++t) {
    std::vector<double>& env = tp_precision[t];
    for (size_t e = env.size(); e-- > 1;) env[e - 1] = std::max(env[e - 1], env[e]);
    recall_out[t] = double(tp[t]) / npig;
    size_t e = 0;  // true positive e + 1 has recall (e + 1) / npig
    for (int r = 0; r < R; ++r) {
      if (recall_points[r] <= 0) {
        precision_out[t * R + r] = env.empty() ? 0 : env[0];
        continue;
      }
      while (e < env.size() && double(e + 1) / npig < recall_points[r]) ++e;
      precision_out[t * R + r] = e < env.size() ? env[e] : 0;
    }
  }
}

// accumulate() for category k, whose groups (in image order) are groups[0, n): their kept
// detections are one contiguous range of `results`, in pycocotools' concatenation order, ranked
// here once by score (a stable sort) for all settings.
void accumulate_category(SegmEvaluation& e, size_t k, const Group* groups, size_t n,
                         const DetResult* results) {
  const size_t K = e.category_ids.size();
  const Group& last = groups[n - 1];
  const size_t s0 = groups[0].slot,
               s1 = last.slot + std::min<size_t>(last.dt_end - last.dt_begin, kMaxDetsUsed);
  std::vector<const DetResult*> ranked(s1 - s0);
  for (size_t j = s0; j < s1; ++j) ranked[j - s0] = &results[j];
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const DetResult* a, const DetResult* b) { return a->score > b->score; });
  std::vector<double> precision(size_t(T) * R), recall(T);
  for (int a = 0; a < A; ++a) {
    uint32_t non_ignored = 0;
    for (size_t g = 0; g < n; ++g) non_ignored += groups[g].non_ignored_gts[a];
    if (non_ignored == 0) continue;  // stays -1
    for (int m = 0; m < M; ++m) {
      accumulate_setting(precision.data(), recall.data(), ranked, a, kMaxDets[m], non_ignored);
      for (int t = 0; t < T; ++t) {
        e.recall[((t * K + k) * A + a) * M + m] = recall[t];
        for (int r = 0; r < R; ++r)
          e.precision[(((t * R + r) * K + k) * A + a) * M + m] = precision[t * R + r];
      }
    }
  }
}

void check_inputs(const std::vector<GroundTruth>& ground_truths,
                  const std::vector<Detection>& detections) {
  std::vector<int64_t> ids(ground_truths.size());
  for (size_t n = 0; n < ground_truths.size(); ++n) ids[n] = ground_truths[n].id;
  std::sort(ids.begin(), ids.end());
  const auto dup = std::adjacent_find(ids.begin(), ids.end());
  PRM_CHECK(dup == ids.end(), "COCO evaluation: ground truth id ", *dup, " appears twice");
  for (size_t n = 0; n < detections.size(); ++n)
    PRM_CHECK(!std::isnan(detections[n].score), "COCO evaluation: detection ", n,
              " has a NaN score");
}

// The mean of the entries that are not -1, or -1 when there are none (summarize()).
struct MeanOfSet {
  double sum = 0;
  size_t n = 0;
  void add(double v) {
    if (v > -1) {
      sum += v;
      ++n;
    }
  }
  double mean() const { return n == 0 ? -1 : sum / double(n); }
};

// summarize() selects thresholds by equality with numpy's values (an IoU not among them selects
// nothing, and the mean is then -1).
using ThresholdSet = std::array<bool, T>;

ThresholdSet thresholds_equal_to(double iou) {
  ThresholdSet use{};
  for (int t = 0; t < T; ++t) use[t] = iou_thresholds()[t] == iou;
  return use;
}

ThresholdSet all_thresholds() {
  ThresholdSet use{};
  use.fill(true);
  return use;
}

void summarize(SegmEvaluation& e) {
  const size_t K = e.category_ids.size();
  auto ap = [&](const ThresholdSet& use, int a, int m) {
    MeanOfSet s;
    for (int t = 0; t < T; ++t) {
      if (!use[t]) continue;
      for (int r = 0; r < R; ++r)
        for (size_t k = 0; k < K; ++k) s.add(e.precision[(((t * R + r) * K + k) * A + a) * M + m]);
    }
    return s.mean();
  };
  auto ar = [&](int a, int m) {
    MeanOfSet s;
    for (int t = 0; t < T; ++t)
      for (size_t k = 0; k < K; ++k) s.add(e.recall[((t * K + k) * A + a) * M + m]);
    return s.mean();
  };
  const ThresholdSet all = all_thresholds();
  const int m100 = M - 1;
  e.stats = {ap(all, 0, m100), ap(thresholds_equal_to(.5), 0, m100),
             ap(thresholds_equal_to(.75), 0, m100), ap(all, 1, m100),
             ap(all, 2, m100), ap(all, 3, m100),
             ar(0, 0), ar(0, 1), ar(0, m100), ar(1, m100), ar(2, m100), ar(3, m100)};
}

}  // namespace

const std::array<double, kNumIouThresholds>& iou_thresholds() {
  static const std::array<double, kNumIouThresholds> v = linspace<kNumIouThresholds>(.5, .95);
  return v;
}

const std::array<double, kNumRecallThresholds>& recall_thresholds() {
  static const std::array<double, kNumRecallThresholds> v =
      linspace<kNumRecallThresholds>(0, 1);
  return v;
}

double SegmEvaluation::category_ap(size_t k, int iou_index) const {
  const size_t K = category_ids.size();
  PRM_CHECK(k < K, "category_ap: category ", k, " of ", K);
  MeanOfSet s;
  for (int t = 0; t < T; ++t) {
    if (iou_index >= 0 && t != iou_index) continue;
    for (int r = 0; r < R; ++r) s.add(precision[(((t * R + r) * K + k) * A + 0) * M + (M - 1)]);
  }
  return s.mean();
}

SegmEvaluation evaluate_segm(const std::vector<GroundTruth>& ground_truths,
                             const std::vector<Detection>& detections,
                             const std::vector<int64_t>& image_ids,
                             const std::vector<int64_t>& category_ids) {
  check_inputs(ground_truths, detections);
  const IdIndex images(image_ids), categories(category_ids);
  const size_t I = images.ids.size(), K = categories.ids.size();
  std::vector<uint64_t> gt_keys, dt_keys;
  const std::vector<uint32_t> gt_order = group_order(ground_truths, images, categories, gt_keys);
  const std::vector<uint32_t> dt_order = group_order(detections, images, categories, dt_keys);
  std::vector<Group> groups = make_groups(gt_keys, dt_keys, std::max<size_t>(I, 1));
  size_t slots = 0;
  for (Group& g : groups) {
    g.slot = slots;
    slots += std::min<size_t>(g.dt_end - g.dt_begin, kMaxDetsUsed);
  }

  std::vector<DetResult> results(slots);
#pragma omp parallel
  {
    GroupScratch scratch;
#pragma omp for schedule(dynamic, 16)
    for (int64_t n = 0; n < int64_t(groups.size()); ++n) {
      evaluate_group(groups[n], results.data() + groups[n].slot, gt_order, dt_order, ground_truths,
                     detections, scratch);
    }
  }

  SegmEvaluation e;
  e.image_ids = images.ids;
  e.category_ids = categories.ids;
  e.precision.assign(size_t(T) * R * K * A * M, -1);
  e.recall.assign(size_t(T) * K * A * M, -1);
  // Groups are ordered by category, then image: each category's groups, and their kept
  // detections, are one contiguous range, in pycocotools' concatenation order.
  std::vector<size_t> first_group(K + 1, groups.size());
  for (size_t n = groups.size(); n-- > 0;) first_group[groups[n].k] = n;
  for (size_t k = K; k-- > 0;) first_group[k] = std::min(first_group[k], first_group[k + 1]);

#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t k = 0; k < int64_t(K); ++k) {
    const size_t g0 = first_group[k], g1 = first_group[k + 1];
    if (g0 < g1) accumulate_category(e, size_t(k), groups.data() + g0, g1 - g0, results.data());
  }
  summarize(e);
  return e;
}

}  // namespace prm::coco
