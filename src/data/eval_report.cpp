// The evaluation report as JSON (machine-readable, every per-class number) and as a Markdown
// table (stdout). Absent classes (no ground truth in the split) are null / "-" and listed.
#include <array>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "data/coco_eval.h"
#include "data/eval.h"
#include "data/json.h"

namespace prm {

namespace {

// Report numbers keep six decimals (readable, and more than the metrics' precision).
Json num(double v) { return std::isfinite(v) ? Json::fixed(v, 6) : Json(); }

std::string pct(double v) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", 100 * v);
  return buf;
}

std::string threshold_key(double t) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%g", t);
  return buf;
}

Json names_json(const std::vector<std::string>& names) {
  Json out = Json::array();
  for (const std::string& n : names) out.push_back(n);
  return out;
}

// {"mean": m, "per_class": {name: v | null}, "absent": [names]}; names[k] labels per_class[k].
Json metric_json(const MeanMetric& m, const std::vector<std::string>& names, const char* mean_key) {
  Json per_class = Json::object(), absent = Json::array();
  for (size_t c = 0; c < m.per_class.size(); ++c)
    per_class.set(names[c], m.per_class[c].absent ? Json() : num(m.per_class[c].value));
  for (int c : m.absent_classes) absent.push_back(names[c]);
  return Json::object({{mean_key, num(m.mean)}, {"per_class", per_class}, {"absent", absent}});
}

std::string cell(const MeanMetric& m, bool has, size_t c) {
  if (!has) return "";
  return m.per_class[c].absent ? "-" : pct(m.per_class[c].value);
}

}  // namespace

std::string report_json(const EvalReport& r) {
  std::vector<std::string> with_bg{"background"};
  with_bg.insert(with_bg.end(), r.classes.begin(), r.classes.end());
  Json out = Json::object(
      {{"format", r.format}, {"split", r.split}, {"classes", names_json(r.classes)}});
  out.set("images", Json::object({{"main", r.main_images},
                                  {"segmentation", r.segmentation_images},
                                  {"skipped", r.skipped}}));
  if (r.has_classification)
    out.set("classification", metric_json(r.classification, r.classes, "map"));
  if (r.has_points) {
    out.set("pointwise", metric_json(r.pointwise, r.classes, "map"));
    out.set("pointwise_tolerance", num(r.tolerance));
  }
  if (r.has_instances) {
    Json instance = Json::object();
    for (size_t t = 0; t < r.iou_thresholds.size(); ++t)
      instance.set("map_r@" + threshold_key(r.iou_thresholds[t]),
                   metric_json(r.instance[t], r.classes, "map_r"));
    instance.set("abo", num(r.abo));
    instance.set("gt_instances", r.gt_instances);
    out.set("instance_segmentation", instance);
    out.set("semantic_segmentation", metric_json(r.semantic, with_bg, "miou"));
  }
  if (r.has_coco_segm) {
    // The twelve numbers at full precision (they are compared with pycocotools' to 1e-6).
    Json segm = Json::object();
    for (size_t k = 0; k < coco::kSegmStatNames.size(); ++k)
      segm.set(coco::kSegmStatNames[k], Json(r.coco_segm[k]));
    out.set("coco_segm", segm);
    out.set("coco_segm_per_class",
            Json::object({{"AP", metric_json(r.coco_segm_ap, r.classes, "mean")},
                          {"AP50", metric_json(r.coco_segm_ap50, r.classes, "mean")}}));
    out.set("instance_results", r.instance_results);
    out.set("gt_instances", r.gt_instances);
  }
  out.set("notes", names_json(r.notes));
  // Top level and its sections one per line; each metric (its per-class map) on one line.
  return write_json_readable(out, 2) + "\n";
}

namespace {

// COCOeval's summarize() lines, as pycocotools prints them (a value of -1 is printed as -1).
void coco_summary(std::ostringstream& os, const std::array<double, 12>& stats) {
  struct Line {
    bool ap;
    const char* iou;
    const char* area;
    int dets;
  };
  const Line lines[12] = {{true, "0.50:0.95", "all", 100},    {true, "0.50", "all", 100},
                          {true, "0.75", "all", 100},         {true, "0.50:0.95", "small", 100},
                          {true, "0.50:0.95", "medium", 100}, {true, "0.50:0.95", "large", 100},
                          {false, "0.50:0.95", "all", 1},     {false, "0.50:0.95", "all", 10},
                          {false, "0.50:0.95", "all", 100},   {false, "0.50:0.95", "small", 100},
                          {false, "0.50:0.95", "medium", 100}, {false, "0.50:0.95", "large", 100}};
  os << "COCO instance segmentation (COCOeval, iouType segm):\n\n```\n";
  for (int k = 0; k < 12; ++k) {
    char buf[128];
    std::snprintf(buf, sizeof buf, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %.3f\n",
                  lines[k].ap ? "Average Precision" : "Average Recall",
                  lines[k].ap ? "(AP)" : "(AR)", lines[k].iou, lines[k].area, lines[k].dets,
                  stats[k]);
    os << buf;
  }
  os << "```\n\n";
}

std::string coco_markdown(const EvalReport& r) {
  std::ostringstream os;
  os << "Evaluation on COCO split '" << r.split << "' (" << r.main_images << " images";
  if (r.has_coco_segm)
    os << ", " << r.instance_results << " instance results, " << r.gt_instances
       << " non-crowd ground-truth instances";
  os << "). Numbers are percentages; '-' marks a class with no ground truth in the split.\n\n";
  if (r.has_coco_segm) coco_summary(os, r.coco_segm);
  os << "| class |";
  if (r.has_classification) os << " cls AP |";
  if (r.has_points) os << " point AP |";
  if (r.has_coco_segm) os << " segm AP |" << " segm AP50 |";
  os << "\n|---|";
  const int cols = r.has_classification + r.has_points + 2 * r.has_coco_segm;
  for (int k = 0; k < cols; ++k) os << "---:|";
  os << "\n";
  for (size_t c = 0; c < r.classes.size(); ++c) {
    os << "| " << r.classes[c] << " |";
    if (r.has_classification) os << " " << cell(r.classification, true, c) << " |";
    if (r.has_points) os << " " << cell(r.pointwise, true, c) << " |";
    if (r.has_coco_segm)
      os << " " << cell(r.coco_segm_ap, true, c) << " | " << cell(r.coco_segm_ap50, true, c)
         << " |";
    os << "\n";
  }
  os << "| **mean** |";
  if (r.has_classification) os << " **" << pct(r.classification.mean) << "** |";
  if (r.has_points) os << " **" << pct(r.pointwise.mean) << "** |";
  if (r.has_coco_segm)
    os << " **" << pct(r.coco_segm_ap.mean) << "** | **" << pct(r.coco_segm_ap50.mean) << "** |";
  os << "\n\n";
  if (r.has_points)
    os << "Pointwise localisation tolerance: " << r.tolerance
       << " pixels (crowd boxes ignored).\n";
  for (const std::string& n : r.notes) os << "Note: " << n << "\n";
  return os.str();
}

}  // namespace

std::string report_markdown(const EvalReport& r) {
  if (r.format == "coco") return coco_markdown(r);
  std::ostringstream os;
  os << "Evaluation on split '" << r.split << "' (" << r.main_images
     << " images for classification/points, " << r.segmentation_images << " for segmentation";
  if (r.skipped) os << ", " << r.skipped << " skipped";
  os << "). Numbers are percentages; '-' marks a class with no ground truth in the split.\n\n";
  os << "| class |";
  if (r.has_classification) os << " cls AP |";
  if (r.has_points) os << " point AP |";
  if (r.has_instances) {
    for (double t : r.iou_thresholds) os << " AP^r@" << threshold_key(t) << " |";
    os << " IoU |";
  }
  os << "\n|---|";
  const int cols = r.has_classification + r.has_points +
                   (r.has_instances ? static_cast<int>(r.iou_thresholds.size()) + 1 : 0);
  for (int k = 0; k < cols; ++k) os << "---:|";
  os << "\n";
  auto row = [&](const std::string& name, int c) {  // c = -1: background (IoU only)
    os << "| " << name << " |";
    if (r.has_classification) os << " " << (c < 0 ? "" : cell(r.classification, true, c)) << " |";
    if (r.has_points) os << " " << (c < 0 ? "" : cell(r.pointwise, true, c)) << " |";
    if (r.has_instances) {
      for (const MeanMetric& m : r.instance) os << " " << (c < 0 ? "" : cell(m, true, c)) << " |";
      os << " " << cell(r.semantic, true, static_cast<size_t>(c + 1)) << " |";
    }
    os << "\n";
  };
  if (r.has_instances) row("background", -1);
  for (size_t c = 0; c < r.classes.size(); ++c) row(r.classes[c], static_cast<int>(c));
  os << "| **mean** |";
  if (r.has_classification) os << " **" << pct(r.classification.mean) << "** |";
  if (r.has_points) os << " **" << pct(r.pointwise.mean) << "** |";
  if (r.has_instances) {
    for (const MeanMetric& m : r.instance) os << " **" << pct(m.mean) << "** |";
    os << " **" << pct(r.semantic.mean) << "** |";
  }
  os << "\n\n";
  if (r.has_instances)
    os << "ABO (average best overlap over " << r.gt_instances
       << " ground-truth instances): " << pct(r.abo) << "\n";
  if (r.has_points) os << "Pointwise localisation tolerance: " << r.tolerance << " pixels.\n";
  const MeanMetric* any = r.has_classification ? &r.classification
                          : r.has_points       ? &r.pointwise
                          : r.has_instances    ? &r.instance[0]
                                               : nullptr;
  if (any && !any->absent_classes.empty()) {
    os << "Classes with no ground truth in the split (left out of the means):";
    for (int c : any->absent_classes) os << " " << r.classes[c];
    os << "\n";
  }
  for (const std::string& n : r.notes) os << "Note: " << n << "\n";
  return os.str();
}

}  // namespace prm
