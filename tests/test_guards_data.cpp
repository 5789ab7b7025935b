// Guards against plausible one-line bugs in the data layer (issue 11): a gap between two
// tensors of a .safetensors file, VOC AP on rankings whose precision rises, mask IoU with void
// pixels under both masks, and the VOC dataset's targets for difficult-only objects. Every
// expected number is worked out by hand next to it. tools/mutate.py plants such bugs.
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <string>

#include "data/image.h"
#include "data/metrics.h"
#include "data/safetensors.h"
#include "data/voc.h"
#include "helpers.h"

using namespace prm;
namespace fs = std::filesystem;

namespace {

using Vec = std::vector<double>;

// u64 little-endian header length, the JSON header, the byte buffer (the format's layout).
std::string st_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string st_error(const std::string& bytes) {
  try {
    parse_safetensors(bytes, "gap.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::string f32_entry(const std::string& name, int64_t count, int64_t begin) {
  return str_cat("\"", name, "\":{\"dtype\":\"F32\",\"shape\":[", count, "],\"data_offsets\":[",
                 begin, ",", begin + 4 * count, "]}");
}

}  // namespace

TEST_CASE("guards: safetensors rejects a gap between two tensors") {
  // The format requires the byte buffer to be fully indexed: no holes anywhere, not only
  // before the first tensor.
  const std::string data = raw_bytes<float>({1, 2, 3, 4, 5});
  // Contiguous: a [0, 8), b [8, 12), c [12, 20) (listed out of order) read back exactly.
  SafetensorsContents ok = parse_safetensors(
      st_file("{" + f32_entry("c", 2, 12) + "," + f32_entry("a", 2, 0) + "," +
                  f32_entry("b", 1, 8) + "}",
              data),
      "ok");
  CHECK(ok.tensors.at("a").to_vector() == Vec{1, 2});
  CHECK(ok.tensors.at("b").to_vector() == Vec{3});
  CHECK(ok.tensors.at("c").to_vector() == Vec{4, 5});
  // a [0, 4), then 4 unused bytes, then b [8, 20): the end of the buffer is covered.
  std::string e = st_error(st_file("{" + f32_entry("a", 1, 0) + "," + f32_entry("b", 3, 8) + "}",
                                   data));
  CHECK_MESSAGE(e.find("gap.safetensors: a gap of 4 unused bytes before tensor 'b'") !=
                    std::string::npos,
                e);
  // Three tensors, the hole between the second and the third, listed last first.
  e = st_error(st_file("{" + f32_entry("z", 1, 16) + "," + f32_entry("x", 2, 0) + "," +
                           f32_entry("y", 1, 8) + "}",
                       data));
  CHECK_MESSAGE(e.find("a gap of 4 unused bytes before tensor 'z'") != std::string::npos, e);
  // A one-byte hole (the next tensor misaligned by one).
  const std::string bytes9 = raw_bytes<float>({1, 2}) + std::string(1, '\0');
  e = st_error(st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[5,9]}})",
                       bytes9));
  CHECK_MESSAGE(e.find("a gap of 1 unused bytes before tensor 'b'") != std::string::npos, e);
}

TEST_CASE("guards: safetensors byte ranges match the shape exactly; the header length is bounded") {
  // Shape [1] F32 needs 4 bytes; data_offsets [0, 8) hold 8.
  std::string e = st_error(st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}})",
                                   raw_bytes<float>({1, 2})));
  CHECK_MESSAGE(e.find("needs 4 bytes but data_offsets [0, 8] hold 8") != std::string::npos, e);
  // A 10-byte file whose header length says 5: 3 bytes past the end (the 2 there read "{}").
  std::string f = st_file("{}", "");
  f[0] = 5;
  e = st_error(f);
  CHECK_MESSAGE(e.find("header length 5 runs past the end of the file (10 bytes)") !=
                    std::string::npos,
                e);
}

// ---- VOC AP: precision is made monotone (the running maximum from the right) ----

TEST_CASE("guards: VOC AP interpolates precision where it rises along the ranking") {
  // TP FP TP TP, 3 positives: precision 1, 1/2, 2/3, 3/4; recall 1/3, 1/3, 2/3, 1.
  // Interpolated precision (max over this and later points): 1, 3/4, 3/4, 3/4.
  // AP = 1/3 * 1 + 1/3 * 3/4 + 1/3 * 3/4 = 5/6 (raw precision would give 29/36).
  ApCurve c = average_precision({{0.9, Outcome::true_positive},
                                 {0.8, Outcome::false_positive},
                                 {0.7, Outcome::true_positive},
                                 {0.6, Outcome::true_positive}},
                                3);
  CHECK(c.ap == doctest::Approx(5.0 / 6.0));
  REQUIRE(c.precision.size() == 4);
  CHECK(c.precision[3] == doctest::Approx(0.75));  // the curve itself stays raw
  CHECK(c.recall[3] == doctest::Approx(1.0));

  // FP TP FP TP TP, 4 positives (one never retrieved): precision 0, 1/2, 1/3, 1/2, 3/5 at
  // recall 0, 1/4, 1/4, 1/2, 3/4. Interpolated: 3/5 up to recall 3/4, then 0.
  // AP = 3/4 * 3/5 = 0.45 (raw: 1/4 * 1/2 + 1/4 * 1/2 + 1/4 * 3/5 = 0.4).
  c = average_precision({{0.5, Outcome::true_positive},
                         {0.9, Outcome::false_positive},
                         {0.8, Outcome::true_positive},
                         {0.7, Outcome::false_positive},
                         {0.6, Outcome::true_positive}},
                        4);
  CHECK(c.ap == doctest::Approx(0.45));

  // The area on a given curve: precision 1/2 at recall 1/2, 1 at recall 1 -> interpolated 1
  // everywhere: AP = 1 (raw: 0.75).
  CHECK(voc_ap_area({0.5, 1.0}, {0.5, 1.0}) == doctest::Approx(1.0));
  // Through classification mAP: images scored .9 .8 .7 .6 labelled 1 -1 1 1 -> TP FP TP TP.
  MeanMetric m = classification_map({{0.9}, {0.8}, {0.7}, {0.6}}, {{1}, {-1}, {1}, {1}}, 1);
  CHECK(m.mean == doctest::Approx(5.0 / 6.0));
  // The repo has the all-point (area) protocol only; the VOC2007 11-point one does not exist.
}

TEST_CASE("guards: an instance whose IoU equals the threshold is a match (IoU >= threshold)") {
  // One instance, one prediction at IoU exactly 1/2 (from masks: 2 shared of 4 covered).
  const uint8_t gt[4] = {1, 1, 1, 0}, pred[4] = {0, 1, 1, 1};
  const double iou = mask_iou(gt, pred, nullptr, 4);
  REQUIRE(iou == 0.5);
  std::vector<ImageInstances> ims(1);
  ims[0].gt_class = {0};
  ims[0].predictions = {{0, 0.9, {iou}}};
  CHECK(instance_map(ims, 1, 0.5).per_class[0].value == doctest::Approx(1.0));
  CHECK(instance_map(ims, 1, 0.75).per_class[0].value == doctest::Approx(0.0));
}

// ---- mask IoU: void pixels leave both the intersection and the union ----

TEST_CASE("guards: mask IoU ignores void pixels (255) wherever the masks are") {
  // Pixels: 0 both on; 1 a only; 2 b only; 3..7 void with (a, b) = (1,1) (1,0) (0,1) (0,0)
  // (1,1). Non-void: intersection {0}, union {0, 1, 2} -> 1/3. Counting the void pixels where
  // both are on would give 3/5; counting them in the union only, 1/7.
  const uint8_t a[8] = {1, 1, 0, 1, 1, 0, 0, 1}, b[8] = {1, 0, 1, 1, 0, 1, 0, 1};
  const uint8_t v[8] = {0, 0, 0, 255, 255, 255, 255, 255};
  CHECK(mask_iou(a, b, v, 8) == doctest::Approx(1.0 / 3));
  CHECK(mask_iou(a, b, nullptr, 8) == doctest::Approx(3.0 / 7));  // all 8: inter 3, union 7
  // The only overlap is void: 0 (not 1/3).
  const uint8_t c[3] = {1, 1, 0}, d[3] = {0, 1, 1}, v2[3] = {0, 255, 0};
  CHECK(mask_iou(c, d, v2, 3) == doctest::Approx(0.0));
  // Everything the masks cover except one shared pixel is void: 1.
  const uint8_t e[3] = {1, 1, 1}, f[3] = {1, 1, 0}, v3[3] = {0, 255, 255};
  CHECK(mask_iou(e, f, v3, 3) == doctest::Approx(1.0));
  // All void: an empty union, IoU 0.
  const uint8_t all_void[3] = {255, 255, 255};
  CHECK(mask_iou(e, f, all_void, 3) == 0.0);
}

// ---- VOC dataset targets: difficult objects count unless exclude_difficult ----

namespace {

struct TinyObject {
  const char* name;
  int difficult;  // -1: no <difficult> element
  int truncated;
};

// A VOC root with only what VocDataset reads without images: the split list and the XMLs.
struct TinyVoc {
  std::string dir =
      (fs::temp_directory_path() / ("prm_test_guards_voc_" + std::to_string(::getpid())))
          .string();
  explicit TinyVoc(const std::vector<std::vector<TinyObject>>& images) {
    fs::remove_all(dir);
    fs::create_directories(fs::path(dir) / "ImageSets" / "Main");
    fs::create_directories(fs::path(dir) / "Annotations");
    std::ofstream split(fs::path(dir) / "ImageSets" / "Main" / "train.txt");
    for (size_t i = 0; i < images.size(); ++i) {
      const std::string id = "img" + std::to_string(i);
      split << id << "\n";
      std::ofstream xml(fs::path(dir) / "Annotations" / (id + ".xml"));
      xml << "<annotation><filename>" << id << ".jpg</filename>"
          << "<size><width>50</width><height>40</height><depth>3</depth></size>\n";
      for (const TinyObject& o : images[i]) {
        xml << "<object><name>" << o.name << "</name><truncated>" << o.truncated
            << "</truncated>";
        if (o.difficult >= 0) xml << "<difficult>" << o.difficult << "</difficult>";
        xml << "<bndbox><xmin>2</xmin><ymin>3</ymin><xmax>20</xmax><ymax>30</ymax></bndbox>"
            << "</object>\n";
      }
      xml << "</annotation>\n";
    }
  }
  ~TinyVoc() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  VocDataset open(bool exclude_difficult) const {
    VocOptions o;
    o.root = dir;
    o.split = "train";
    o.check_images = false;
    o.exclude_difficult = exclude_difficult;
    return VocDataset(o);
  }
};

// The classes whose target is 1, by name.
std::vector<std::string> positives(const VocDataset& d, size_t i) {
  std::vector<std::string> out;
  const std::vector<float>& t = d.sample(i).target;
  REQUIRE(t.size() == d.classes().size());
  for (size_t c = 0; c < t.size(); ++c) {
    CHECK((t[c] == 0.0f || t[c] == 1.0f));
    if (t[c] == 1.0f) out.push_back(d.classes()[c]);
  }
  return out;
}

using Names = std::vector<std::string>;

}  // namespace

TEST_CASE("guards: VOC targets of difficult-only objects, with and without exclude_difficult") {
  const TinyVoc voc({
      {{"cat", 1, 0}},                     // 0: a difficult cat only
      {{"dog", 1, 0}, {"person", 0, 1}},   // 1: difficult dog, plain (truncated) person
      {{"car", 0, 1}, {"car", 1, 0}},      // 2: a car both plain and difficult
      {{"car", 1, 0}, {"car", 0, 0}},      // 3: the same, the difficult one first
      {{"bird", -1, 1}},                   // 4: no <difficult> element: not difficult
      {{"sheep", 1, 1}, {"sheep", 1, 0}},  // 5: two difficult sheep
  });
  const VocDataset all = voc.open(false);
  REQUIRE(all.size() == 6);
  CHECK(all.sample(0).annotation.objects.at(0).difficult);
  CHECK_FALSE(all.sample(1).annotation.objects.at(1).difficult);
  CHECK_FALSE(all.sample(4).annotation.objects.at(0).difficult);
  // Default (PRM's training): difficult objects are positives.
  CHECK(positives(all, 0) == Names{"cat"});
  CHECK(positives(all, 1) == Names{"dog", "person"});
  CHECK(positives(all, 2) == Names{"car"});
  CHECK(positives(all, 3) == Names{"car"});
  CHECK(positives(all, 4) == Names{"bird"});
  CHECK(positives(all, 5) == Names{"sheep"});

  const VocDataset strict = voc.open(true);
  REQUIRE(strict.size() == 6);
  CHECK(positives(strict, 0).empty());  // the image stays, with an all-zero target
  CHECK(positives(strict, 1) == Names{"person"});
  CHECK(positives(strict, 2) == Names{"car"});  // a plain car is enough, in either order
  CHECK(positives(strict, 3) == Names{"car"});
  CHECK(positives(strict, 4) == Names{"bird"});
  CHECK(positives(strict, 5).empty());
}

TEST_CASE("guards: VOC one-pixel boxes, per-class split lists and the last class's instances") {
  const TinyVoc voc({{{"tvmonitor", 0, 0}}});
  const fs::path root(voc.dir);
  // A box one pixel wide and one pixel tall (VOC boxes are inclusive): legal.
  const std::string xml_path = (root / "Annotations" / "one.xml").string();
  std::ofstream(xml_path) << "<annotation><object><name>bottle</name><bndbox><xmin>7</xmin>"
                             "<ymin>9</ymin><xmax>7</xmax><ymax>9</ymax></bndbox></object>"
                             "</annotation>";
  const VocAnnotation a = read_voc_annotation(xml_path, voc_class_names());
  REQUIRE(a.objects.size() == 1);
  CHECK(a.objects[0].box.xmin == 7);
  CHECK(a.objects[0].box.xmax == 7);
  CHECK(a.objects[0].box.ymax == 9);
  // A per-class list (ImageSets/Main/<class>_<split>.txt) carries a label after each id.
  std::ofstream(root / "ImageSets" / "Main" / "tvmonitor_train.txt")
      << "img0  1\nimg1 -1\n\nimg2  0\n";
  CHECK(read_voc_split(voc.dir, "Main", "tvmonitor_train") == Names{"img0", "img1", "img2"});
  // Instances painted with the last class (index C = 20, tvmonitor) and the first (1):
  // objects [1 1 2; 0 255 2], classes [20 20 1; 0 255 1].
  fs::create_directories(root / "SegmentationObject");
  fs::create_directories(root / "SegmentationClass");
  const std::array<uint8_t, 768> palette = voc_palette();
  IndexedImage obj, cls;
  obj.width = cls.width = 3;
  obj.height = cls.height = 2;
  obj.palette = cls.palette = std::vector<uint8_t>(palette.begin(), palette.end());
  obj.index = {1, 1, 2, 0, 255, 2};
  cls.index = {20, 20, 1, 0, 255, 1};
  write_indexed_png((root / "SegmentationObject" / "img0.png").string(), obj);
  write_indexed_png((root / "SegmentationClass" / "img0.png").string(), cls);
  const InstanceGroundTruth gt = load_instance_ground_truth(voc.dir, "img0", 20);
  REQUIRE(gt.instances.size() == 2);
  CHECK(gt.instances[0].object_value == 1);
  CHECK(gt.instances[0].class_id == 19);  // tvmonitor
  CHECK(gt.instances[0].area == 2);
  CHECK(gt.instances[1].class_id == 0);  // aeroplane
  CHECK(gt.instances[1].area == 2);
}
