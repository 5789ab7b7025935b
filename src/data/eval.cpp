#include "data/eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "data/image.h"
#include "data/labels.h"
#include "tensor/error.h"

namespace prm {

namespace fs = std::filesystem;

namespace {

struct PredLine {
  std::string image_id;
  int class_id = 0;
  double score = 0;
  double x = 0, y = 0;
  std::string mask;
  std::string where;  // "file:line" for errors
};

// The next whitespace-separated field as a number in strtod's syntax, so that "nan" and "inf"
// are read (and then refused by the caller's finiteness check with its own message).
bool read_number(std::istringstream& ls, double& value, std::string& text) {
  if (!(ls >> text)) return false;
  char* end = nullptr;
  value = std::strtod(text.c_str(), &end);
  return end != text.c_str() && *end == '\0';
}

// Reads one predictions file; `extra` is 0 (classification), 2 (points: x y) or -1 (mask path).
std::vector<PredLine> read_predictions(const std::string& path,
                                       const std::vector<std::string>& classes, int extra) {
  PRM_CHECK(!fs::is_directory(path), path, ": is a folder, expected a predictions file");
  std::ifstream in(path);
  PRM_CHECK(in.good(), path, ": cannot open predictions file");
  std::map<std::string, int> class_index;
  for (size_t c = 0; c < classes.size(); ++c) class_index[classes[c]] = static_cast<int>(c);
  const char* expected = extra == 2    ? "<image_id> <class_name> <score> <x> <y>"
                         : extra == -1 ? "<image_id> <class_name> <score> <mask.png>"
                                       : "<image_id> <class_name> <score>";
  std::vector<PredLine> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (n == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte-order mark
    std::istringstream ls(line);
    std::string id, name, text;
    if (!(ls >> id) || id[0] == '#') continue;
    PredLine p;
    p.image_id = id;
    p.where = str_cat(path, ":", n);
    PRM_CHECK(static_cast<bool>(ls >> name), p.where, ": expected '", expected, "'");
    PRM_CHECK(read_number(ls, p.score, text), p.where, ": expected '", expected,
              "', the score is '", text, "'");
    auto it = class_index.find(name);
    PRM_CHECK(it != class_index.end(), p.where, ": unknown class name '", name, "'");
    p.class_id = it->second;
    PRM_CHECK(std::isfinite(p.score), p.where, ": score is ", text,
              " (NaN or infinite); scores must be finite numbers");
    if (extra == 2) {
      std::string xt, yt;
      PRM_CHECK(read_number(ls, p.x, xt) && read_number(ls, p.y, yt), p.where,
                ": expected the point's x and y as numbers, got '", xt, "' '", yt, "'");
      PRM_CHECK(std::isfinite(p.x) && std::isfinite(p.y), p.where, ": point (", xt, ", ", yt,
                ") is NaN or infinite");
    }
    if (extra == -1)
      PRM_CHECK(static_cast<bool>(ls >> p.mask), p.where, ": expected a mask file name");
    std::string rest;
    PRM_CHECK(!(ls >> rest), p.where, ": unexpected '", rest, "' at the end of the line");
    out.push_back(std::move(p));
  }
  PRM_CHECK(!in.bad(), path, ": read error");
  return out;
}

// A predicted mask as 0/1 bytes: 8-bit grey or palette PNG read raw, else anything stb reads.
std::vector<uint8_t> read_mask(const std::string& path, int width, int height) {
  IndexedImage m;
  try {
    m = read_indexed_png(path);
  } catch (const Error&) {
    Image g = load_image(path, 1);
    m.width = g.width;
    m.height = g.height;
    m.index = std::move(g.pixels);
  }
  PRM_CHECK(m.width == width && m.height == height, path, ": mask is ", m.width, "x", m.height,
            " but the image is ", width, "x", height);
  for (uint8_t& v : m.index) v = v != 0;
  return std::move(m.index);
}

std::vector<std::vector<int>> image_labels(const std::vector<VocSample>& samples, int C) {
  std::vector<std::vector<int>> labels;
  for (const VocSample& s : samples) labels.push_back(voc_image_labels(s.annotation.objects, C));
  return labels;
}

// The classes with at least one prediction line, from the (image, class) pairs seen.
std::vector<bool> seen_classes(const std::vector<std::vector<bool>>& seen) {
  std::vector<bool> present;
  for (const auto& row : seen) {
    if (present.empty()) present.assign(row.size(), false);
    for (size_t c = 0; c < row.size(); ++c) present[c] = present[c] || row[c];
  }
  return present;
}

// Refuses a predictions file that has no line for a class with positive images in the split
// (all its classes, when the file is empty): EvalOptions::allow_missing.
void check_classes_present(const std::string& file, const std::vector<bool>& present,
                           const std::vector<std::vector<int>>& labels) {
  const std::vector<int> missing = classes_missing_predictions(present, labels);
  const bool any = std::find(present.begin(), present.end(), true) != present.end();
  std::string named;
  for (size_t k = 0; k < missing.size() && k < 5; ++k)
    named += str_cat(k ? ", " : "", missing[k]);
  PRM_CHECK(any || missing.empty(), file, ": no predictions in the file (it would still score: a "
            "class's AP would be its share of positive images); remove the file to skip this "
            "metric, or pass --allow-missing");
  PRM_CHECK(missing.empty(), file, ": no line for ", missing.size(), " class(es) with positive "
            "images in the split (class indices ", named, missing.size() > 5 ? ", ..." : "",
            "); pass --allow-missing to score them as they are");
}

void evaluate_main(const EvalOptions& o, const std::string& root, EvalReport& r) {
  const fs::path cls_file = fs::path(o.pred) / "classification.txt";
  const fs::path pts_file = fs::path(o.pred) / "points.txt";
  r.has_classification = fs::exists(cls_file);
  r.has_points = fs::exists(pts_file);
  if (!r.has_classification && !r.has_points) return;
  VocOptions vo;
  vo.root = root;
  vo.split = o.split;
  vo.classes = o.classes;
  vo.skip_bad = o.skip_bad;
  vo.check_images = false;  // evaluation needs only the annotations
  VocDataset data(vo);
  r.skipped += data.skipped();
  r.main_images = static_cast<int64_t>(data.size());
  const int C = static_cast<int>(o.classes.size());
  std::map<std::string, int> index;
  for (size_t i = 0; i < data.size(); ++i) index[data.sample(i).id] = static_cast<int>(i);

  if (r.has_classification) {
    std::vector<std::vector<double>> scores(
        data.size(), std::vector<double>(C, -std::numeric_limits<double>::infinity()));
    std::vector<std::vector<bool>> seen(data.size(), std::vector<bool>(C, false));
    int64_t outside = 0, missing = 0;
    for (const PredLine& p : read_predictions(cls_file.string(), o.classes, 0)) {
      auto it = index.find(p.image_id);
      if (it == index.end()) {
        ++outside;
        continue;
      }
      PRM_CHECK(!seen[it->second][p.class_id], p.where, ": second score for ", p.image_id, " ",
                o.classes[p.class_id]);
      seen[it->second][p.class_id] = true;
      scores[it->second][p.class_id] = p.score;
    }
    for (const auto& row : seen)
      for (bool b : row) missing += !b;
    if (outside)
      r.notes.push_back(
          str_cat("classification: ", outside, " scores for images outside the split ignored"));
    if (missing)
      r.notes.push_back(str_cat("classification: ", missing,
                                " (image, class) pairs without a score ranked last"));
    const std::vector<std::vector<int>> labels = image_labels(data.samples(), C);
    if (!o.allow_missing) check_classes_present(cls_file.string(), seen_classes(seen), labels);
    r.classification = classification_map(scores, labels, C);
  }
  if (r.has_points) {
    std::vector<std::vector<GtBox>> boxes(data.size());
    for (size_t i = 0; i < data.size(); ++i)
      for (const VocObject& ob : data.sample(i).annotation.objects)
        if (ob.has_box)
          boxes[i].push_back(
              {ob.class_id, ob.difficult, ob.box.xmin, ob.box.ymin, ob.box.xmax, ob.box.ymax});
    std::vector<PointPrediction> points;
    int64_t outside = 0;
    for (const PredLine& p : read_predictions(pts_file.string(), o.classes, 2)) {
      auto it = index.find(p.image_id);
      if (it == index.end()) {
        ++outside;
        continue;
      }
      // Points are 0-based pixels: 0 <= x <= width - 1, 0 <= y <= height - 1 (when the
      // annotation gives the size).
      const VocAnnotation& a = data.sample(it->second).annotation;
      PRM_CHECK(a.width <= 0 || a.height <= 0 ||
                    (p.x >= 0 && p.x <= a.width - 1 && p.y >= 0 && p.y <= a.height - 1),
                p.where, ": point (", p.x, ", ", p.y, ") is outside the image ", p.image_id, " (",
                a.width, "x", a.height, ": x in 0..", a.width - 1, ", y in 0..", a.height - 1, ")");
      points.push_back({it->second, p.class_id, p.score, p.x, p.y});
    }
    if (outside)
      r.notes.push_back(
          str_cat("points: ", outside, " points for images outside the split ignored"));
    if (!o.allow_missing) {
      std::vector<bool> present(C, false);
      for (const PointPrediction& p : points) present[p.class_id] = true;
      check_classes_present(pts_file.string(), present, image_labels(data.samples(), C));
    }
    r.pointwise = pointwise_map(boxes, points, C, o.tolerance);
  }
}

void evaluate_segmentation(const EvalOptions& o, const std::string& root, EvalReport& r) {
  const fs::path inst_file = fs::path(o.pred) / "instances.txt";
  r.has_instances = fs::exists(inst_file);
  if (!r.has_instances) return;
  const int C = static_cast<int>(o.classes.size());
  std::map<std::string, std::vector<PredLine>> by_image;
  for (PredLine& p : read_predictions(inst_file.string(), o.classes, -1))
    by_image[p.image_id].push_back(std::move(p));
  const std::vector<std::string> ids = read_voc_split(root, "Segmentation", o.split);
  std::vector<ImageInstances> images;
  Confusion confusion(C + 1);
  size_t used = 0;
  for (const std::string& id : ids) {
    try {
      const InstanceGroundTruth gt = load_instance_ground_truth(root, id, C);
      const int64_t n = static_cast<int64_t>(gt.width) * gt.height;
      ImageInstances im;
      std::vector<int64_t> gt_area(256, 0);  // non-void pixels per object value
      std::vector<int> slot(256, -1);
      for (const GtInstance& g : gt.instances) {
        slot[g.object_value] = static_cast<int>(im.gt_class.size());
        im.gt_class.push_back(g.class_id);
      }
      for (int64_t i = 0; i < n; ++i) ++gt_area[gt.objects[i]];
      std::vector<std::vector<uint8_t>> masks;
      std::vector<int> mask_class;
      std::vector<double> mask_score;
      auto it = by_image.find(id);
      if (it != by_image.end()) {
        ++used;
        for (const PredLine& p : it->second) {
          masks.push_back(read_mask((fs::path(o.pred) / p.mask).string(), gt.width, gt.height));
          const std::vector<uint8_t>& m = masks.back();
          // One pass: intersection with every object value, and the mask's non-void area.
          std::vector<int64_t> inter(256, 0);
          int64_t area = 0;
          for (int64_t i = 0; i < n; ++i) {
            if (!m[i] || gt.objects[i] == 255) continue;
            ++area;
            ++inter[gt.objects[i]];
          }
          InstancePrediction pred{p.class_id, p.score,
                                  std::vector<double>(im.gt_class.size(), 0.0)};
          for (const GtInstance& g : gt.instances) {
            const int64_t u = area + gt_area[g.object_value] - inter[g.object_value];
            pred.iou[slot[g.object_value]] =
                u > 0 ? static_cast<double>(inter[g.object_value]) / u : 0;
          }
          im.predictions.push_back(std::move(pred));
          mask_class.push_back(p.class_id);
          mask_score.push_back(p.score);
        }
      }
      std::vector<const uint8_t*> mask_ptrs;
      for (const auto& m : masks) mask_ptrs.push_back(m.data());
      const std::vector<uint8_t> painted = paint_semantic(mask_ptrs, mask_class, mask_score, n);
      confusion.add(gt.classes.data(), painted.data(), n);
      images.push_back(std::move(im));
    } catch (const Error& e) {
      if (!o.skip_bad) throw;
      std::fprintf(stderr, "warning: skipping image %s: %s\n", id.c_str(), e.what());
      ++r.skipped;
    }
  }
  r.segmentation_images = static_cast<int64_t>(images.size());
  if (used < by_image.size())
    r.notes.push_back(str_cat("instances: predictions for ", by_image.size() - used,
                              " images outside the split ignored"));
  for (double t : o.iou_thresholds) r.instance.push_back(instance_map(images, C, t));
  r.abo = average_best_overlap(images, &r.gt_instances);
  r.semantic = semantic_miou(confusion);
}

}  // namespace

std::vector<int> classes_missing_predictions(const std::vector<bool>& present,
                                             const std::vector<std::vector<int>>& labels) {
  std::vector<int> missing;
  for (size_t c = 0; c < present.size(); ++c) {
    bool positives = false;
    for (const auto& l : labels) positives = positives || l[c] == 1;
    if (positives && !present[c]) missing.push_back(static_cast<int>(c));
  }
  return missing;
}

EvalReport evaluate(const EvalOptions& options) {
  PRM_CHECK(fs::is_directory(options.pred), options.pred, ": predictions folder not found");
  PRM_CHECK(std::isfinite(options.tolerance) && options.tolerance >= 0,
            "the pointwise tolerance (--tolerance) must be a number of pixels >= 0, got ",
            options.tolerance);
  EvalReport r;
  r.split = options.split;
  r.classes = options.classes;
  r.iou_thresholds = options.iou_thresholds;
  r.tolerance = options.tolerance;
  r.format = resolve_dataset_format(options.data, options.format);
  if (r.format == "coco") {
    evaluate_coco(options, r);
    return r;
  }
  const std::string root = resolve_voc_root(options.data);
  evaluate_main(options, root, r);
  evaluate_segmentation(options, root, r);
  PRM_CHECK(r.has_classification || r.has_points || r.has_instances, options.pred,
            ": no classification.txt, points.txt or instances.txt to evaluate");
  return r;
}

}  // namespace prm
