#include "data/coco_results.h"

#include <algorithm>
#include <cmath>

#include "data/coco_mask.h"
#include "data/files.h"
#include "data/json.h"
#include "data/json_cursor.h"
#include "data/json_record.h"
#include "tensor/error.h"

namespace prm {

namespace {

Json result_head(int64_t image_id, int64_t category_id, double score) {
  return Json::object({{"image_id", image_id}, {"category_id", category_id}, {"score", score}});
}

std::string array_of(const std::vector<Json>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ",\n" : "\n") + write_json(items[i]);
  return out + (items.empty() ? "]\n" : "\n]\n");
}

// One result object's fields; `extra` reads the fields beyond the three every result has.
struct ResultFields {
  int64_t image_id = 0, category_id = 0;
  double score = 0;
  bool has_image = false, has_category = false, has_score = false;
};

// A reader of one kind of result: read() takes the field the kind requires, optional() any other
// field it knows (returning false for the rest, which are skipped), finish() the whole result.
struct ScoresReader {
  std::vector<CocoScoreResult> out;
  void read(JsonCursor&, const JsonRecord&) {}
  bool optional(const std::string&, JsonCursor&, const JsonRecord&) { return false; }
  void finish(const ResultFields& f, const CocoImage&, const JsonRecord&) {
    out.push_back({f.image_id, f.category_id, f.score});
  }
};

struct PointsReader {
  std::vector<CocoPointResult> out;
  std::vector<double> xy;
  bool optional(const std::string&, JsonCursor&, const JsonRecord&) { return false; }
  void read(JsonCursor& c, const JsonRecord& r) {
    xy.clear();
    c.read_doubles(xy);
    if (xy.size() != 2) r.fail(str_cat("point has ", xy.size(), " numbers, not 2"));
  }
  void finish(const ResultFields& f, const CocoImage& im, const JsonRecord& r) {
    const double x = xy[0], y = xy[1];
    if (!(x >= 0 && x <= im.width - 1 && y >= 0 && y <= im.height - 1))
      r.fail(str_cat("point (", x, ", ", y, ") is outside image ", im.id, " (", im.width, "x",
                   im.height, ": x in 0..", im.width - 1, ", y in 0..", im.height - 1, ")"));
    out.push_back({f.image_id, f.category_id, f.score, x, y});
  }
};

struct MasksReader {
  std::vector<CocoMaskResult> out;
  int64_t h = -1, w = -1;
  std::string counts;
  std::vector<double> bbox;
  bool has_bbox = false;
  // "bbox" (detectors write one beside the mask): kept, since it decides pycocotools' areas.
  bool optional(const std::string& name, JsonCursor& c, const JsonRecord& r) {
    if (name != "bbox") return false;
    r.field("bbox", [&] { c.read_doubles(bbox); });
    if (!bbox.empty() && bbox.size() != 4) r.fail(str_cat("bbox has ", bbox.size(), " numbers, not 4"));
    has_bbox = true;
    return true;
  }
  void read(JsonCursor& c, const JsonRecord& r) {
    bool has_counts = false;
    c.begin_object();
    while (c.next_field()) {
      if (c.name() == "size") {
        std::vector<double> size;
        c.read_doubles(size);
        if (size.size() != 2 || !(size[0] >= 0 && size[0] <= 1e6 && size[1] >= 0 && size[1] <= 1e6) ||
            size[0] != std::floor(size[0]) || size[1] != std::floor(size[1]))
          r.fail("segmentation size is not [height, width]");
        h = static_cast<int64_t>(size[0]);
        w = static_cast<int64_t>(size[1]);
      } else if (c.name() == "counts") {
        if (c.peek() != Json::Kind::string)
          r.fail("segmentation counts are not a compressed RLE string");
        counts = c.read_string();
        has_counts = true;
      } else {
        c.skip();
      }
    }
    if (h < 0 || !has_counts) r.fail("segmentation without 'size' and 'counts'");
  }
  void finish(const ResultFields& f, const CocoImage& im, const JsonRecord& r) {
    if (h != im.height || w != im.width)
      r.fail(str_cat("mask size ", h, " x ", w, " is not image ", im.id, "'s ", im.height, " x ",
                   im.width));
    try {
      coco::rle_from_string(counts, static_cast<uint32_t>(h), static_cast<uint32_t>(w));
    } catch (const Error& e) {
      r.fail(str_cat("segmentation: ", e.what()));
    }
    CocoMaskResult m{f.image_id, f.category_id, f.score, h, w, counts};
    m.has_bbox = has_bbox;
    if (!bbox.empty()) std::copy(bbox.begin(), bbox.end(), m.bbox);
    m.empty_bbox = has_bbox && bbox.empty();
    out.push_back(std::move(m));
    has_bbox = false;
    bbox.clear();
  }
};

template <typename Extra>
void read_results(const std::string& path, const CocoDataset& gt, const char* extra_name,
                  Extra& extra) {
  const MappedFile file(path);
  JsonCursor c(file.bytes(), path);
  if (c.peek() != Json::Kind::array)
    throw Error(str_cat(path, ": not a COCO results file (the document is not an array)"));
  c.begin_array();
  for (size_t i = 0; c.next_item(); ++i) {
    const JsonRecord r(c, "", i);
    if (c.peek() != Json::Kind::object) r.fail("a result is not an object");
    ResultFields f;
    bool has_extra = false;
    c.begin_object();
    while (c.next_field()) {
      const std::string& name = c.name();
      if (name == "image_id") {
        f.image_id = r.field("image_id", [&] { return c.read_int64(); });
        f.has_image = true;
      } else if (name == "category_id") {
        f.category_id = r.field("category_id", [&] { return c.read_int64(); });
        f.has_category = true;
      } else if (name == "score") {
        f.score = r.field("score", [&] { return c.read_double(); });
        f.has_score = true;
      } else if (extra_name && name == extra_name) {
        r.field(extra_name, [&] { return extra.read(c, r); });
        has_extra = true;
      } else if (!extra.optional(name, c, r)) {
        c.skip();
      }
    }
    if (!f.has_image) r.fail("no 'image_id'");
    if (!f.has_category) r.fail("no 'category_id'");
    if (!f.has_score) r.fail("no 'score'");
    if (extra_name && !has_extra) r.fail(str_cat("no '", extra_name, "'"));
    const auto img = gt.image_index.find(f.image_id);
    if (img == gt.image_index.end()) r.fail(str_cat("unknown image_id ", f.image_id));
    if (!gt.category_index.count(f.category_id))
      r.fail(str_cat("unknown category_id ", f.category_id));
    extra.finish(f, gt.images[img->second], r);
  }
  c.end_document();
}

}  // namespace

std::string coco_scores_json(const std::vector<CocoScoreResult>& results) {
  std::vector<Json> items;
  for (const CocoScoreResult& r : results)
    items.push_back(result_head(r.image_id, r.category_id, r.score));
  return array_of(items);
}

std::string coco_points_json(const std::vector<CocoPointResult>& results) {
  std::vector<Json> items;
  for (const CocoPointResult& r : results) {
    Json j = result_head(r.image_id, r.category_id, r.score);
    j.set("point", Json::array({Json(r.x), Json(r.y)}));
    items.push_back(j);
  }
  return array_of(items);
}

std::string coco_masks_json(const std::vector<CocoMaskResult>& results) {
  std::vector<Json> items;
  for (const CocoMaskResult& r : results) {
    Json j = result_head(r.image_id, r.category_id, r.score);
    j.set("segmentation",
          Json::object({{"size", Json::array({Json(r.height), Json(r.width)})},
                        {"counts", r.counts}}));
    items.push_back(j);
  }
  return array_of(items);
}

std::vector<CocoScoreResult> read_coco_scores(const std::string& path, const CocoDataset& gt) {
  ScoresReader extra;
  read_results(path, gt, nullptr, extra);
  return extra.out;
}

std::vector<CocoPointResult> read_coco_points(const std::string& path, const CocoDataset& gt) {
  PointsReader extra;
  read_results(path, gt, "point", extra);
  return extra.out;
}

std::vector<CocoMaskResult> read_coco_masks(const std::string& path, const CocoDataset& gt) {
  MasksReader extra;
  read_results(path, gt, "segmentation", extra);
  return extra.out;
}

}  // namespace prm
