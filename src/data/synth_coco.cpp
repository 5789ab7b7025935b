#include "data/synth_coco.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>

#include "data/coco_mask.h"
#include "data/files.h"
#include "data/json.h"
#include "data/polygon_trace.h"
#include "tensor/error.h"

namespace prm {

namespace fs = std::filesystem;

namespace {

constexpr double kCrowdFraction = 0.1;

// splitmix64's finaliser: a well-mixed 64-bit hash.
uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Whether object k of image `index` is annotated as a crowd region (a hash of seed, image, k).
bool is_crowd(uint64_t seed, int index, size_t k) {
  const uint64_t h = mix(mix(mix(seed) ^ static_cast<uint64_t>(index)) ^ k);
  return static_cast<double>(h >> 11) * 0x1.0p-53 < kCrowdFraction;
}

Json number_array(const std::vector<double>& values) {
  Json a = Json::array();
  for (double v : values) a.push_back(Json(v));
  return a;
}

// One image's record and its annotations (without their ids, given when the set is assembled).
struct ImageRecord {
  Json image;
  std::vector<Json> annotations;
  int64_t crowd = 0, parts = 0;
};

// The annotation of object k (mask: its visible pixels, row-major H x W).
Json object_annotation(const std::vector<uint8_t>& mask, int H, int W, int64_t image_id,
                       int64_t category_id, bool crowd, int64_t& parts) {
  const uint32_t h = static_cast<uint32_t>(H), w = static_cast<uint32_t>(W);
  coco::Rle rle;
  Json segmentation;
  if (crowd) {
    rle = coco::rle_encode(mask.data(), h, w);
    Json counts = Json::array();
    for (uint32_t c : rle.counts) counts.push_back(Json(c));
    segmentation = Json::object({{"counts", counts},
                                 {"size", Json::array({Json(H), Json(W)})}});
  } else {
    const std::vector<std::vector<double>> polygons = mask_to_polygons(mask.data(), H, W);
    rle = coco::rle_from_polygons(polygons, h, w);
    segmentation = Json::array();
    for (const std::vector<double>& part : polygons) {
      Json xy = Json::array();
      for (double v : part) xy.push_back(Json::fixed(v, 2));  // reads back as v (polygon_trace.h)
      segmentation.push_back(xy);
    }
    parts += static_cast<int64_t>(polygons.size());
  }
  const std::array<double, 4> box = coco::rle_to_bbox(rle);
  return Json::object({{"segmentation", segmentation},
                       {"area", Json(static_cast<int64_t>(coco::rle_area(rle)))},
                       {"iscrowd", Json(crowd ? 1 : 0)},
                       {"image_id", Json(image_id)},
                       {"bbox", number_array({box[0], box[1], box[2], box[3]})},
                       {"category_id", Json(category_id)}});
}

// Draws image `index` (number j of its split's n), writes its JPEG, and annotates it.
ImageRecord make_image(const SynthOptions& options, const fs::path& root, const std::string& split,
                       int index, int j, int n) {
  const bool background_only = synth_coco_background_only(j, n, options.seed);
  const SynthImage im = synth_image(options, index, !background_only);
  const int64_t id = index + 1;
  char name[96];
  std::snprintf(name, sizeof name, "_%012lld.jpg", static_cast<long long>(id));
  const std::string file_name = "COCO_" + split + name;
  save_jpeg((root / split / file_name).string(), im.rgb, 92);
  const int W = im.rgb.width, H = im.rgb.height;
  ImageRecord r;
  r.image = Json::object({{"license", Json(1)},
                          {"file_name", Json(file_name)},
                          {"height", Json(H)},
                          {"width", Json(W)},
                          {"id", Json(id)}});
  std::vector<uint8_t> mask(im.owners.size());
  for (size_t k = 0; k < im.annotation.objects.size(); ++k) {
    for (size_t p = 0; p < mask.size(); ++p) mask[p] = im.owners[p] == k + 1;
    const bool crowd = is_crowd(options.seed, index, k);
    const CocoCategory& cat = synth_coco_categories().at(im.annotation.objects[k].class_id);
    r.annotations.push_back(object_annotation(mask, H, W, id, cat.id, crowd, r.parts));
    r.crowd += crowd;
  }
  return r;
}

void check_split_name(const std::string& name) {
  PRM_CHECK(!name.empty() && name != "annotations" && name != "." && name != ".." &&
                name.find_first_of("/\\") == std::string::npos,
            "synth: '", name, "' cannot name a COCO split (a folder of the root)");
}

}  // namespace

const std::vector<CocoCategory>& synth_coco_categories() {
  static const std::vector<CocoCategory> categories = {
      {1, "person", "person"},          {2, "bicycle", "vehicle"},
      {3, "car", "vehicle"},            {4, "motorcycle", "vehicle"},
      {5, "airplane", "vehicle"},       {6, "bus", "vehicle"},
      {7, "train", "vehicle"},          {8, "truck", "vehicle"},
      {9, "boat", "vehicle"},           {10, "traffic light", "outdoor"},
      {11, "fire hydrant", "outdoor"},  {13, "stop sign", "outdoor"},
      {14, "parking meter", "outdoor"}, {15, "bench", "outdoor"},
      {16, "bird", "animal"},           {17, "cat", "animal"},
      {18, "dog", "animal"},            {19, "horse", "animal"},
      {20, "sheep", "animal"},          {21, "cow", "animal"}};
  return categories;
}

bool synth_coco_background_only(int j, int n, uint64_t seed) {
  return n >= 2 && static_cast<uint64_t>(j % 16) == seed % static_cast<uint64_t>(std::min(n, 16));
}

SynthCocoSummary synthesize_coco(const SynthOptions& options, const SynthCocoSplits& splits) {
  PRM_CHECK(!options.out.empty(), "synth: --out is required");
  PRM_CHECK(options.train >= 0 && options.val >= 0 && options.train + options.val > 0,
            "synth: need at least one image (--train ", options.train, " --val ", options.val, ")");
  PRM_CHECK(options.classes >= 1 &&
                options.classes <= static_cast<int>(synth_coco_categories().size()),
            "synth: --classes must be in [1, ", synth_coco_categories().size(), "], got ",
            options.classes);
  check_split_name(splits.train);
  check_split_name(splits.val);
  PRM_CHECK(splits.train != splits.val, "synth: the train and val splits have one name, '",
            splits.train, "'");
  const fs::path root(options.out);
  for (const fs::path& dir : {root / "annotations", root / splits.train, root / splits.val}) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    PRM_CHECK(!ec, dir.string(), ": cannot create folder (", ec.message(), ")");
  }
  const int total = options.train + options.val;
  std::vector<ImageRecord> records(total);
  std::vector<std::string> errors(total);  // an exception must not leave an OpenMP region
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < total; ++i) {
    try {
      const bool train = i < options.train;
      records[i] = make_image(options, root, train ? splits.train : splits.val, i,
                              train ? i : i - options.train, train ? options.train : options.val);
    } catch (const std::exception& e) {
      errors[i] = e.what();
    }
  }
  for (const std::string& e : errors) PRM_CHECK(e.empty(), e);

  Json categories = Json::array();  // descending ids: readers must sort
  for (int c = options.classes - 1; c >= 0; --c) {
    const CocoCategory& cat = synth_coco_categories()[c];
    categories.push_back(Json::object({{"supercategory", Json(cat.supercategory)},
                                       {"id", Json(cat.id)},
                                       {"name", Json(cat.name)}}));
  }
  SynthCocoSummary summary;
  int64_t next_id = 1;
  for (const bool train : {true, false}) {
    Json images = Json::array(), annotations = Json::array();
    const int begin = train ? 0 : options.train, end = train ? options.train : total;
    for (int i = begin; i < end; ++i) {
      ImageRecord& r = records[i];
      images.push_back(std::move(r.image));
      summary.empty_images += r.annotations.empty();
      summary.crowd += r.crowd;
      summary.polygon_parts += r.parts;
      for (Json& a : r.annotations) {
        a.set("id", Json(next_id++));
        annotations.push_back(std::move(a));
      }
    }
    summary.images += end - begin;
    const Json info = Json::object(
        {{"description", Json(str_cat("prm synth --format coco (seed ", options.seed, ", cue ",
                                       options.cue == SynthCue::shape ? "shape" : "all",
                                       "): synthetic drawings, not photographs"))},
         {"version", Json("1.0")},
         {"contributor", Json("prm synth")}});
    const Json licenses = Json::array({Json::object(
        {{"id", Json(1)}, {"name", Json("generated by prm synth")}, {"url", Json("")}})});
    const Json doc = Json::object({{"info", info},
                                   {"licenses", licenses},
                                   {"images", images},
                                   {"annotations", annotations},
                                   {"categories", categories}});
    write_file_atomic(coco_annotation_path(options.out, train ? splits.train : splits.val),
                      write_json(doc));
  }
  summary.annotations = next_id - 1;
  return summary;
}

}  // namespace prm
