// Regression tests for the `prm eval` defects of issue 13 (found by an independent check of the
// metrics): the tie order of points across images, a duplicate point that also lies in a
// difficult box, prediction files accepted silently (a folder, a byte-order mark, nan/inf scores,
// a negative tolerance, points outside the image), and the semantic map from tied masks. Every
// expected number is computed by hand in the comments, on tiny VOC-layout folders written here.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "data/eval.h"
#include "data/image.h"
#include "data/metrics.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace {

struct Box {
  const char* name;
  int xmin, ymin, xmax, ymax;  // VOC 1-based inclusive
  bool difficult;
};
struct TinyImage {
  std::string id;
  std::vector<Box> boxes;
};

// A VOC root with ImageSets/Main/val.txt (the images in the given order) and one 60x60
// annotation per image; `pred` is an empty predictions folder beside it.
struct TinyEval {
  std::string dir =
      (fs::temp_directory_path() / ("prm_test_eval_defects_" + std::to_string(::getpid())))
          .string();
  std::string data = dir + "/voc", pred = dir + "/pred";
  explicit TinyEval(const std::vector<TinyImage>& images) {
    fs::remove_all(dir);
    fs::create_directories(fs::path(data) / "ImageSets" / "Main");
    fs::create_directories(fs::path(data) / "Annotations");
    fs::create_directories(pred);
    std::ofstream split(fs::path(data) / "ImageSets" / "Main" / "val.txt");
    for (const TinyImage& im : images) {
      split << im.id << "\n";
      std::ofstream xml(fs::path(data) / "Annotations" / (im.id + ".xml"));
      xml << "<annotation><filename>" << im.id << ".jpg</filename>"
          << "<size><width>60</width><height>60</height><depth>3</depth></size>\n";
      for (const Box& b : im.boxes)
        xml << "<object><name>" << b.name << "</name><difficult>" << b.difficult
            << "</difficult><bndbox><xmin>" << b.xmin << "</xmin><ymin>" << b.ymin
            << "</ymin><xmax>" << b.xmax << "</xmax><ymax>" << b.ymax << "</ymax></bndbox>"
            << "</object>\n";
      xml << "</annotation>\n";
    }
  }
  ~TinyEval() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  void write(const std::string& file, const std::string& text) const {
    std::ofstream(fs::path(pred) / file, std::ios::binary) << text;
  }
  prm::EvalOptions options(double tolerance = 0) const {
    prm::EvalOptions o;
    o.data = data;
    o.pred = pred;
    o.tolerance = tolerance;
    o.allow_missing = true;  // these files hold only the lines a defect needs
    return o;
  }
};

struct RunResult {
  int exit_code = -1;
  std::string err;
};

// `prm eval` as the user runs it (PRM_BIN), stderr captured.
RunResult run_eval(const std::string& args, const std::string& dir) {
  const std::string err_file = dir + "/stderr.txt";
  const std::string cmd = std::string(std::getenv("PRM_BIN")) + " eval " + args + " 2> " +
                          err_file + " >/dev/null";
  const int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::stringstream ss;
  ss << std::ifstream(err_file).rdbuf();
  r.err = ss.str();
  return r;
}

}  // namespace

TEST_CASE("eval defects: tied point scores rank by the split list, not the file's line order") {
  // Split order: "b" then "a". Only "a" has an aeroplane (pixels 10..19). Both points score 0.5;
  // the file lists a's point (a TP) first. By the split list b's point (a FP) ranks first:
  // FP, TP with 1 positive -> precision 0, 1/2 at recall 0, 1 -> AP = 1 * 1/2 = 0.5.
  // (In file order it would be TP, FP -> AP 1.)
  TinyEval t({{"b", {{"cat", 40, 40, 50, 50, false}}},
              {"a", {{"aeroplane", 11, 11, 20, 20, false}}}});
  t.write("points.txt", "a aeroplane 0.5 15 15\nb aeroplane 0.5 45 45\n");
  const prm::EvalReport r = prm::evaluate(t.options());
  REQUIRE(r.has_points);
  CHECK(r.pointwise.per_class[0].value == doctest::Approx(0.5));
  REQUIRE(r.pointwise.per_class[0].curve.precision.size() == 2);
  CHECK(r.pointwise.per_class[0].curve.precision[0] == 0.0);

  // The same at the level of pointwise_map: image 1's point comes first in the input, image 0's
  // ranks first -> TP, FP -> AP 1.
  const std::vector<std::vector<prm::GtBox>> boxes = {{{0, false, 11, 11, 20, 20}}, {}};
  const std::vector<prm::PointPrediction> pts = {{1, 0, 0.5, 45, 45}, {0, 0, 0.5, 15, 15}};
  CHECK(prm::pointwise_map(boxes, pts, 1, 0.0).per_class[0].value == doctest::Approx(1.0));
  // Within one image, ties keep input order: FP (far away) first, then TP -> AP 0.5.
  const std::vector<prm::PointPrediction> same = {{0, 0, 0.5, 45, 45}, {0, 0, 0.5, 15, 15}};
  CHECK(prm::pointwise_map(boxes, same, 1, 0.0).per_class[0].value == doctest::Approx(0.5));
}

TEST_CASE("eval defects: a second point on a plain object is a FP even inside a difficult box") {
  // Tolerance 0. Plain aeroplane A covers pixels 10..19, plain aeroplane B pixels 40..49, a
  // difficult aeroplane D pixels 14..29 (overlapping A). Points in score order:
  //   0.9 (12,12): in A only                       -> TP (A)
  //   0.85 (28,28): in D only                      -> ignored
  //   0.8 (17,17): in A (matched) and D            -> FP (a second point on A)
  //   0.7 (45,45): in B                            -> TP (B)
  // 2 positives; ranked TP FP TP: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1;
  // interpolated: 1 at recall 1/2, 2/3 at recall 1 -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
  // (Ignoring the 0.8 point, as before the fix, gives TP TP -> AP 1.)
  TinyEval t({{"a",
               {{"aeroplane", 11, 11, 20, 20, false},
                {"aeroplane", 41, 41, 50, 50, false},
                {"aeroplane", 15, 15, 30, 30, true}}}});
  t.write("points.txt",
          "a aeroplane 0.9 12 12\na aeroplane 0.85 28 28\na aeroplane 0.8 17 17\n"
          "a aeroplane 0.7 45 45\n");
  const prm::EvalReport r = prm::evaluate(t.options(0));
  const prm::ClassMetric& m = r.pointwise.per_class[0];
  CHECK(m.value == doctest::Approx(5.0 / 6.0));
  CHECK(m.curve.positives == 2);
  CHECK(m.curve.precision.size() == 3);  // the 0.85 point is the only one left out
}

TEST_CASE("eval defects: a folder named like a prediction file is an error naming it") {
  TinyEval t({{"a", {{"aeroplane", 11, 11, 20, 20, false}}}});
  for (std::string name : {"classification.txt", "points.txt", "instances.txt"}) {
    CAPTURE(name);
    fs::remove_all(t.pred);
    fs::create_directories(fs::path(t.pred) / name);
    CHECK_THROWS_WITH_AS(prm::evaluate(t.options()),
                         doctest::Contains((name + ": is a folder").c_str()), prm::Error);
  }
}

TEST_CASE("eval defects: a UTF-8 byte-order mark does not lose the first line's image") {
  // One point, on the only object: TP -> AP 1, and no note about images outside the split.
  // (With the mark read as part of the id, "\xEF\xBB\xBF" "a" is outside the split: AP 0.)
  TinyEval t({{"a", {{"aeroplane", 11, 11, 20, 20, false}}}});
  t.write("points.txt", "\xEF\xBB\xBF" "a aeroplane 0.9 15 15\n");
  t.write("classification.txt", "\xEF\xBB\xBF" "a aeroplane 0.9\n");
  const prm::EvalReport r = prm::evaluate(t.options());
  CHECK(r.pointwise.per_class[0].value == doctest::Approx(1.0));
  // Classification: the single positive image scored -> AP 1; the other 19 classes are absent
  // and their 19 unscored pairs ranked last are the only note.
  CHECK(r.classification.per_class[0].value == doctest::Approx(1.0));
  REQUIRE(r.notes.size() == 1);
  CHECK(r.notes[0].find("19 (image, class) pairs") != std::string::npos);
}

TEST_CASE("eval defects: nan and inf scores and coordinates get the finiteness message") {
  TinyEval t({{"a", {{"aeroplane", 11, 11, 20, 20, false}}}});
  for (std::string score : {"nan", "NaN", "inf", "-inf", "infinity", "1e999"}) {
    CAPTURE(score);
    fs::remove(fs::path(t.pred) / "classification.txt");
    t.write("points.txt", "# x\na aeroplane " + score + " 15 15\n");
    CHECK_THROWS_WITH_AS(prm::evaluate(t.options()),
                         doctest::Contains(("points.txt:2: score is " + score +
                                            " (NaN or infinite)")
                                               .c_str()),
                         prm::Error);
    fs::remove(fs::path(t.pred) / "points.txt");
    t.write("classification.txt", "a aeroplane " + score + "\n");
    CHECK_THROWS_WITH_AS(prm::evaluate(t.options()),
                         doctest::Contains("classification.txt:1: score is "), prm::Error);
  }
  fs::remove(fs::path(t.pred) / "classification.txt");
  t.write("points.txt", "a aeroplane 0.5 nan 15\n");
  CHECK_THROWS_WITH_AS(prm::evaluate(t.options()),
                       doctest::Contains("points.txt:1: point (nan, 15) is NaN or infinite"),
                       prm::Error);
  // Not a number at all is still the format message.
  t.write("points.txt", "a aeroplane high 15 15\n");
  CHECK_THROWS_WITH_AS(prm::evaluate(t.options()),
                       doctest::Contains("points.txt:1: expected '<image_id> <class_name> <score>"),
                       prm::Error);
}

TEST_CASE("eval defects: a negative or non-finite tolerance is refused") {
  TinyEval t({{"a", {{"aeroplane", 11, 11, 20, 20, false}}}});
  t.write("points.txt", "a aeroplane 0.9 15 15\n");
  for (double tol : {-1.0, -1e-9, std::nan(""), HUGE_VAL}) {
    CAPTURE(tol);
    CHECK_THROWS_WITH_AS(prm::evaluate(t.options(tol)), doctest::Contains("--tolerance"),
                         prm::Error);
    CHECK_THROWS_AS(prm::pointwise_map({{}}, {}, 1, tol), prm::Error);
  }
  CHECK(prm::evaluate(t.options(0)).pointwise.mean == doctest::Approx(1.0));
}

TEST_CASE("eval defects: points outside the image are refused, its edges accepted") {
  // The image is 60x60: 0-based pixels 0..59 in x and y.
  TinyEval t({{"a", {{"aeroplane", 50, 50, 60, 60, false}}}});
  for (std::string xy : {"60 10", "10 60", "-0.5 10", "10 -1", "59.5 59"}) {
    CAPTURE(xy);
    t.write("points.txt", "a aeroplane 0.9 " + xy + "\n");
    CHECK_THROWS_WITH_AS(prm::evaluate(t.options()),
                         doctest::Contains("points.txt:1: point ("), prm::Error);
    CHECK_THROWS_WITH_AS(prm::evaluate(t.options()),
                         doctest::Contains("is outside the image a (60x60"), prm::Error);
  }
  // The corners are inside: (59,59) hits the box (pixels 49..59) -> AP 1; (0,0) is a FP after it.
  t.write("points.txt", "a aeroplane 0.9 59 59\na aeroplane 0.8 0 0\n");
  CHECK(prm::evaluate(t.options()).pointwise.per_class[0].value == doctest::Approx(1.0));
  // A point for an image outside the split is ignored (counted), not checked against a size.
  t.write("points.txt", "a aeroplane 0.9 59 59\nzz aeroplane 0.8 1000 1000\n");
  CHECK(prm::evaluate(t.options()).notes.size() == 1);
}

TEST_CASE("eval defects: tied masks paint the semantic map with the earlier line winning") {
  // paint_semantic: A (class 0, score .5) on pixels {0,1}, B (class 1, score .5) on {1,2}.
  // Tie: the earlier mask wins pixel 1 -> labels [1, 1, 2, 0]; swapped inputs -> [1, 2, 2, 0].
  const uint8_t A[4] = {1, 1, 0, 0}, B[4] = {0, 1, 1, 0};
  CHECK(prm::paint_semantic({A, B}, {0, 1}, {0.5, 0.5}, 4) == std::vector<uint8_t>{1, 1, 2, 0});
  CHECK(prm::paint_semantic({B, A}, {1, 0}, {0.5, 0.5}, 4) == std::vector<uint8_t>{1, 2, 2, 0});
  // A higher score still wins whatever the order: B at .6 takes pixel 1 -> [1, 2, 2, 0].
  CHECK(prm::paint_semantic({A, B}, {0, 1}, {0.5, 0.6}, 4) == std::vector<uint8_t>{1, 2, 2, 0});

  // End to end on a 4x1 image: ground truth aeroplane on pixels 0,1, bicycle on 2, background 3.
  // Masks A (aeroplane) and B (bicycle) as above, both score 0.5.
  // A's line first: painted [aeroplane, aeroplane, bicycle, bg] = the ground truth -> IoU 1 for
  //   background, aeroplane and bicycle -> mIoU 1.
  // B's line first: painted [aeroplane, bicycle, bicycle, bg]: background 1/1, aeroplane
  //   TP 1 / (GT 2 + pred 1 - 1) = 1/2, bicycle 1 / (1 + 2 - 1) = 1/2 -> mIoU (1 + 1/2 + 1/2)/3.
  TinyEval t({});
  fs::create_directories(fs::path(t.data) / "ImageSets" / "Segmentation");
  fs::create_directories(fs::path(t.data) / "SegmentationObject");
  fs::create_directories(fs::path(t.data) / "SegmentationClass");
  std::ofstream(fs::path(t.data) / "ImageSets" / "Segmentation" / "val.txt") << "s\n";
  const auto palette = prm::voc_palette();
  prm::IndexedImage obj{4, 1, {1, 1, 2, 0}, {palette.begin(), palette.end()}};
  prm::IndexedImage cls{4, 1, {1, 1, 2, 0}, {palette.begin(), palette.end()}};
  prm::write_indexed_png(t.data + "/SegmentationObject/s.png", obj);
  prm::write_indexed_png(t.data + "/SegmentationClass/s.png", cls);
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> masks = {
      {"A.png", {255, 255, 0, 0}}, {"B.png", {0, 255, 255, 0}}};
  for (const auto& [name, bytes] : masks) {
    prm::Image m;
    m.width = 4;
    m.height = 1;
    m.channels = 1;
    m.pixels = bytes;
    prm::save_png(t.pred + "/" + name, m);
  }
  t.write("instances.txt", "s aeroplane 0.5 A.png\ns bicycle 0.5 B.png\n");
  prm::EvalReport r = prm::evaluate(t.options());
  CHECK(r.semantic.mean == doctest::Approx(1.0));
  t.write("instances.txt", "s bicycle 0.5 B.png\ns aeroplane 0.5 A.png\n");
  r = prm::evaluate(t.options());
  CHECK(r.semantic.per_class[1].value == doctest::Approx(0.5));
  CHECK(r.semantic.per_class[2].value == doctest::Approx(0.5));
  CHECK(r.semantic.mean == doctest::Approx(2.0 / 3.0));
}

TEST_CASE("eval defects: prm eval gives one clear line and a non-zero exit for each") {
  if (!std::getenv("PRM_BIN")) {
    MESSAGE("skipped: PRM_BIN not set (make test sets it)");
    return;
  }
  TinyEval t({{"a", {{"aeroplane", 11, 11, 20, 20, false}}}});
  const std::string base = "--data " + t.data + " --pred " + t.pred;
  struct Case {
    std::string setup_file, setup_text, flags, must_name;
  };
  const Case cases[] = {
      {"points.txt", "a aeroplane inf 15 15\n", "", "points.txt:1: score is inf"},
      {"points.txt", "a aeroplane 0.5 15 75\n", "", "points.txt:1: point (15, 75) is outside"},
      {"points.txt", "a aeroplane 0.5 15 15\n", " --tolerance -2", "--tolerance"},
      {"", "", "", "points.txt: is a folder"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.must_name);
    fs::remove_all(t.pred);
    fs::create_directories(t.pred);
    if (c.setup_file.empty())
      fs::create_directories(fs::path(t.pred) / "points.txt");
    else
      t.write(c.setup_file, c.setup_text);
    const RunResult r = run_eval(base + c.flags, t.dir);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find(c.must_name) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK_FALSE(fs::exists(fs::path(t.pred) / "eval.json"));
  }
}
