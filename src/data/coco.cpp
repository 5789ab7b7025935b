#include "data/coco.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "data/files.h"
#include "data/json_cursor.h"
#include "data/json_record.h"
#include "tensor/error.h"

namespace prm {

namespace fs = std::filesystem;

std::string coco_annotation_path(const std::string& root, const std::string& split) {
  return (fs::path(root) / "annotations" / ("instances_" + split + ".json")).string();
}

std::string coco_image_path(const std::string& root, const std::string& split,
                            const CocoImage& image) {
  return (fs::path(root) / split / image.file_name).string();
}

bool is_coco_root(const std::string& root) {
  std::error_code ec;
  return fs::is_directory(fs::path(root) / "annotations", ec);
}

std::vector<std::string> CocoDataset::class_names() const {
  std::vector<std::string> names;
  names.reserve(categories.size());
  for (const CocoCategory& c : categories) names.push_back(c.name);
  return names;
}

std::vector<float> CocoDataset::labels(int image) const {
  std::vector<float> y(categories.size(), 0.0f);
  for (int a : image_annotations.at(image)) y[annotations[a].category] = 1.0f;
  return y;
}

namespace {

void require(const JsonRecord& r, bool present, const char* name) {
  if (!present) r.fail(str_cat("no '", name, "' field"));
}

int image_side(const JsonRecord& r, int64_t v) {
  if (v <= 0 || v > (1 << 20)) r.fail(str_cat("image side ", v, " is not in 1..", 1 << 20));
  return static_cast<int>(v);
}

CocoImage read_image(JsonCursor& c, size_t index) {
  JsonRecord r(c, "images", index);
  CocoImage img;
  bool has_id = false, has_name = false, has_w = false, has_h = false;
  c.begin_object();
  while (c.next_field()) {
    const std::string& name = c.name();
    if (name == "id") {
      img.id = r.field("id", [&] { return c.read_int64(); });
      r.set_id(img.id);
      has_id = true;
    } else if (name == "file_name") {
      img.file_name = r.field("file_name", [&] { return c.read_string(); });
      has_name = true;
    } else if (name == "width") {
      img.width = image_side(r, r.field("width", [&] { return c.read_int64(); }));
      has_w = true;
    } else if (name == "height") {
      img.height = image_side(r, r.field("height", [&] { return c.read_int64(); }));
      has_h = true;
    } else {
      c.skip();
    }
  }
  require(r, has_id, "id");
  require(r, has_name, "file_name");
  require(r, has_w, "width");
  require(r, has_h, "height");
  const fs::path p(img.file_name);
  if (img.file_name.empty() || p.is_absolute() ||
      std::any_of(p.begin(), p.end(), [](const fs::path& part) { return part == ".."; }))
    r.fail(str_cat("file_name '", img.file_name, "' leaves the image folder"));
  return img;
}

CocoCategory read_category(JsonCursor& c, size_t index) {
  JsonRecord r(c, "categories", index);
  CocoCategory cat;
  bool has_id = false, has_name = false;
  c.begin_object();
  while (c.next_field()) {
    const std::string& name = c.name();
    if (name == "id") {
      cat.id = r.field("id", [&] { return c.read_int64(); });
      r.set_id(cat.id);
      has_id = true;
    } else if (name == "name") {
      cat.name = r.field("name", [&] { return c.read_string(); });
      has_name = true;
    } else if (name == "supercategory") {
      cat.supercategory = r.field("supercategory", [&] { return c.read_string(); });
    } else {
      c.skip();
    }
  }
  require(r, has_id, "id");
  require(r, has_name, "name");
  return cat;
}

void read_polygons(JsonCursor& c, const JsonRecord& r, CocoSegmentation& s) {
  s.kind = CocoSegmentation::Kind::polygons;
  c.begin_array();
  while (c.next_item()) {
    std::vector<double> poly;
    c.read_doubles(poly);
    if (poly.size() % 2 != 0)
      r.fail(str_cat("polygon ", s.polygons.size(), " has an odd number of coordinates (",
                     poly.size(), ")"));
    if (poly.size() < 6)
      r.fail(str_cat("polygon ", s.polygons.size(), " has fewer than 3 points (", poly.size() / 2,
                     ")"));
    s.polygons.push_back(std::move(poly));
  }
}

void read_rle(JsonCursor& c, const JsonRecord& r, CocoSegmentation& s) {
  bool has_size = false, has_counts = false;
  c.begin_object();
  while (c.next_field()) {
    if (c.name() == "size") {
      c.begin_array();
      std::vector<int64_t> size;
      while (c.next_item()) size.push_back(c.read_int64());
      if (size.size() != 2 || size[0] < 0 || size[1] < 0)
        r.fail("segmentation size is not [height, width]");
      s.rle_height = size[0];
      s.rle_width = size[1];
      has_size = true;
    } else if (c.name() == "counts") {
      if (c.peek() == Json::Kind::string) {
        s.kind = CocoSegmentation::Kind::compressed_rle;
        s.compressed = c.read_string();
      } else {
        s.kind = CocoSegmentation::Kind::rle;
        c.begin_array();
        while (c.next_item()) {
          const int64_t v = c.read_int64();
          if (v < 0 || v > UINT32_MAX) r.fail(str_cat("RLE count ", v, " out of range"));
          s.counts.push_back(static_cast<uint32_t>(v));
        }
      }
      has_counts = true;
    } else {
      c.skip();
    }
  }
  if (!has_size || !has_counts) r.fail("RLE segmentation without 'size' and 'counts'");
  if (s.kind == CocoSegmentation::Kind::rle) {
    uint64_t sum = 0;
    for (uint32_t v : s.counts) sum += v;
    const uint64_t n = static_cast<uint64_t>(s.rle_height) * static_cast<uint64_t>(s.rle_width);
    if (sum != n)
      r.fail(str_cat("RLE counts sum to ", sum, ", not ", s.rle_height, " x ", s.rle_width, " = ",
                     n));
  }
}

CocoAnnotation read_annotation(JsonCursor& c, size_t index, const CocoReadOptions& options,
                               int64_t& image_id, int64_t& category_id) {
  JsonRecord r(c, "annotations", index);
  CocoAnnotation a;
  bool has_id = false, has_image = false, has_category = false;
  c.begin_object();
  while (c.next_field()) {
    const std::string& name = c.name();
    if (name == "id") {
      a.id = r.field("id", [&] { return c.read_int64(); });
      r.set_id(a.id);
      has_id = true;
    } else if (name == "image_id") {
      image_id = r.field("image_id", [&] { return c.read_int64(); });
      has_image = true;
    } else if (name == "category_id") {
      category_id = r.field("category_id", [&] { return c.read_int64(); });
      has_category = true;
    } else if (name == "iscrowd") {
      const int64_t v = r.field("iscrowd", [&] { return c.read_int64(); });
      if (v != 0 && v != 1) r.fail(str_cat("iscrowd is ", v, ", not 0 or 1"));
      a.iscrowd = v == 1;
    } else if (name == "area") {
      a.area = r.field("area", [&] { return c.read_double(); });
      a.has_area = true;
    } else if (name == "bbox") {
      r.field("bbox", [&] {
        c.begin_array();
        int n = 0;
        while (c.next_item()) {
          const double v = c.read_double();
          if (n < 4) a.bbox[n] = v;
          ++n;
        }
        if (n != 4) r.fail(str_cat("bbox has ", n, " numbers, not 4"));
        return 0;
      });
      a.has_bbox = true;
    } else if (name == "segmentation" && options.segmentations) {
      r.field("segmentation", [&] {
        if (c.peek() == Json::Kind::array) read_polygons(c, r, a.segmentation);
        else read_rle(c, r, a.segmentation);
        return 0;
      });
    } else {
      c.skip();
    }
  }
  require(r, has_id, "id");
  require(r, has_image, "image_id");
  require(r, has_category, "category_id");
  return a;
}

}  // namespace

CocoDataset parse_coco_annotations(std::string_view text, const std::string& source,
                                   const CocoReadOptions& options) {
  CocoDataset d;
  d.path = source;
  JsonCursor c(text, source);
  // Annotations may come before images or categories in the file: their ids are resolved after.
  std::vector<std::pair<int64_t, int64_t>> refs;  // (image id, category id) per annotation
  bool has_images = false, has_categories = false, has_annotations = false;
  if (c.peek() != Json::Kind::object)
    throw Error(str_cat(source, ": not a COCO annotation file (the document is not an object)"));
  c.begin_object();
  while (c.next_field()) {
    const std::string name = c.name();
    if (name == "images" || name == "categories" || name == "annotations") {
      if (c.peek() != Json::Kind::array)
        throw Error(str_cat(source, ": not a COCO annotation file ('", name,
                            "' is not an array)"));
      c.begin_array();
      while (c.next_item()) {
        if (name == "images") {
          d.images.push_back(read_image(c, d.images.size()));
        } else if (name == "categories") {
          d.categories.push_back(read_category(c, d.categories.size()));
        } else {
          int64_t image_id = 0, category_id = 0;
          d.annotations.push_back(
              read_annotation(c, d.annotations.size(), options, image_id, category_id));
          refs.emplace_back(image_id, category_id);
        }
      }
      (name == "images" ? has_images : name == "categories" ? has_categories : has_annotations) =
          true;
    } else {
      c.skip();
    }
  }
  c.end_document();
  for (const char* missing : {has_images ? "" : "images", has_annotations ? "" : "annotations",
                              has_categories ? "" : "categories"})
    if (*missing)
      throw Error(str_cat(source, ": not a COCO instances file (no '", missing, "' array)"));

  for (size_t i = 0; i < d.images.size(); ++i)
    if (!d.image_index.emplace(d.images[i].id, static_cast<int>(i)).second)
      throw Error(str_cat(source, ": images[", i, "]: repeated image id ", d.images[i].id));
  std::stable_sort(d.categories.begin(), d.categories.end(),
                   [](const CocoCategory& a, const CocoCategory& b) { return a.id < b.id; });
  for (size_t i = 0; i < d.categories.size(); ++i)
    if (!d.category_index.emplace(d.categories[i].id, static_cast<int>(i)).second)
      throw Error(str_cat(source, ": categories: repeated category id ", d.categories[i].id));

  // Repeated annotation ids: sorted (id, index) pairs, a repeat next to its first.
  std::vector<std::pair<int64_t, size_t>> ids(d.annotations.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = {d.annotations[i].id, i};
  std::sort(ids.begin(), ids.end());
  size_t repeat = SIZE_MAX, first = 0;
  for (size_t k = 1; k < ids.size(); ++k)
    if (ids[k].first == ids[k - 1].first && ids[k].second < repeat) {
      repeat = ids[k].second;
      first = ids[k - 1].second;
      for (size_t j = k - 1; j > 0 && ids[j - 1].first == ids[k].first; --j) first = ids[j - 1].second;
    }

  d.image_annotations.assign(d.images.size(), {});
  for (size_t i = 0; i < d.annotations.size(); ++i) {
    CocoAnnotation& a = d.annotations[i];
    auto where = [&] { return str_cat(source, ": annotations[", i, "] (id ", a.id, "): "); };
    if (i == repeat)
      throw Error(str_cat(where(), "repeated annotation id (annotations[", first, "] has it too)"));
    const auto img = d.image_index.find(refs[i].first);
    if (img == d.image_index.end())
      throw Error(str_cat(where(), "unknown image_id ", refs[i].first));
    const auto cat = d.category_index.find(refs[i].second);
    if (cat == d.category_index.end())
      throw Error(str_cat(where(), "unknown category_id ", refs[i].second));
    a.image = img->second;
    a.category = cat->second;
    const CocoImage& im = d.images[a.image];
    const CocoSegmentation& s = a.segmentation;
    if (s.kind != CocoSegmentation::Kind::none && s.kind != CocoSegmentation::Kind::polygons &&
        (s.rle_height != im.height || s.rle_width != im.width))
      throw Error(str_cat(where(), "RLE size ", s.rle_height, " x ", s.rle_width,
                          " is not its image's ", im.height, " x ", im.width));
    d.image_annotations[a.image].push_back(static_cast<int>(i));
  }
  return d;
}

CocoDataset read_coco_annotations(const std::string& path, const CocoReadOptions& options) {
  const MappedFile file(path);
  return parse_coco_annotations(file.bytes(), path, options);
}

}  // namespace prm
