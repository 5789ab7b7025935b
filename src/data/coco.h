// MS COCO annotations (instances_<split>.json) read into a compact index: images, categories,
// annotations with their boxes and segmentations, the annotations of each image.
//
// Layout of a COCO root (COCO 2014 and 2017 as they unpack):
//   annotations/instances_<split>.json    images in <split>/<file_name>
// Classes are the JSON's `categories` sorted by ascending id (COCO's 80 ids run from 1 to 90 with
// gaps); an image is positive for a class when it has any annotation of it, crowd included.
//
// The file is read with a pull reader (data/json_cursor.h) straight into these structs: no tree
// of the document is built, so train2014's 331 MB JSON takes about its own size in memory, plus
// the polygons' coordinates as doubles (pycocotools rasterises the doubles Python read).
//
// Bad input throws prm::Error with one line naming the file and the record:
//   "<file>: annotations[17] (id 90210): unknown image_id 4242"
// for: a document that is not a COCO instances file (no `images`, `annotations` or `categories`
// array), a missing or mistyped field, a repeated image, category or annotation id, an unknown
// image_id or category_id, a polygon with an odd number of coordinates or fewer than 3 points, an
// uncompressed RLE whose counts do not sum to height x width or whose size is not its image's,
// an image side outside 1..2^20, a file_name that leaves the image folder.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace prm {

struct CocoImage {
  int64_t id = 0;
  std::string file_name;
  int width = 0, height = 0;
};

struct CocoCategory {
  int64_t id = 0;
  std::string name, supercategory;
};

// An annotation's `segmentation`: polygons (each [x1, y1, x2, y2, ...], float pixel coordinates)
// or a run-length encoding {"size": [h, w], "counts": [...] or "<compressed string>"}.
struct CocoSegmentation {
  enum class Kind { none, polygons, rle, compressed_rle };
  Kind kind = Kind::none;
  std::vector<std::vector<double>> polygons;
  int64_t rle_height = 0, rle_width = 0;
  std::vector<uint32_t> counts;  // Kind::rle: column-major runs, starting with zeros
  std::string compressed;        // Kind::compressed_rle: pycocotools' string form
};

struct CocoAnnotation {
  int64_t id = 0;
  int image = -1;     // index in CocoDataset::images
  int category = -1;  // class index (the sorted category list)
  bool iscrowd = false;
  double area = 0;
  bool has_area = false;
  double bbox[4] = {0, 0, 0, 0};  // x, y, w, h
  bool has_bbox = false;
  CocoSegmentation segmentation;
};

struct CocoDataset {
  std::string path;  // the annotation file
  std::vector<CocoImage> images;          // in file order
  std::vector<CocoCategory> categories;   // by ascending id: index = class index
  std::vector<CocoAnnotation> annotations;  // in file order
  std::vector<std::vector<int>> image_annotations;  // per image: indices into annotations
  std::unordered_map<int64_t, int> image_index;     // image id -> index
  std::unordered_map<int64_t, int> category_index;  // category id -> class index

  std::vector<std::string> class_names() const;
  // Image-level targets: 1 for each class with any annotation in the image (crowd included).
  std::vector<float> labels(int image) const;
};

struct CocoReadOptions {
  bool segmentations = true;  // false: skip them (training needs labels only)
};

// ROOT/annotations/instances_<split>.json and ROOT/<split>/<file_name>.
std::string coco_annotation_path(const std::string& root, const std::string& split);
std::string coco_image_path(const std::string& root, const std::string& split,
                            const CocoImage& image);
// True when ROOT/annotations/ exists (the layout is COCO's rather than VOC's).
bool is_coco_root(const std::string& root);

CocoDataset read_coco_annotations(const std::string& path, const CocoReadOptions& options = {});
// The same on text in memory; `source` names it in errors.
CocoDataset parse_coco_annotations(std::string_view text, const std::string& source,
                                   const CocoReadOptions& options = {});

}  // namespace prm
