// libFuzzer target for the COCO annotation reader (data/coco.h, over data/json_cursor.h): any
// input must either parse or throw prm::Error. What parses must hold together:
//   - every annotation's image and category index is in range, and image_annotations lists each
//     annotation exactly once, under its own image, in file order;
//   - categories are sorted by ascending (distinct) id and the id -> index maps agree;
//   - labels(i) has one entry per class, 1 exactly for the classes of image i's annotations;
//   - polygons have an even number (>= 6) of coordinates; an uncompressed RLE's counts sum to
//     its image's height x width and an RLE's size is its image's;
//   - the text is JSON for the tree parser too (data/json.h; it alone refuses repeated names);
//   - reading without segmentations gives the same index.
// Crashes, hangs, sanitizer reports and a broken check (abort) are bugs. Build with build.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "data/coco.h"
#include "data/json.h"
#include "tensor/error.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_coco: broken: %s\n", what);
    std::abort();
  }
}

void check_dataset(const prm::CocoDataset& d, bool segmentations) {
  using Kind = prm::CocoSegmentation::Kind;
  const int n_images = static_cast<int>(d.images.size());
  const int n_classes = static_cast<int>(d.categories.size());
  check(d.image_annotations.size() == d.images.size(), "image_annotations has one list per image");
  check(d.image_index.size() == d.images.size(), "image_index has every image once");
  check(d.category_index.size() == d.categories.size(), "category_index has every class once");
  for (int i = 0; i < n_images; ++i) {
    const auto it = d.image_index.find(d.images[i].id);
    check(it != d.image_index.end() && it->second == i, "image_index maps an id to its image");
    check(d.images[i].width >= 1 && d.images[i].width <= (1 << 20) && d.images[i].height >= 1 &&
              d.images[i].height <= (1 << 20),
          "image sides in 1..2^20");
  }
  for (int k = 0; k < n_classes; ++k) {
    if (k > 0) check(d.categories[k - 1].id < d.categories[k].id, "categories sorted by id");
    const auto it = d.category_index.find(d.categories[k].id);
    check(it != d.category_index.end() && it->second == k, "category_index maps an id to its class");
  }

  std::vector<int> seen(d.annotations.size(), 0);
  for (int i = 0; i < n_images; ++i) {
    int last = -1;
    for (int a : d.image_annotations[i]) {
      check(a >= 0 && a < static_cast<int>(d.annotations.size()), "image_annotations in range");
      check(d.annotations[a].image == i, "an annotation is listed under its own image");
      check(a > last, "image_annotations in file order");
      last = a;
      ++seen[a];
    }
  }
  for (size_t a = 0; a < d.annotations.size(); ++a) {
    const prm::CocoAnnotation& ann = d.annotations[a];
    check(seen[a] == 1, "image_annotations covers each annotation exactly once");
    check(ann.image >= 0 && ann.image < n_images, "annotation image index in range");
    check(ann.category >= 0 && ann.category < n_classes, "annotation category index in range");
    const prm::CocoSegmentation& s = ann.segmentation;
    if (!segmentations) check(s.kind == Kind::none, "no segmentation read when asked for none");
    if (s.kind == Kind::polygons)
      for (const std::vector<double>& p : s.polygons)
        check(p.size() % 2 == 0 && p.size() >= 6, "polygons have >= 3 (x, y) points");
    if (s.kind == Kind::rle || s.kind == Kind::compressed_rle) {
      const prm::CocoImage& im = d.images[ann.image];
      check(s.rle_height == im.height && s.rle_width == im.width, "RLE size is its image's");
    }
    if (s.kind == Kind::rle) {
      uint64_t sum = 0;
      for (uint32_t v : s.counts) sum += v;
      check(sum == static_cast<uint64_t>(s.rle_height) * static_cast<uint64_t>(s.rle_width),
            "RLE counts sum to height x width");
    }
  }
  for (int i = 0; i < n_images; ++i) {
    const std::vector<float> y = d.labels(i);
    check(static_cast<int>(y.size()) == n_classes, "labels(i) sized to the class count");
    std::vector<float> expect(n_classes, 0.0f);
    for (int a : d.image_annotations[i]) expect[d.annotations[a].category] = 1.0f;
    check(y == expect, "labels(i) marks exactly the classes of image i's annotations");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  prm::CocoDataset d;
  try {
    d = prm::parse_coco_annotations(text, "fuzz.json");
  } catch (const prm::Error&) {
    return 0;
  }
  check(d.path == "fuzz.json", "the dataset names its source");
  check_dataset(d, true);

  // The cursor's grammar is the tree parser's, but for repeated names, which only it refuses.
  try {
    prm::parse_json(std::string(text), "fuzz.json");
  } catch (const prm::Error& e) {
    if (std::string(e.what()).find("duplicate name") == std::string::npos) {
      std::fprintf(stderr, "fuzz_coco: the COCO reader took what parse_json refuses: %s\n",
                   e.what());
      std::abort();
    }
  }

  // Without segmentations: the same images, classes, annotations and index.
  prm::CocoReadOptions labels_only;
  labels_only.segmentations = false;
  prm::CocoDataset l;
  try {
    l = prm::parse_coco_annotations(text, "fuzz.json", labels_only);
  } catch (const prm::Error& e) {
    std::fprintf(stderr, "fuzz_coco: refused without segmentations only: %s\n", e.what());
    std::abort();
  }
  check_dataset(l, false);
  check(l.images.size() == d.images.size() && l.categories.size() == d.categories.size() &&
            l.annotations.size() == d.annotations.size() &&
            l.image_annotations == d.image_annotations,
        "the labels-only read has the same index");
  for (size_t a = 0; a < d.annotations.size(); ++a)
    check(l.annotations[a].id == d.annotations[a].id &&
              l.annotations[a].category == d.annotations[a].category,
          "the labels-only read has the same annotations");
  return 0;
}
