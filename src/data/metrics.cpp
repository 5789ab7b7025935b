#include "data/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tensor/error.h"

namespace prm {

double voc_ap_area(const std::vector<double>& recall, const std::vector<double>& precision) {
  PRM_CHECK(recall.size() == precision.size(), "voc_ap_area: ", recall.size(), " recalls but ",
            precision.size(), " precisions");
  // mrec = [0, recall, 1], mpre = [0, precision, 0], as VOCap.m.
  std::vector<double> mrec{0.0}, mpre{0.0};
  mrec.insert(mrec.end(), recall.begin(), recall.end());
  mpre.insert(mpre.end(), precision.begin(), precision.end());
  mrec.push_back(1.0);
  mpre.push_back(0.0);
  for (size_t i = mpre.size() - 1; i-- > 0;) mpre[i] = std::max(mpre[i], mpre[i + 1]);
  double ap = 0;
  for (size_t i = 1; i < mrec.size(); ++i)
    if (mrec[i] != mrec[i - 1]) ap += (mrec[i] - mrec[i - 1]) * mpre[i];
  return ap;
}

ApCurve average_precision(std::vector<RankedEntry> entries, int64_t positives) {
  std::stable_sort(entries.begin(), entries.end(),
                   [](const RankedEntry& a, const RankedEntry& b) { return a.score > b.score; });
  ApCurve c;
  c.positives = positives;
  int64_t tp = 0, fp = 0;
  for (const RankedEntry& e : entries) {
    if (e.outcome == Outcome::ignore) continue;
    (e.outcome == Outcome::true_positive ? tp : fp) += 1;
    c.precision.push_back(static_cast<double>(tp) / static_cast<double>(tp + fp));
    c.recall.push_back(positives > 0 ? static_cast<double>(tp) / static_cast<double>(positives)
                                     : 0);
  }
  PRM_CHECK(tp <= positives, "average_precision: ", tp, " true positives but only ", positives,
            " positives");
  c.ap = positives > 0 ? voc_ap_area(c.recall, c.precision) : 0.0;
  return c;
}

namespace {
// A class's AP entry: the curve, its area, and whether the class has any ground truth.
ClassMetric ap_metric(std::vector<RankedEntry> entries, int64_t positives) {
  ClassMetric cm;
  cm.curve = average_precision(std::move(entries), positives);
  cm.value = cm.curve.ap;
  cm.absent = positives == 0;
  return cm;
}
}  // namespace

void finish_mean(MeanMetric& m) {
  double sum = 0;
  int n = 0;
  m.absent_classes.clear();
  for (size_t c = 0; c < m.per_class.size(); ++c) {
    if (m.per_class[c].absent) {
      m.absent_classes.push_back(static_cast<int>(c));
    } else {
      sum += m.per_class[c].value;
      ++n;
    }
  }
  m.mean = n > 0 ? sum / n : std::numeric_limits<double>::quiet_NaN();
}

MeanMetric classification_map(const std::vector<std::vector<double>>& scores,
                              const std::vector<std::vector<int>>& labels, int num_classes) {
  PRM_CHECK(scores.size() == labels.size(), "classification_map: ", scores.size(),
            " score rows but ", labels.size(), " label rows");
  MeanMetric m;
  for (int c = 0; c < num_classes; ++c) {
    std::vector<RankedEntry> entries;
    int64_t positives = 0;
    for (size_t i = 0; i < scores.size(); ++i) {
      PRM_CHECK(static_cast<int>(scores[i].size()) == num_classes &&
                    static_cast<int>(labels[i].size()) == num_classes,
                "classification_map: row ", i, " does not have ", num_classes, " classes");
      const int l = labels[i][c];
      positives += l > 0;
      entries.push_back({scores[i][c], l > 0   ? Outcome::true_positive
                                       : l < 0 ? Outcome::false_positive
                                               : Outcome::ignore});
    }
    m.per_class.push_back(ap_metric(std::move(entries), positives));
  }
  finish_mean(m);
  return m;
}

MeanMetric pointwise_map(const std::vector<std::vector<GtBox>>& boxes,
                         const std::vector<PointPrediction>& points, int num_classes,
                         double tolerance) {
  PRM_CHECK(std::isfinite(tolerance) && tolerance >= 0,
            "pointwise_map: the tolerance must be a finite number of pixels >= 0, got ", tolerance);
  MeanMetric m;
  for (int c = 0; c < num_classes; ++c) {
    std::vector<size_t> order;
    for (size_t k = 0; k < points.size(); ++k)
      if (points[k].class_id == c) order.push_back(k);
    // Ties: the image earlier in the split list first, then input order within the image.
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      if (points[a].score != points[b].score) return points[a].score > points[b].score;
      return points[a].image < points[b].image;
    });
    std::vector<std::vector<bool>> matched(boxes.size());
    int64_t positives = 0;
    for (size_t i = 0; i < boxes.size(); ++i) {
      matched[i].assign(boxes[i].size(), false);
      for (const GtBox& b : boxes[i]) positives += b.class_id == c && !b.difficult;
    }
    std::vector<RankedEntry> entries;
    for (size_t k : order) {
      const PointPrediction& p = points[k];
      PRM_CHECK(p.image >= 0 && static_cast<size_t>(p.image) < boxes.size(),
                "pointwise_map: point for image ", p.image, " of ", boxes.size());
      int best = -1;
      double best_d = 0;
      bool hits_difficult = false, hits_plain = false;
      for (size_t j = 0; j < boxes[p.image].size(); ++j) {
        const GtBox& b = boxes[p.image][j];
        if (b.class_id != c) continue;
        const bool inside = p.x >= b.xmin - 1 - tolerance && p.x <= b.xmax - 1 + tolerance &&
                            p.y >= b.ymin - 1 - tolerance && p.y <= b.ymax - 1 + tolerance;
        if (!inside) continue;
        if (b.difficult) {
          hits_difficult = true;
          continue;
        }
        hits_plain = true;
        if (matched[p.image][j]) continue;
        const double d =
            std::hypot(p.x - (b.xmin + b.xmax) / 2 + 1, p.y - (b.ymin + b.ymax) / 2 + 1);
        if (best < 0 || d < best_d) {
          best = static_cast<int>(j);
          best_d = d;
        }
      }
      Outcome o = Outcome::false_positive;
      if (best >= 0) {
        matched[p.image][best] = true;
        o = Outcome::true_positive;
      } else if (hits_difficult && !hits_plain) {  // only difficult boxes: neither TP nor FP
        o = Outcome::ignore;
      }
      entries.push_back({p.score, o});
    }
    m.per_class.push_back(ap_metric(std::move(entries), positives));
  }
  finish_mean(m);
  return m;
}

double mask_iou(const uint8_t* a, const uint8_t* b, const uint8_t* void_mask, int64_t n) {
  int64_t inter = 0, uni = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (void_mask && void_mask[i]) continue;
    const bool x = a[i] != 0, y = b[i] != 0;
    inter += x && y;
    uni += x || y;
  }
  return uni > 0 ? static_cast<double>(inter) / static_cast<double>(uni) : 0.0;
}

MeanMetric instance_map(const std::vector<ImageInstances>& images, int num_classes,
                        double iou_threshold) {
  MeanMetric m;
  for (int c = 0; c < num_classes; ++c) {
    struct Ref {
      size_t image, pred;
      double score;
    };
    std::vector<Ref> order;
    int64_t positives = 0;
    for (size_t i = 0; i < images.size(); ++i) {
      for (int g : images[i].gt_class) positives += g == c;
      for (size_t k = 0; k < images[i].predictions.size(); ++k)
        if (images[i].predictions[k].class_id == c)
          order.push_back({i, k, images[i].predictions[k].score});
    }
    std::stable_sort(order.begin(), order.end(),
                     [](const Ref& a, const Ref& b) { return a.score > b.score; });
    std::vector<std::vector<bool>> matched(images.size());
    for (size_t i = 0; i < images.size(); ++i) matched[i].assign(images[i].gt_class.size(), false);
    std::vector<RankedEntry> entries;
    for (const Ref& r : order) {
      const ImageInstances& im = images[r.image];
      const InstancePrediction& p = im.predictions[r.pred];
      PRM_CHECK(p.iou.size() == im.gt_class.size(), "instance_map: prediction has ", p.iou.size(),
                " IoUs for ", im.gt_class.size(), " ground-truth instances");
      int best = -1;
      for (size_t j = 0; j < im.gt_class.size(); ++j)
        if (im.gt_class[j] == c && (best < 0 || p.iou[j] > p.iou[best])) best = static_cast<int>(j);
      Outcome o = Outcome::false_positive;
      if (best >= 0 && p.iou[best] >= iou_threshold && !matched[r.image][best]) {
        matched[r.image][best] = true;
        o = Outcome::true_positive;
      }
      entries.push_back({r.score, o});
    }
    m.per_class.push_back(ap_metric(std::move(entries), positives));
  }
  finish_mean(m);
  return m;
}

double average_best_overlap(const std::vector<ImageInstances>& images, int64_t* count) {
  double sum = 0;
  int64_t n = 0;
  for (const ImageInstances& im : images) {
    for (size_t j = 0; j < im.gt_class.size(); ++j) {
      double best = 0;
      for (const InstancePrediction& p : im.predictions)
        if (p.class_id == im.gt_class[j]) best = std::max(best, p.iou[j]);
      sum += best;
      ++n;
    }
  }
  if (count) *count = n;
  return n > 0 ? sum / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
}

void Confusion::add(const uint8_t* gt, const uint8_t* pred, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (gt[i] == 255) continue;
    PRM_CHECK(gt[i] < num_labels && pred[i] < num_labels, "Confusion::add: label ",
              int(gt[i] < num_labels ? pred[i] : gt[i]), " out of range (", num_labels, " labels)");
    ++counts[static_cast<size_t>(gt[i]) * num_labels + pred[i]];
  }
}

MeanMetric semantic_miou(const Confusion& confusion) {
  const int L = confusion.num_labels;
  MeanMetric m;
  for (int k = 0; k < L; ++k) {
    int64_t tp = confusion.counts[static_cast<size_t>(k) * L + k], gt = 0, pred = 0;
    for (int j = 0; j < L; ++j) {
      gt += confusion.counts[static_cast<size_t>(k) * L + j];
      pred += confusion.counts[static_cast<size_t>(j) * L + k];
    }
    ClassMetric cm;
    cm.absent = gt == 0;
    cm.value =
        gt + pred - tp > 0 ? static_cast<double>(tp) / static_cast<double>(gt + pred - tp) : 0;
    m.per_class.push_back(cm);
  }
  finish_mean(m);
  return m;
}

std::vector<uint8_t> paint_semantic(const std::vector<const uint8_t*>& masks,
                                    const std::vector<int>& class_ids,
                                    const std::vector<double>& scores, int64_t n) {
  PRM_CHECK(masks.size() == class_ids.size() && masks.size() == scores.size(),
            "paint_semantic: ", masks.size(), " masks, ", class_ids.size(), " classes, ",
            scores.size(), " scores");
  // Rank as every AP ranks (score descending, ties in input order) and give each pixel to the
  // first-ranked mask that covers it: the highest score wins, and among equal scores the earlier
  // mask. The same map as painting in ascending score order with ties painted last-to-first.
  std::vector<size_t> order(masks.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  std::vector<uint8_t> label(static_cast<size_t>(n), 0);
  std::vector<uint8_t> taken(static_cast<size_t>(n), 0);
  for (size_t k : order) {
    PRM_CHECK(class_ids[k] >= 0 && class_ids[k] < 254, "paint_semantic: class ", class_ids[k]);
    for (int64_t i = 0; i < n; ++i)
      if (masks[k][i] && !taken[i]) {
        label[i] = static_cast<uint8_t>(class_ids[k] + 1);
        taken[i] = 1;
      }
  }
  return label;
}

}  // namespace prm
