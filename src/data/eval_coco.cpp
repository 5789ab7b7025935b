// `prm eval` on an MS COCO split (eval.h): classification.json and points.json scored with the
// VOC protocols of metrics.h on COCO's ground truth, instances.json with COCOeval's segm rules
// (coco_eval.h). The results files are read by coco_results.h, checked against the annotations.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <unordered_map>

#include "data/coco.h"
#include "data/coco_eval.h"
#include "data/coco_mask.h"
#include "data/coco_results.h"
#include "data/eval.h"
#include "tensor/error.h"

namespace prm {

namespace fs = std::filesystem;

namespace {

std::string annotation_where(const CocoDataset& d, size_t i) {
  return str_cat(d.path, ": annotations[", i, "] (id ", d.annotations[i].id, "): ");
}

// The annotation's mask as pycocotools' annToRLE gives it: polygons rasterised at the image's
// size, RLE as given. Errors name the file and the annotation.
coco::Rle annotation_mask(const CocoDataset& d, size_t i) {
  const CocoAnnotation& a = d.annotations[i];
  const CocoImage& im = d.images[a.image];
  const auto h = static_cast<uint32_t>(im.height), w = static_cast<uint32_t>(im.width);
  const CocoSegmentation& s = a.segmentation;
  try {
    switch (s.kind) {
      case CocoSegmentation::Kind::polygons:
        return coco::rle_from_polygons(s.polygons, h, w);
      case CocoSegmentation::Kind::rle: {
        coco::Rle r{h, w, s.counts};
        coco::check_rle(r);
        return r;
      }
      case CocoSegmentation::Kind::compressed_rle:
        return coco::rle_from_string(s.compressed, h, w);
      case CocoSegmentation::Kind::none:
        break;
    }
  } catch (const Error& e) {
    throw Error(annotation_where(d, i) + e.what());
  }
  throw Error(annotation_where(d, i) + "no segmentation (instances are scored against masks)");
}

// Every annotation's mask, in parallel (polygon rasterisation is most of the work); the first
// error in annotation order is thrown.
std::vector<coco::Rle> annotation_masks(const CocoDataset& d) {
  const int64_t n = static_cast<int64_t>(d.annotations.size());
  std::vector<coco::Rle> masks(d.annotations.size());
  std::vector<std::exception_ptr> errors(d.annotations.size());
#pragma omp parallel for schedule(dynamic, 256)
  for (int64_t i = 0; i < n; ++i) {
    try {
      masks[i] = annotation_mask(d, static_cast<size_t>(i));
    } catch (...) {
      errors[i] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  return masks;
}

// Image-level labels of COCO: 1 for a class with any annotation in the image (crowd included),
// -1 otherwise (there is no "difficult" in COCO).
std::vector<std::vector<int>> coco_labels(const CocoDataset& d) {
  const size_t C = d.categories.size();
  std::vector<std::vector<int>> labels(d.images.size(), std::vector<int>(C, -1));
  for (const CocoAnnotation& a : d.annotations) labels[a.image][a.category] = 1;
  return labels;
}

// The classes with positive images but no result in the file (by name, at most five named):
// refused unless allow_missing, as for VOC's text files.
void check_classes_present(const std::string& file, size_t results,
                           const std::vector<bool>& present,
                           const std::vector<std::vector<int>>& labels,
                           const std::vector<std::string>& names) {
  const std::vector<int> missing = classes_missing_predictions(present, labels);
  std::string named;
  for (size_t k = 0; k < missing.size() && k < 5; ++k)
    named += str_cat(k ? ", '" : "'", names[missing[k]], "'");
  PRM_CHECK(results > 0 || missing.empty(), file, ": no results in the file (it would still "
            "score: a class's AP would be its share of positive images); remove the file to skip "
            "this metric, or pass --allow-missing");
  PRM_CHECK(missing.empty(), file, ": no result for ", missing.size(), " categor",
            missing.size() == 1 ? "y" : "ies", " with positive images in the split (", named,
            missing.size() > 5 ? ", ..." : "", "); pass --allow-missing to score them as they are");
}

void score_classification(const EvalOptions& o, const CocoDataset& d, const std::string& file,
                          EvalReport& r) {
  const size_t C = d.categories.size();
  std::vector<std::vector<double>> scores(
      d.images.size(), std::vector<double>(C, -std::numeric_limits<double>::infinity()));
  std::vector<std::vector<bool>> seen(d.images.size(), std::vector<bool>(C, false));
  std::vector<bool> present(C, false);
  const std::vector<CocoScoreResult> results = read_coco_scores(file, d);
  for (size_t k = 0; k < results.size(); ++k) {
    const CocoScoreResult& s = results[k];
    const int i = d.image_index.at(s.image_id), c = d.category_index.at(s.category_id);
    PRM_CHECK(!seen[i][c], file, ": [", k, "]: a second score for image ", s.image_id,
              " and category ", s.category_id);
    seen[i][c] = present[c] = true;
    scores[i][c] = s.score;
  }
  int64_t missing = 0;
  for (const auto& row : seen)
    for (bool b : row) missing += !b;
  if (missing)
    r.notes.push_back(str_cat("classification: ", missing,
                              " (image, category) pairs without a score ranked last"));
  const std::vector<std::vector<int>> labels = coco_labels(d);
  if (!o.allow_missing) check_classes_present(file, results.size(), present, labels, r.classes);
  r.classification = classification_map(scores, labels, static_cast<int>(C));
}

// COCO boxes [x, y, w, h] in VOC's 1-based inclusive form, so that metrics.h's rule (a point in
// xmin - 1 - t .. xmax - 1 + t) reads x - t <= px <= x + w + t and the centre is x + w / 2.
// Crowd boxes play VOC's difficult ones. An annotation without a bbox gets its mask's.
void score_points(const EvalOptions& o, const CocoDataset& d, const std::string& file,
                  EvalReport& r) {
  const size_t C = d.categories.size();
  std::vector<PointPrediction> points;
  std::vector<bool> present(C, false);
  for (const CocoPointResult& p : read_coco_points(file, d)) {
    const int c = d.category_index.at(p.category_id);
    present[c] = true;
    points.push_back({d.image_index.at(p.image_id), c, p.score, p.x, p.y});
  }
  std::vector<std::vector<GtBox>> boxes(d.images.size());
  for (size_t i = 0; i < d.annotations.size(); ++i) {
    const CocoAnnotation& a = d.annotations[i];
    std::array<double, 4> b = {a.bbox[0], a.bbox[1], a.bbox[2], a.bbox[3]};
    if (!a.has_bbox) {
      PRM_CHECK(a.segmentation.kind != CocoSegmentation::Kind::none, annotation_where(d, i),
                "no bbox, and no segmentation to take one from (points are scored against boxes)");
      b = coco::rle_to_bbox(annotation_mask(d, i));
    }
    boxes[a.image].push_back(
        {a.category, a.iscrowd, b[0] + 1, b[1] + 1, b[0] + b[2] + 1, b[1] + b[3] + 1});
  }
  if (!o.allow_missing)
    check_classes_present(file, points.size(), present, coco_labels(d), r.classes);
  r.pointwise = pointwise_map(boxes, points, static_cast<int>(C), o.tolerance);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Stages of the segm scoring on stderr (val2014-sized files take tens of seconds).
void stage(const std::string& what, std::chrono::steady_clock::time_point t0) {
  std::fprintf(stderr, "coco eval: %s (%.1f s)\n", what.c_str(), seconds_since(t0));
}

void score_instances(const CocoDataset& d, const std::string& file, EvalReport& r) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<CocoMaskResult> results = read_coco_masks(file, d);
  stage(str_cat("read ", results.size(), " instance results from ", file), t0);
  // pycocotools' loadRes: a file whose first result has a non-empty bbox is read as box results,
  // and every result's area is then its box's w * h.
  const bool box_areas = !results.empty() && results[0].has_bbox && !results[0].empty_bbox;
  std::vector<coco::Detection> detections(results.size());
  for (size_t k = 0; k < results.size(); ++k) {
    const CocoMaskResult& m = results[k];
    coco::Detection& det = detections[k];
    det.image_id = m.image_id;
    det.category_id = m.category_id;
    det.score = m.score;
    det.mask = coco::rle_from_string(m.counts, static_cast<uint32_t>(m.height),
                                     static_cast<uint32_t>(m.width));
    if (box_areas) {
      PRM_CHECK(m.has_bbox && !m.empty_bbox, file, ": [", k, "]: no 'bbox', but the first result "
                "has one (pycocotools then reads every result's area from its bbox)");
      det.area = m.bbox[2] * m.bbox[3];
    }
  }
  if (box_areas)
    r.notes.push_back("instances: the results carry bboxes; their w * h are the detections' "
                      "areas for the area ranges, as pycocotools' loadRes takes them");
  const std::vector<coco::Rle> masks = annotation_masks(d);
  stage(str_cat("decoded the results' masks and ", masks.size(), " ground-truth masks"), t0);
  std::vector<coco::GroundTruth> gts(d.annotations.size());
  for (size_t i = 0; i < gts.size(); ++i) {
    const CocoAnnotation& a = d.annotations[i];
    coco::GroundTruth& g = gts[i];
    g.id = a.id;
    g.image_id = d.images[a.image].id;
    g.category_id = d.categories[a.category].id;
    g.iscrowd = a.iscrowd;
    g.mask = masks[i];
    g.area = a.has_area ? a.area : static_cast<double>(coco::rle_area(g.mask));
  }
  std::vector<int64_t> image_ids, category_ids;
  for (const CocoImage& im : d.images) image_ids.push_back(im.id);
  for (const CocoCategory& c : d.categories) category_ids.push_back(c.id);
  const coco::SegmEvaluation e = coco::evaluate_segm(gts, detections, image_ids, category_ids);
  r.coco_segm = e.stats;
  stage(str_cat("COCOeval (segm) over ", image_ids.size(), " images and ", category_ids.size(),
                " categories done"),
        t0);
  // Per category (the categories are sorted by id in both lists): AP over IoU .5:.95 and at .5.
  for (int which = 0; which < 2; ++which) {
    MeanMetric& m = which == 0 ? r.coco_segm_ap : r.coco_segm_ap50;
    for (size_t k = 0; k < e.category_ids.size(); ++k) {
      const double ap = e.category_ap(k, which == 0 ? -1 : 0);
      ClassMetric cm;
      cm.absent = ap < 0;
      cm.value = cm.absent ? 0 : ap;
      m.per_class.push_back(cm);
    }
    finish_mean(m);
  }
  r.instance_results = static_cast<int64_t>(results.size());
  int64_t gt = 0;
  for (const CocoAnnotation& a : d.annotations) gt += !a.iscrowd;
  r.gt_instances = gt;
}

}  // namespace

void evaluate_coco(const EvalOptions& o, EvalReport& r) {
  const fs::path cls_file = fs::path(o.pred) / "classification.json";
  const fs::path pts_file = fs::path(o.pred) / "points.json";
  const fs::path inst_file = fs::path(o.pred) / "instances.json";
  r.has_classification = fs::exists(cls_file);
  r.has_points = fs::exists(pts_file);
  r.has_coco_segm = fs::exists(inst_file);
  PRM_CHECK(r.has_classification || r.has_points || r.has_coco_segm, o.pred,
            ": no classification.json, points.json or instances.json to evaluate");
  for (const fs::path& p : {cls_file, pts_file, inst_file})
    PRM_CHECK(!fs::is_directory(p), p.string(), ": is a folder, expected a results file");
  const std::string annotations = coco_annotation_path(o.data, o.split);
  PRM_CHECK(fs::is_regular_file(annotations), annotations,
            ": no such annotation file (COCO layout: ROOT/annotations/instances_<split>.json; is "
            "--split right?)");
  CocoReadOptions ro;
  ro.segmentations = r.has_points || r.has_coco_segm;
  const CocoDataset d = read_coco_annotations(annotations, ro);
  r.classes = d.class_names();
  r.main_images = static_cast<int64_t>(d.images.size());
  if (r.has_classification) score_classification(o, d, cls_file.string(), r);
  if (r.has_points) score_points(o, d, pts_file.string(), r);
  if (r.has_coco_segm) {
    score_instances(d, inst_file.string(), r);
    r.segmentation_images = r.main_images;
  }
}

}  // namespace prm
