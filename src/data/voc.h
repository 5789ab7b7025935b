// PASCAL VOC 2012: the 20 class names, annotation XML (objects with name, pose, truncated,
// occluded, difficult, bounding box, parts, actions, point), split lists, image-level multi-label
// targets and the instance ground truth from SegmentationObject + SegmentationClass.
//
// Layout of a VOC root (VOCdevkit/VOC2012, or a `prm synth` output):
//   JPEGImages/<id>.jpg  Annotations/<id>.xml  SegmentationObject/<id>.png
//   SegmentationClass/<id>.png ImageSets/Main/<split>.txt (image-level labels)
//   ImageSets/Segmentation/<split>.txt (masks)
// Bad input (a missing file, an unknown class name, a broken tag) throws prm::Error naming the
// file; with skip_bad the image is left out with a warning on stderr and counted.
//
// VocDataset is also the training set of an MS COCO root (VocOptions::format "coco"; data/coco.h):
// one sample per image of ROOT/annotations/instances_<split>.json, its image ROOT/<split>/<file>,
// its target from the image's annotations (crowd included), the classes the categories by
// ascending id; only the image-level index is kept (annotations are read without segmentations
// and dropped), so memory does not grow with the number of annotations.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace prm::xml {
struct Element;
}

namespace prm {

const std::vector<std::string>& voc_class_names();  // aeroplane ... tvmonitor, VOC order

struct BoxF {
  double xmin = 0, ymin = 0, xmax = 0, ymax = 0;  // VOC pixel coordinates (1-based, inclusive)
};

struct VocPart {
  std::string name;
  BoxF box;
};

struct VocObject {
  std::string name;
  int class_id = -1;  // index in the class list
  std::string pose = "Unspecified";
  bool truncated = false;
  bool occluded = false;
  bool difficult = false;
  bool has_box = true;  // a few action-set objects carry only a point
  BoxF box;
  std::vector<VocPart> parts;
  std::vector<std::pair<std::string, int>> actions;  // <actions><jumping>0</jumping>...
  bool has_point = false;
  double point_x = 0, point_y = 0;
};

struct VocAnnotation {
  std::string folder, filename;
  int width = 0, height = 0, depth = 3;
  bool segmented = false;
  std::vector<VocObject> objects;
};

// Reads an <annotation> document. Object names must be in `classes` (prm::Error otherwise).
VocAnnotation parse_voc_annotation(const xml::Element& root, const std::string& source,
                                   const std::vector<std::string>& classes);
VocAnnotation read_voc_annotation(const std::string& path, const std::vector<std::string>& classes);
// Writes an annotation in the shape of the VOC 2012 files (tab indentation, same element order).
std::string format_voc_annotation(const VocAnnotation& ann);

// `path` may be VOC2012 itself or the VOCdevkit folder holding it.
std::string resolve_voc_root(const std::string& path);
// Image ids of ImageSets/<set>/<split>.txt (set "Main" or "Segmentation").
std::vector<std::string> read_voc_split(const std::string& root, const std::string& set,
                                        const std::string& split);

struct VocOptions {
  std::string root;  // VOC2012 or its parent
  std::string split = "train";
  bool segmentation = false;  // list from ImageSets/Segmentation instead of ImageSets/Main
  std::vector<std::string> classes = voc_class_names();
  bool exclude_difficult = false;  // difficult objects count as positives unless set
  bool skip_bad = false;
  bool check_images = true;  // a listed JPEG must exist
  // The layout: "voc", "coco" (ROOT/annotations/instances_<split>.json, images in ROOT/<split>/;
  // `classes`, `segmentation` and `exclude_difficult` do not apply: the classes are the file's
  // categories) or "auto" (resolve_dataset_format).
  std::string format = "voc";
};

// The layout of a dataset root, "voc" or "coco": with `requested` "auto", COCO when ROOT/annotations/
// exists and ROOT/ImageSets/ does not (a VOC root has Annotations/, which a case-insensitive file
// system would also call annotations/), else VOC; with "voc" or "coco" that one, after checking
// that the root has its shape (prm::Error in one line naming the root and the other layout when
// the root is the other's).
std::string resolve_dataset_format(const std::string& root, const std::string& requested);

struct VocSample {
  std::string id;             // COCO: the image id, in decimal
  std::string image_path;
  VocAnnotation annotation;   // COCO: file name and size only, no objects
  std::vector<float> target;  // [C] multi-label 0/1
};

class VocDataset {
 public:
  explicit VocDataset(const VocOptions& options);
  size_t size() const { return samples_.size(); }
  const VocSample& sample(size_t i) const { return samples_[i]; }
  const std::vector<VocSample>& samples() const { return samples_; }
  const std::vector<std::string>& classes() const { return classes_; }
  const std::string& root() const { return root_; }
  const std::string& format() const { return format_; }  // "voc" or "coco"
  int skipped() const { return skipped_; }  // images left out by skip_bad
  // Sample i's labels for classification_map: VOC's 1 / -1 / 0 (difficult only, ignored); on
  // COCO 1 for a class with any annotation in the image, else -1 (COCO has no "difficult").
  std::vector<int> image_labels(size_t i) const;

 private:
  void read_voc();
  void read_coco();

  VocOptions options_;
  std::string root_, format_;
  std::vector<std::string> classes_;
  std::vector<VocSample> samples_;
  int skipped_ = 0;
};

// One ground-truth instance: its value in SegmentationObject and the class painted under it in
// SegmentationClass (the majority over its non-void pixels).
struct GtInstance {
  int object_value = 0;  // 1..254 in SegmentationObject
  int class_id = -1;     // 0-based index in the class list
  int64_t area = 0;
};

struct InstanceGroundTruth {
  int width = 0, height = 0;
  std::vector<uint8_t> objects;  // SegmentationObject indices: 0 background, 255 void
  std::vector<uint8_t> classes;  // SegmentationClass indices: 0 background, 1..C, 255 void
  std::vector<GtInstance> instances;
};

// Loads both PNGs of one image; they must be palette/grey 8-bit PNGs of the same size
// (expected_w/h when positive). Throws prm::Error naming the file.
InstanceGroundTruth load_instance_ground_truth(const std::string& root, const std::string& id,
                                               int num_classes, int expected_w = 0,
                                               int expected_h = 0);

}  // namespace prm
