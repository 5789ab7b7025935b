// The pull JSON reader (data/json_cursor.h) against the tree parser (data/json.h), and the COCO
// annotation reader (data/coco.h) on hand-written files: the index, the classes' order, the
// image-level labels, and one clear line for each kind of bad input.
#include <doctest/doctest.h>

#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "data/coco.h"
#include "data/json.h"
#include "data/json_cursor.h"
#include "helpers.h"
#include "tensor/error.h"

using namespace prm;

namespace {

// Rebuilds a value through the cursor's calls, so that it can be compared with parse_json's.
Json walk(JsonCursor& c) {
  switch (c.peek()) {
    case Json::Kind::object: {
      Json o = Json::object();
      c.begin_object();
      while (c.next_field()) {
        const std::string name = c.name();
        o.set(name, walk(c));
      }
      return o;
    }
    case Json::Kind::array: {
      Json a = Json::array();
      c.begin_array();
      while (c.next_item()) a.push_back(walk(c));
      return a;
    }
    case Json::Kind::string:
      return Json(c.read_string());
    case Json::Kind::number:
      return Json(c.read_double());
    case Json::Kind::boolean:
      return Json(c.read_bool());
    case Json::Kind::null:
      c.read_null();
      return Json();
  }
  return Json();
}

// Numbers compared by value (the cursor keeps no literal text).
bool same(const Json& a, const Json& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Json::Kind::number:
      return a.as_double() == b.as_double();
    case Json::Kind::array:
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i)
        if (!same(a.items()[i], b.items()[i])) return false;
      return true;
    case Json::Kind::object:
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i)
        if (a.fields()[i].first != b.fields()[i].first ||
            !same(a.fields()[i].second, b.fields()[i].second))
          return false;
      return true;
    default:
      return a == b;
  }
}

// A random document of bounded depth, written with random spacing.
std::string random_json(std::mt19937& rng, int depth) {
  const char* atoms[] = {"0", "-0", "1.5", "-2e-3", "12345678901", "1E+2", "true", "false",
                         "null", "\"\"", "\"a\\\"b\\\\c\\/\\n\"", "\"\\u00e9\\ud83d\\ude00\"",
                         "\"caf\xc3\xa9\"", "3.25e10"};
  const char* spaces[] = {"", " ", "\n\t", "\r\n  "};
  auto sp = [&] { return std::string(spaces[rng() % 4]); };
  const int kind = depth > 0 ? static_cast<int>(rng() % 4) : 0;
  if (kind < 2) return atoms[rng() % (sizeof atoms / sizeof *atoms)];
  const int n = static_cast<int>(rng() % 4);
  std::string s = kind == 2 ? "[" : "{";
  for (int i = 0; i < n; ++i) {
    if (i) s += sp() + "," + sp();
    if (kind == 3) s += "\"k" + std::to_string(i) + "\"" + sp() + ":" + sp();
    s += random_json(rng, depth - 1);
  }
  return s + sp() + (kind == 2 ? "]" : "}");
}

std::string coco_error(const std::string& text) {
  return error_of([&] { parse_coco_annotations(text, "t.json"); });
}

// A minimal valid file with `annotation` as its one annotation (image 7 is 4 x 3).
std::string with_annotation(const std::string& annotation) {
  return R"({"images": [{"id": 7, "file_name": "a.jpg", "width": 4, "height": 3}],
             "categories": [{"id": 5, "name": "cat"}],
             "annotations": [)" +
         annotation + "]}";
}

}  // namespace

TEST_CASE("json cursor: walks random documents to the values parse_json reads") {
  std::mt19937 rng(7);
  for (int i = 0; i < 400; ++i) {
    const std::string text = random_json(rng, 4);
    CAPTURE(text);
    JsonCursor c(text, "r");
    const Json walked = walk(c);
    c.end_document();
    CHECK(same(walked, parse_json(text, "r")));
  }
}

TEST_CASE("json cursor: skip() passes over any value, nested, and stops at its end") {
  const std::string text =
      R"({"a": [1, {"b": [[], {}, "x\"]"]}], "c": {"d": null}, "e": "\u0041", "f": 2})";
  JsonCursor c(text, "s");
  c.begin_object();
  std::vector<std::string> seen;
  int64_t f = 0;
  while (c.next_field()) {
    seen.push_back(c.name());
    if (c.name() == "f") f = c.read_int64();
    else c.skip();
  }
  c.end_document();
  CHECK(seen == std::vector<std::string>{"a", "c", "e", "f"});
  CHECK(f == 2);
}

TEST_CASE("json cursor: what is not JSON fails as parse_json does; wrong kinds name both") {
  const char* bad[] = {"[1,]", "[01]", "{\"a\" 1}", "[1 2]", "\"abc", "[1.]", "[-]", "{\"a\":1,}",
                       "[\"\\x\"]", "[\"\\ud800\"]", "[1] x", "[tru]", "{1: 2}", "", "[+1]",
                       "[1e400]", "[-0.5e-399]", "[\"a\nb\"]", "{\"a\": 1, \"a\": 2}",
                       "[{\"b\": [], \"c\": {\"d\": 1, \"d\": 1}}]",
                       "{\"k0\":0,\"k1\":0,\"k2\":0,\"k3\":0,\"k4\":0,\"k5\":0,\"k6\":0,\"k7\":0,"
                       "\"k8\":0,\"k9\":0,\"k10\":0,\"k11\":0,\"k12\":0,\"k13\":0,\"k14\":0,"
                       "\"k15\":0,\"k16\":0,\"k17\":0,\"k3\":0}"};
  for (const char* text : bad) {
    CAPTURE(text);
    CHECK_THROWS(parse_json(text, "b"));
    const std::string e = error_of([&] {
      JsonCursor c(text, "b.json");
      walk(c);
      c.end_document();
    });
    CHECK(e.find("b.json: corrupt JSON (") == 0);
    // skip() is as strict (fuzz_coco found it taking a number that does not fit a double).
    const std::string s = error_of([&] {
      JsonCursor c(text, "b.json");
      c.skip();
      c.end_document();
    });
    CHECK(s.find("b.json: corrupt JSON (") == 0);
  }
  // Nesting deeper than the limit is refused, in skip() as in a walk.
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  CHECK(error_of([&] { JsonCursor(deep, "d").skip(); }).find("nested too deeply") !=
        std::string::npos);

  JsonCursor c("{\"n\": \"seven\"}", "k.json");
  c.begin_object();
  REQUIRE(c.next_field());
  CHECK(error_of([&] { c.read_int64(); }) == "k.json: expected an integer, found a string at byte 6");
  JsonCursor d("[1.5]", "k.json");
  d.begin_array();
  REQUIRE(d.next_item());
  CHECK(error_of([&] { d.read_int64(); }).find("expected an integer, found 1.5") !=
        std::string::npos);
}

TEST_CASE("coco reader: index, classes by ascending id, labels with crowd, segmentations") {
  // Annotations before images and categories, categories out of order, an image without any
  // annotation, extra fields everywhere.
  const std::string text = R"({
    "info": {"year": 2014}, "licenses": [{"id": 1}],
    "annotations": [
      {"id": 11, "image_id": 2, "category_id": 90, "iscrowd": 0, "area": 12.5,
       "bbox": [1.5, 2, 3, 4.25], "segmentation": [[1, 1, 5.5, 1, 5.5, 4], [0, 0, 1, 0, 1, 1, 0, 1]]},
      {"id": 12, "image_id": 2, "category_id": 1, "iscrowd": 1, "area": 6,
       "bbox": [0, 0, 2, 3], "segmentation": {"size": [3, 4], "counts": [2, 3, 7]}},
      {"id": 13, "image_id": 3, "category_id": 18, "iscrowd": 0, "area": 1,
       "bbox": [0, 0, 1, 1], "segmentation": {"size": [5, 6], "counts": "52203"}, "extra": [1]}
    ],
    "images": [{"id": 2, "file_name": "COCO_val2014_000000000002.jpg", "width": 4, "height": 3,
                "license": 1},
               {"id": 3, "file_name": "b.jpg", "width": 6, "height": 5},
               {"id": 9, "file_name": "empty.jpg", "width": 8, "height": 8}],
    "categories": [{"id": 90, "name": "toothbrush", "supercategory": "indoor"},
                   {"id": 1, "name": "person"}, {"id": 18, "name": "traffic light"}]
  })";
  const CocoDataset d = parse_coco_annotations(text, "t.json");
  CHECK(d.class_names() == std::vector<std::string>{"person", "traffic light", "toothbrush"});
  CHECK(d.category_index.at(90) == 2);
  REQUIRE(d.images.size() == 3);
  CHECK(d.images[0].file_name == "COCO_val2014_000000000002.jpg");
  CHECK(d.image_index.at(9) == 2);
  CHECK(d.image_annotations == std::vector<std::vector<int>>{{0, 1}, {2}, {}});
  CHECK(d.labels(0) == std::vector<float>{1, 0, 1});  // the crowd person counts
  CHECK(d.labels(1) == std::vector<float>{0, 1, 0});
  CHECK(d.labels(2) == std::vector<float>{0, 0, 0});

  const CocoAnnotation& a = d.annotations[0];
  CHECK(a.id == 11);
  CHECK(a.image == 0);
  CHECK(a.category == 2);
  CHECK_FALSE(a.iscrowd);
  CHECK(a.area == 12.5);
  CHECK(std::vector<double>(a.bbox, a.bbox + 4) == std::vector<double>{1.5, 2, 3, 4.25});
  REQUIRE(a.segmentation.kind == CocoSegmentation::Kind::polygons);
  CHECK(a.segmentation.polygons ==
        std::vector<std::vector<double>>{{1, 1, 5.5, 1, 5.5, 4}, {0, 0, 1, 0, 1, 1, 0, 1}});
  const CocoAnnotation& b = d.annotations[1];
  CHECK(b.iscrowd);
  REQUIRE(b.segmentation.kind == CocoSegmentation::Kind::rle);
  CHECK(b.segmentation.counts == std::vector<uint32_t>{2, 3, 7});
  const CocoAnnotation& e = d.annotations[2];
  REQUIRE(e.segmentation.kind == CocoSegmentation::Kind::compressed_rle);
  CHECK(e.segmentation.compressed == "52203");
  CHECK(e.segmentation.rle_height == 5);
  CHECK(e.segmentation.rle_width == 6);

  // Without segmentations (training reads labels only): the same index, no masks kept.
  CocoReadOptions labels_only;
  labels_only.segmentations = false;
  const CocoDataset l = parse_coco_annotations(text, "t.json", labels_only);
  CHECK(l.image_annotations == d.image_annotations);
  CHECK(l.annotations[0].segmentation.kind == CocoSegmentation::Kind::none);
  // Skipped, a segmentation is still JSON as strict as parse_json's (numbers fit a double).
  std::string huge = text;
  huge.replace(huge.find("[[1, 1, 5.5"), 4, "[[1e999, 1");
  CHECK(error_of([&] { parse_coco_annotations(huge, "t.json", labels_only); })
            .find("t.json: corrupt JSON (number 1e999 out of range at byte ") == 0);
}

TEST_CASE("coco reader: layout paths and detection") {
  const std::filesystem::path dir = fresh_temp_dir("coco-layout");
  const std::string root = dir.string();
  CHECK_FALSE(is_coco_root(root));
  CHECK(coco_annotation_path(root, "val2014") == root + "/annotations/instances_val2014.json");
  CocoImage im;
  im.file_name = "x.jpg";
  CHECK(coco_image_path(root, "val2014", im) == root + "/val2014/x.jpg");
  std::filesystem::create_directory(dir / "annotations");
  write_bytes(coco_annotation_path(root, "val2014"), "{\"images\": []}");
  CHECK(is_coco_root(root));
  CHECK(error_of([&] { read_coco_annotations(coco_annotation_path(root, "val2014")); }) ==
        root + "/annotations/instances_val2014.json: not a COCO instances file (no "
               "'annotations' array)");
}

TEST_CASE("coco reader: bad input is one line naming the file and the record") {
  struct Case {
    std::string text, error;
  };
  const Case cases[] = {
      {"[1, 2]", "t.json: not a COCO annotation file (the document is not an object)"},
      {R"({"images": [], "categories": []})",
       "t.json: not a COCO instances file (no 'annotations' array)"},
      {R"({"images": {}, "categories": [], "annotations": []})",
       "t.json: not a COCO annotation file ('images' is not an array)"},
      {with_annotation(R"({"id": 3, "image_id": 8, "category_id": 5})"),
       "t.json: annotations[0] (id 3): unknown image_id 8"},
      {with_annotation(R"({"id": 3, "image_id": 7, "category_id": 6})"),
       "t.json: annotations[0] (id 3): unknown category_id 6"},
      {with_annotation(R"({"id": 3, "image_id": 7, "category_id": 5, "segmentation": [[1, 2, 3]]})"),
       "t.json: annotations[0] (id 3): polygon 0 has an odd number of coordinates (3)"},
      {with_annotation(
           R"({"id": 3, "image_id": 7, "category_id": 5, "segmentation": [[0,0,1,1,2,2], [1, 2, 3, 4]]})"),
       "t.json: annotations[0] (id 3): polygon 1 has fewer than 3 points (2)"},
      {with_annotation(
           R"({"id": 3, "image_id": 7, "category_id": 5, "segmentation": {"size": [3, 4], "counts": [2, 3]}})"),
       "t.json: annotations[0] (id 3): RLE counts sum to 5, not 3 x 4 = 12"},
      {with_annotation(
           R"({"id": 3, "image_id": 7, "category_id": 5, "segmentation": {"size": [4, 3], "counts": [12]}})"),
       "t.json: annotations[0] (id 3): RLE size 4 x 3 is not its image's 3 x 4"},
      {with_annotation(R"({"id": 3, "image_id": "7", "category_id": 5})"),
       "t.json: annotations[0] (id 3): field 'image_id': expected an integer, found a string at "
       "byte 200"},
      {with_annotation(R"({"image_id": 7, "category_id": 5})"),
       "t.json: annotations[0]: no 'id' field"},
      {with_annotation(R"({"id": 3, "image_id": 7, "category_id": 5, "iscrowd": 2})"),
       "t.json: annotations[0] (id 3): iscrowd is 2, not 0 or 1"},
      {with_annotation(R"({"id": 3, "image_id": 7, "category_id": 5, "bbox": [1, 2, 3]})"),
       "t.json: annotations[0] (id 3): bbox has 3 numbers, not 4"},
      {with_annotation(R"({"id": 3, "image_id": 7, "category_id": 5}, {"id": 3, "image_id": 7,
                          "category_id": 5})"),
       "t.json: annotations[1] (id 3): repeated annotation id (annotations[0] has it too)"},
      {with_annotation(R"({"id": 3, "image_id": 7, "category_id": 5, "segmentation": [[0,0,1,0,1,1]],
                          "segmentation": {"size": [3, 4], "counts": [12]}})"),
       "t.json: corrupt JSON (duplicate name \"segmentation\" at byte 243)"},
      {R"({"images": [{"id": 1, "file_name": "../x.jpg", "width": 1, "height": 1}],
           "categories": [], "annotations": []})",
       "t.json: images[0] (id 1): file_name '../x.jpg' leaves the image folder"},
      {R"({"images": [{"id": 1, "file_name": "x.jpg", "width": 0, "height": 1}],
           "categories": [], "annotations": []})",
       "t.json: images[0] (id 1): image side 0 is not in 1..1048576"},
      {R"({"images": [{"id": 1, "file_name": "x.jpg", "height": 1}],
           "categories": [], "annotations": []})",
       "t.json: images[0] (id 1): no 'width' field"},
      {R"({"images": [{"id": 1, "file_name": "x.jpg", "width": 1, "height": 1},
                      {"id": 1, "file_name": "y.jpg", "width": 1, "height": 1}],
           "categories": [], "annotations": []})",
       "t.json: images[1]: repeated image id 1"},
      {R"({"images": [], "categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}],
           "annotations": []})",
       "t.json: categories: repeated category id 1"},
      // fuzz_coco's first finding: a skipped field's number that does not fit a double was
      // taken (parse_json refuses it), in a top-level extra, a record's extra and, when
      // segmentations are not read, a segmentation.
      {R"({"extra": [-0.5e-399], "images": [], "categories": [], "annotations": []})",
       "t.json: corrupt JSON (number -0.5e-399 out of range at byte 11)"},
      {R"({"images": [{"id": 1, "file_name": "a.jpg", "width": 1, "height": 1, "x": 1e400}],
           "categories": [], "annotations": []})",
       "t.json: corrupt JSON (number 1e400 out of range at byte 74)"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    const std::string e = coco_error(c.text);
    if (c.error.find("at byte") == std::string::npos) CHECK(e == c.error);
    else CHECK(e.substr(0, e.find(" at byte")) == c.error.substr(0, c.error.find(" at byte")));
  }
  // A truncated file: every prefix of a valid one is refused, as corrupt JSON or as not COCO.
  const std::string good = with_annotation(
      R"({"id": 3, "image_id": 7, "category_id": 5, "segmentation": [[0, 0, 1, 0, 1, 1]]})");
  CHECK_NOTHROW(parse_coco_annotations(good, "t.json"));
  for (size_t n = 0; n < good.size(); ++n) {
    CAPTURE(n);
    CHECK(coco_error(good.substr(0, n)).find("t.json: ") == 0);
  }
}

TEST_CASE("json cursor: numbers read exactly as std::from_chars reads them") {
  // The cursor's fast path for short decimals against the standard library's conversion.
  std::mt19937_64 rng(3);
  std::vector<std::string> texts = {"0", "-0", "0.1", "0.30000000000000004", "123.45",
                                    "999999999999999", "9007199254740993", "1e22", "1e23",
                                    "0.0000000000000000000001", "0.00000000000000000000001",
                                    "12345678901234567890", "-2.5e-3", "4.9e-324", "1.7976931348623157e308"};
  for (int i = 0; i < 20000; ++i) {
    const int whole = static_cast<int>(rng() % 7), frac = static_cast<int>(rng() % 19);
    std::string t = rng() % 3 == 0 ? "-" : "";
    const bool zero = rng() % 10 == 0;  // "0.xxx": no more whole digits (no leading zeros)
    t += zero ? "0" : std::to_string(1 + rng() % 9);
    for (int k = 0; k < (zero ? 0 : whole); ++k) t += static_cast<char>('0' + rng() % 10);
    if (frac) {
      t += '.';
      for (int k = 0; k < frac; ++k) t += static_cast<char>('0' + rng() % 10);
    }
    texts.push_back(t);
  }
  std::string doc = "[";
  for (size_t i = 0; i < texts.size(); ++i) doc += (i ? "," : "") + texts[i];
  doc += "]";
  JsonCursor c(doc, "n");
  std::vector<double> read;
  c.read_doubles(read);
  REQUIRE(read.size() == texts.size());
  JsonCursor one(doc, "n");
  one.begin_array();
  for (size_t i = 0; i < texts.size(); ++i) {
    CAPTURE(texts[i]);
    double expected = 0;
    std::from_chars(texts[i].data(), texts[i].data() + texts[i].size(), expected);
    REQUIRE(one.next_item());
    const double single = one.read_double();
    CHECK(std::memcmp(&read[i], &expected, sizeof(double)) == 0);  // bits: -0 too
    CHECK(std::memcmp(&single, &expected, sizeof(double)) == 0);
  }
}

TEST_CASE("prm data: counts a COCO split and a VOC split, reads annotations only, writes nothing") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const std::filesystem::path root = fresh_temp_dir("prm-data-coco");
  std::filesystem::create_directory(root / "annotations");
  // No image folder at all: prm data reads the annotations only.
  write_bytes((root / "annotations" / "instances_val2017.json").string(), R"({
    "images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 3},
               {"id": 2, "file_name": "b.jpg", "width": 4, "height": 3}],
    "categories": [{"id": 3, "name": "car"}, {"id": 1, "name": "person"}],
    "annotations": [
      {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 2, "bbox": [0, 0, 1, 1],
       "segmentation": [[0, 0, 1, 0, 1, 1]]},
      {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "area": 12, "bbox": [0, 0, 4, 3],
       "segmentation": {"size": [3, 4], "counts": [0, 12]}},
      {"id": 3, "image_id": 1, "category_id": 3, "iscrowd": 0, "area": 2, "bbox": [0, 0, 1, 1],
       "segmentation": [[0, 0, 1, 0, 1, 1]]}]})");
  const CommandResult r =
      run_command("'" + prm_bin() + "' data --data '" + root.string() + "' --split val2017");
  REQUIRE(r.exit_code == 0);
  const Json j = parse_json(r.out, "stdout");
  CHECK(j.at("format").as_string() == "coco");
  CHECK(j.at("split").as_string() == "val2017");
  CHECK(j.at("images").as_int64() == 2);
  CHECK(j.at("annotations").as_int64() == 3);
  CHECK(j.at("crowd").as_int64() == 1);
  CHECK(j.at("images_without_annotations").as_int64() == 1);
  CHECK(j.at("classes").as_int64() == 2);
  CHECK(j.at("objects_per_class").at("person").as_int64() == 2);
  CHECK(j.at("objects_per_class").at("car").as_int64() == 1);
  CHECK(j.at("load_s").as_double() >= 0);
  size_t entries = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) entries += !e.is_directory();
  CHECK(entries == 1);  // nothing written

  // A bad annotation: one line naming the file and the record, exit 1.
  write_bytes((root / "annotations" / "instances_bad.json").string(),
              R"({"images": [], "categories": [], "annotations": [{"id": 5, "image_id": 1,
                  "category_id": 1}]})");
  const CommandResult bad =
      run_command("'" + prm_bin() + "' data --data '" + root.string() + "' --split bad");
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("instances_bad.json: annotations[0] (id 5): unknown image_id 1\n") !=
        std::string::npos);

  // VOC: a synthetic set (4 + 2 images), its val split.
  const std::string voc = (fresh_temp_dir("prm-data-voc") / "voc").string();
  REQUIRE(run_command("'" + prm_bin() + "' synth --out '" + voc +
                      "' --train 4 --val 2 --size 64 --classes 3")
              .exit_code == 0);
  const CommandResult v = run_command("'" + prm_bin() + "' data --data '" + voc + "' --split val");
  REQUIRE(v.exit_code == 0);
  const Json vj = parse_json(v.out, "stdout");
  CHECK(vj.at("format").as_string() == "voc");
  CHECK(vj.at("images").as_int64() == 2);
  CHECK(vj.at("classes").as_int64() == 20);
  CHECK(vj.at("annotations").as_int64() >= 2);  // 1-4 objects per image
}
