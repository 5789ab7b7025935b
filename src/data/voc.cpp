#include "data/voc.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/coco.h"
#include "data/image.h"
#include "data/labels.h"
#include "data/xml.h"
#include "tensor/error.h"

namespace prm {

namespace fs = std::filesystem;

const std::vector<std::string>& voc_class_names() {
  static const std::vector<std::string> names = {
      "aeroplane", "bicycle",     "bird",  "boat",        "bottle", "bus",      "car",
      "cat",       "chair",       "cow",   "diningtable", "dog",    "horse",    "motorbike",
      "person",    "pottedplant", "sheep", "sofa",        "train",  "tvmonitor"};
  return names;
}

namespace {

double parse_number(const xml::Element& e, const std::string& source) {
  const std::string t = e.trimmed_text();
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  PRM_CHECK(!t.empty() && end == t.c_str() + t.size() && std::isfinite(v), source, ":", e.line,
            ": <", e.name, "> is not a number: '", t, "'");
  return v;
}

double number_child(const xml::Element& parent, const char* name, const std::string& source) {
  const xml::Element* c = parent.child(name);
  PRM_CHECK(c != nullptr, source, ":", parent.line, ": <", parent.name, "> has no <", name, ">");
  return parse_number(*c, source);
}

// An integer-valued element in [lo, hi] (image sizes, action flags); prm::Error otherwise.
int int_value(const xml::Element& e, const std::string& source, double lo, double hi) {
  const double v = parse_number(e, source);
  PRM_CHECK(v >= lo && v <= hi && v == std::floor(v), source, ":", e.line, ": <", e.name,
            "> must be an integer in [", lo, ", ", hi, "], got ", e.trimmed_text());
  return static_cast<int>(v);
}

int int_child(const xml::Element& parent, const char* name, const std::string& source) {
  const xml::Element* c = parent.child(name);
  PRM_CHECK(c != nullptr, source, ":", parent.line, ": <", parent.name, "> has no <", name, ">");
  return int_value(*c, source, 0, 1 << 20);
}

bool flag_child(const xml::Element& parent, const char* name, const std::string& source) {
  const xml::Element* c = parent.child(name);
  return c != nullptr && parse_number(*c, source) != 0;
}

BoxF parse_box(const xml::Element& bndbox, const std::string& source) {
  BoxF b;
  b.xmin = number_child(bndbox, "xmin", source);
  b.ymin = number_child(bndbox, "ymin", source);
  b.xmax = number_child(bndbox, "xmax", source);
  b.ymax = number_child(bndbox, "ymax", source);
  PRM_CHECK(b.xmin <= b.xmax && b.ymin <= b.ymax, source, ":", bndbox.line,
            ": bounding box with min > max");
  return b;
}

VocObject parse_object(const xml::Element& o, const std::string& source,
                       const std::vector<std::string>& classes) {
  VocObject obj;
  obj.name = o.child_text("name", source);
  for (size_t c = 0; c < classes.size(); ++c)
    if (classes[c] == obj.name) obj.class_id = static_cast<int>(c);
  PRM_CHECK(obj.class_id >= 0, source, ":", o.line, ": unknown class name '", obj.name, "'");
  if (const xml::Element* pose = o.child("pose")) obj.pose = pose->trimmed_text();
  obj.truncated = flag_child(o, "truncated", source);
  obj.occluded = flag_child(o, "occluded", source);
  obj.difficult = flag_child(o, "difficult", source);
  const xml::Element* box = o.child("bndbox");
  obj.has_box = box != nullptr;
  if (box) obj.box = parse_box(*box, source);
  for (const xml::Element* p : o.children_named("part")) {
    VocPart part;
    part.name = p->child_text("name", source);
    const xml::Element* pb = p->child("bndbox");
    PRM_CHECK(pb != nullptr, source, ":", p->line, ": <part> has no <bndbox>");
    part.box = parse_box(*pb, source);
    obj.parts.push_back(part);
  }
  if (const xml::Element* actions = o.child("actions")) {
    for (const auto& a : actions->children)
      obj.actions.emplace_back(a->name, int_value(*a, source, -1e6, 1e6));
  }
  if (const xml::Element* point = o.child("point")) {
    obj.has_point = true;
    obj.point_x = number_child(*point, "x", source);
    obj.point_y = number_child(*point, "y", source);
  }
  PRM_CHECK(obj.has_box || obj.has_point, source, ":", o.line, ": <object> '", obj.name,
            "' has neither <bndbox> nor <point>");
  return obj;
}

std::string fmt_coord(double v) {
  char buf[32];
  if (v == std::floor(v))
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void format_box(std::ostringstream& os, const BoxF& b, const std::string& indent) {
  os << indent << "<bndbox>\n"
     << indent << "\t<xmin>" << fmt_coord(b.xmin) << "</xmin>\n"
     << indent << "\t<ymin>" << fmt_coord(b.ymin) << "</ymin>\n"
     << indent << "\t<xmax>" << fmt_coord(b.xmax) << "</xmax>\n"
     << indent << "\t<ymax>" << fmt_coord(b.ymax) << "</ymax>\n"
     << indent << "</bndbox>\n";
}

bool exists_file(const std::string& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

}  // namespace

VocAnnotation parse_voc_annotation(const xml::Element& root, const std::string& source,
                                   const std::vector<std::string>& classes) {
  PRM_CHECK(root.name == "annotation", source, ": root element is <", root.name,
            ">, expected <annotation>");
  VocAnnotation ann;
  if (const xml::Element* f = root.child("folder")) ann.folder = f->trimmed_text();
  if (const xml::Element* f = root.child("filename")) ann.filename = f->trimmed_text();
  if (const xml::Element* size = root.child("size")) {
    ann.width = int_child(*size, "width", source);
    ann.height = int_child(*size, "height", source);
    if (size->child("depth")) ann.depth = int_child(*size, "depth", source);
  }
  ann.segmented = flag_child(root, "segmented", source);
  for (const xml::Element* o : root.children_named("object"))
    ann.objects.push_back(parse_object(*o, source, classes));
  return ann;
}

VocAnnotation read_voc_annotation(const std::string& path,
                                  const std::vector<std::string>& classes) {
  std::unique_ptr<xml::Element> root = xml::parse_file(path);
  return parse_voc_annotation(*root, path, classes);
}

std::string format_voc_annotation(const VocAnnotation& ann) {
  std::ostringstream os;
  os << "<annotation>\n\t<folder>" << ann.folder << "</folder>\n\t<filename>" << ann.filename
     << "</filename>\n\t<source>\n\t\t<database>The VOC2012 Database</database>\n"
     << "\t\t<annotation>PASCAL VOC2012</annotation>\n\t\t<image>prm synth</image>\n\t</source>\n"
     << "\t<size>\n\t\t<width>" << ann.width << "</width>\n\t\t<height>" << ann.height
     << "</height>\n\t\t<depth>" << ann.depth << "</depth>\n\t</size>\n\t<segmented>"
     << (ann.segmented ? 1 : 0) << "</segmented>\n";
  for (const VocObject& o : ann.objects) {
    os << "\t<object>\n\t\t<name>" << o.name << "</name>\n\t\t<pose>" << o.pose
       << "</pose>\n\t\t<truncated>" << (o.truncated ? 1 : 0) << "</truncated>\n";
    if (o.occluded) os << "\t\t<occluded>1</occluded>\n";
    os << "\t\t<difficult>" << (o.difficult ? 1 : 0) << "</difficult>\n";
    if (o.has_box) format_box(os, o.box, "\t\t");
    for (const VocPart& p : o.parts) {
      os << "\t\t<part>\n\t\t\t<name>" << p.name << "</name>\n";
      format_box(os, p.box, "\t\t\t");
      os << "\t\t</part>\n";
    }
    os << "\t</object>\n";
  }
  os << "</annotation>\n";
  return os.str();
}

std::string resolve_voc_root(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(fs::path(path) / "ImageSets", ec)) return path;
  const std::string nested = (fs::path(path) / "VOC2012").string();
  if (fs::is_directory(fs::path(nested) / "ImageSets", ec)) return nested;
  throw Error(str_cat(path, ": not a VOC root (no ImageSets/ here nor in VOC2012/)"));
}

std::vector<std::string> read_voc_split(const std::string& root, const std::string& set,
                                        const std::string& split) {
  const std::string path = (fs::path(root) / "ImageSets" / set / (split + ".txt")).string();
  std::ifstream in(path);
  PRM_CHECK(in.good(), path, ": cannot open split list");
  std::vector<std::string> ids;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id;
    if (ls >> id) ids.push_back(id);  // per-class lists carry a label after the id
  }
  PRM_CHECK(!ids.empty(), path, ": empty split list");
  return ids;
}

std::string resolve_dataset_format(const std::string& root, const std::string& requested) {
  std::error_code ec;
  const bool coco = is_coco_root(root) && !fs::is_directory(fs::path(root) / "ImageSets", ec);
  if (requested == "auto") return coco ? "coco" : "voc";
  if (requested == "voc") {
    PRM_CHECK(!coco, root, ": a COCO root (annotations/, no ImageSets/), not the VOC layout "
              "asked for (--format voc); give --format coco, or leave --format out to detect it");
    return requested;
  }
  if (requested == "coco") {
    PRM_CHECK(is_coco_root(root), root, ": not a COCO root (no annotations/ folder holding "
              "instances_<split>.json), as asked for (--format coco); give --format voc for a "
              "VOC root, or leave --format out to detect it");
    return requested;
  }
  throw Error(str_cat("unknown dataset format '", requested, "' (auto, voc, coco)"));
}

VocDataset::VocDataset(const VocOptions& options) : options_(options) {
  format_ = resolve_dataset_format(options_.root, options_.format);
  if (format_ == "coco") {
    read_coco();
  } else {
    read_voc();
  }
}

std::vector<int> VocDataset::image_labels(size_t i) const {
  const VocSample& s = samples_.at(i);
  if (format_ != "coco")
    return voc_image_labels(s.annotation.objects, static_cast<int>(classes_.size()));
  std::vector<int> labels;
  labels.reserve(s.target.size());
  for (float t : s.target) labels.push_back(t > 0 ? 1 : -1);
  return labels;
}

namespace {

// The split names of a COCO root: the <split> of each annotations/instances_<split>.json.
std::string coco_splits_found(const std::string& root) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(fs::path(root) / "annotations", ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string f = it->path().filename().string();
    const std::string prefix = "instances_", suffix = ".json";
    if (f.size() > prefix.size() + suffix.size() && f.compare(0, prefix.size(), prefix) == 0 &&
        f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0)
      names.push_back(f.substr(prefix.size(), f.size() - prefix.size() - suffix.size()));
  }
  std::sort(names.begin(), names.end());
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
  return list.empty() ? "none" : list;
}

}  // namespace

void VocDataset::read_coco() {
  root_ = options_.root;
  const std::string& split = options_.split;
  const std::string path = coco_annotation_path(root_, split);
  PRM_CHECK(exists_file(path), root_, ": no COCO split '", split, "' (", path,
            " does not exist; splits here: ", coco_splits_found(root_), ")");
  CocoReadOptions read;
  read.segmentations = false;  // the image-level index only
  const CocoDataset coco = read_coco_annotations(path, read);
  classes_ = coco.class_names();
  PRM_CHECK(!classes_.empty(), path, ": no categories");
  samples_.reserve(coco.images.size());
  for (size_t i = 0; i < coco.images.size(); ++i) {
    const CocoImage& image = coco.images[i];
    try {
      VocSample s;
      s.id = std::to_string(image.id);
      s.image_path = coco_image_path(root_, split, image);
      if (options_.check_images)
        PRM_CHECK(exists_file(s.image_path), s.image_path, ": image ", image.id, " of ", path,
                  " is missing");
      s.annotation.folder = split;
      s.annotation.filename = image.file_name;
      s.annotation.width = image.width;
      s.annotation.height = image.height;
      s.target = coco.labels(static_cast<int>(i));
      samples_.push_back(std::move(s));
    } catch (const Error& e) {
      if (!options_.skip_bad) throw;
      std::fprintf(stderr, "warning: skipping image %lld: %s\n", static_cast<long long>(image.id),
                   e.what());
      ++skipped_;
    }
  }
}

void VocDataset::read_voc() {
  classes_ = options_.classes;
  PRM_CHECK(!classes_.empty(), "VocDataset: empty class list");
  root_ = resolve_voc_root(options_.root);
  const std::vector<std::string> ids =
      read_voc_split(root_, options_.segmentation ? "Segmentation" : "Main", options_.split);
  const int C = static_cast<int>(options_.classes.size());
  for (const std::string& id : ids) {
    try {
      VocSample s;
      s.id = id;
      s.image_path = (fs::path(root_) / "JPEGImages" / (id + ".jpg")).string();
      if (options_.check_images)
        PRM_CHECK(exists_file(s.image_path), s.image_path, ": image listed in split '",
                  options_.split, "' is missing");
      const std::string xml_path = (fs::path(root_) / "Annotations" / (id + ".xml")).string();
      PRM_CHECK(exists_file(xml_path), xml_path, ": annotation listed in split '", options_.split,
                "' is missing");
      s.annotation = read_voc_annotation(xml_path, options_.classes);
      s.target.clear();
      for (int label : voc_image_labels(s.annotation.objects, C))
        s.target.push_back(training_target(label, options_.exclude_difficult));
      samples_.push_back(std::move(s));
    } catch (const Error& e) {
      if (!options_.skip_bad) throw;
      std::fprintf(stderr, "warning: skipping image %s: %s\n", id.c_str(), e.what());
      ++skipped_;
    }
  }
}

InstanceGroundTruth load_instance_ground_truth(const std::string& root, const std::string& id,
                                               int num_classes, int expected_w, int expected_h) {
  const std::string obj_path = (fs::path(root) / "SegmentationObject" / (id + ".png")).string();
  const std::string cls_path = (fs::path(root) / "SegmentationClass" / (id + ".png")).string();
  IndexedImage obj = read_indexed_png(obj_path);
  IndexedImage cls = read_indexed_png(cls_path);
  if (expected_w > 0 && expected_h > 0) {
    PRM_CHECK(obj.width == expected_w && obj.height == expected_h, obj_path, ": size ", obj.width,
              "x", obj.height, " but the image is ", expected_w, "x", expected_h);
  }
  PRM_CHECK(cls.width == obj.width && cls.height == obj.height, cls_path, ": size ", cls.width, "x",
            cls.height, " differs from SegmentationObject's ", obj.width, "x", obj.height);
  InstanceGroundTruth gt;
  gt.width = obj.width;
  gt.height = obj.height;
  gt.objects = std::move(obj.index);
  gt.classes = std::move(cls.index);
  // votes[v][c]: pixels of object value v painted with class c (1..C) in SegmentationClass.
  std::vector<std::vector<int64_t>> votes(256, std::vector<int64_t>(num_classes + 1, 0));
  std::vector<int64_t> area(256, 0);
  for (size_t i = 0; i < gt.objects.size(); ++i) {
    const int v = gt.objects[i], c = gt.classes[i];
    PRM_CHECK(c == 255 || c <= num_classes, cls_path, ": class index ", c, " out of range (",
              num_classes, " classes)");
    if (v == 0 || v == 255) continue;
    ++area[v];
    if (c != 255) ++votes[v][c];
  }
  for (int v = 1; v < 255; ++v) {
    if (area[v] == 0) continue;
    int best = 0;
    for (int c = 1; c <= num_classes; ++c)
      if (votes[v][c] > votes[v][best]) best = c;
    PRM_CHECK(best > 0, obj_path, ": instance ", v, " lies on background or void only in ",
              cls_path);
    gt.instances.push_back(GtInstance{v, best - 1, area[v]});
  }
  return gt;
}

}  // namespace prm
