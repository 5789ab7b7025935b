// prm eval end to end on a synthetic VOC tree: predictions written from the ground truth itself
// score 100 on every metric; leaving out one instance mask costs exactly what the protocol says
// ((n-1)/n AP for its class, (N-1)/N ABO); absent classes are listed; reports and the plot exist.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "data/eval.h"
#include "data/files.h"
#include "data/image.h"
#include "data/plot.h"
#include "data/predictions.h"
#include "tensor/error.h"
#include "data/synth.h"
#include "data/voc.h"

namespace fs = std::filesystem;

namespace {

struct EvalFixture {
  std::string dir =
      (fs::temp_directory_path() / ("prm_test_eval_" + std::to_string(::getpid()))).string();
  std::string data = dir + "/voc", pred = dir + "/pred";
  prm::EvalOptions options() const {
    prm::EvalOptions o;
    o.data = data;
    o.pred = pred;
    return o;
  }
  // Class and index of the instance left out by write(true).
  int dropped_class = -1;
  EvalFixture() {
    fs::remove_all(dir);
    prm::SynthOptions o;
    o.out = data;
    o.train = 2;
    o.val = 8;
    o.size = 64;
    o.classes = 5;
    o.seed = 11;
    prm::synthesize_voc(o);
  }
  ~EvalFixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  // Predictions copied from the ground truth; with drop_one, the first instance is left out.
  void write(bool drop_one) {
    fs::remove_all(pred);
    fs::create_directories(pred + "/masks");
    std::ofstream cls(pred + "/classification.txt"), pts(pred + "/points.txt"),
        ins(pred + "/instances.txt");
    cls << "# image class score\n";
    const auto& names = prm::voc_class_names();
    bool dropped = false;
    for (const std::string& id : prm::read_voc_split(data, "Main", "val")) {
      const prm::VocAnnotation a =
          prm::read_voc_annotation(data + "/Annotations/" + id + ".xml", names);
      for (int c = 0; c < 20; ++c) {
        bool present = false;
        for (const prm::VocObject& ob : a.objects) present |= ob.class_id == c;
        cls << id << " " << names[c] << " " << (present ? 1.0 : 0.0) << "\n";
      }
      for (const prm::VocObject& ob : a.objects)
        pts << id << " " << ob.name << " 1 " << (ob.box.xmin + ob.box.xmax) / 2 - 1 << " "
            << (ob.box.ymin + ob.box.ymax) / 2 - 1 << "\n";
      const prm::InstanceGroundTruth gt = prm::load_instance_ground_truth(data, id, 20);
      for (const prm::GtInstance& g : gt.instances) {
        if (drop_one && !dropped) {
          dropped = true;
          dropped_class = g.class_id;
          continue;
        }
        prm::Image m;
        m.width = gt.width;
        m.height = gt.height;
        m.channels = 1;
        for (uint8_t v : gt.objects) m.pixels.push_back(v == g.object_value ? 255 : 0);
        const std::string name = "masks/" + id + "_" + std::to_string(g.object_value) + ".png";
        prm::save_png(pred + "/" + name, m);
        ins << id << " " << names[g.class_id] << " 0.9 " << name << "\n";
        if (g.object_value == 1)  // a duplicate at a low score: a FP ranked after every TP
          ins << id << " " << names[g.class_id] << " 0.01 " << name << "\n";
      }
    }
  }
};

}  // namespace

TEST_CASE("metrics eval: predictions equal to the ground truth score 1 everywhere") {
  EvalFixture f;
  f.write(false);
  prm::EvalOptions o = f.options();
  const prm::EvalReport r = prm::evaluate(o);
  REQUIRE(r.has_classification);
  REQUIRE(r.has_points);
  REQUIRE(r.has_instances);
  CHECK(r.main_images == 8);
  CHECK(r.segmentation_images == 8);
  CHECK(r.classification.mean == doctest::Approx(1.0));
  CHECK(r.pointwise.mean == doctest::Approx(1.0));
  REQUIRE(r.instance.size() == 3);
  for (const prm::MeanMetric& m : r.instance) CHECK(m.mean == doctest::Approx(1.0));
  CHECK(r.abo == doctest::Approx(1.0));
  CHECK(r.semantic.mean == doctest::Approx(1.0));
  // Only the first 5 VOC classes exist in this dataset: the other 15 are absent and listed.
  for (int c = 5; c < 20; ++c) CHECK(r.classification.per_class[c].absent);
  CHECK(r.classification.absent_classes.size() >= 15);
  CHECK(r.semantic.per_class.size() == 21);
  CHECK(r.semantic.per_class[20].absent);

  const std::string md = prm::report_markdown(r), js = prm::report_json(r);
  CHECK(
      md.find(
          "| **mean** | **100.0** | **100.0** | **100.0** | **100.0** | **100.0** | **100.0** |") !=
      std::string::npos);
  CHECK(md.find("tvmonitor") != std::string::npos);
  CHECK(js.find("\"map_r@0.5\": {\"map_r\": 1.000000") != std::string::npos);
  CHECK(js.find("\"tvmonitor\": null") != std::string::npos);

  std::vector<prm::PlotCurve> curves;
  for (int c = 0; c < 5; ++c)
    if (!r.instance[1].per_class[c].absent)
      curves.push_back({"c", &r.instance[1].per_class[c].curve, c + 1});
  prm::write_pr_plot(f.pred + "/pr.png", "test", curves);
  const prm::Image plot = prm::load_image(f.pred + "/pr.png");
  CHECK(plot.width > 300);
}

TEST_CASE("metrics eval: one missing instance costs (n-1)/n AP and (N-1)/N ABO") {
  EvalFixture f;
  f.write(true);
  REQUIRE(f.dropped_class >= 0);
  // n: ground-truth instances of the dropped class, N: all instances, over the val split.
  int n = 0, N = 0;
  for (const std::string& id : prm::read_voc_split(f.data, "Segmentation", "val"))
    for (const prm::GtInstance& g : prm::load_instance_ground_truth(f.data, id, 20).instances) {
      ++N;
      n += g.class_id == f.dropped_class;
    }
  prm::EvalOptions o = f.options();
  const prm::EvalReport r = prm::evaluate(o);
  CHECK(r.instance[1].per_class[f.dropped_class].value == doctest::Approx(double(n - 1) / n));
  CHECK(r.abo == doctest::Approx(double(N - 1) / N));
  CHECK(r.gt_instances == N);
  CHECK(r.semantic.per_class[f.dropped_class + 1].value < 1.0);
  // The JSON report carries the same ABO, six decimals (docs/evaluation.md).
  char abo[64];
  std::snprintf(abo, sizeof abo, "\"abo\": %.6f", double(N - 1) / N);
  CHECK(prm::report_json(r).find(abo) != std::string::npos);
}

TEST_CASE("metrics eval: bad prediction files name the file and line") {
  EvalFixture f;
  f.write(false);
  std::ofstream(f.pred + "/points.txt")
      << "2012_000003 aeroplane 1 5 5\n2012_000003 unicorn 1 5 5\n";
  prm::EvalOptions o = f.options();
  CHECK_THROWS_WITH_AS(prm::evaluate(o),
                       doctest::Contains("points.txt:2: unknown class name 'unicorn'"),
                       std::exception);
  fs::remove(f.pred + "/points.txt");
  std::ofstream(f.pred + "/instances.txt") << "2012_000003 aeroplane 0.5 nothere.png\n";
  CHECK_THROWS_WITH_AS(prm::evaluate(o), doctest::Contains("nothere.png"), std::exception);
}

TEST_CASE("metrics eval: PredictionWriter writes what evaluate reads") {
  EvalFixture f;
  {
    prm::PredictionWriter w(f.pred);
    for (const std::string& id : prm::read_voc_split(f.data, "Segmentation", "val")) {
      const prm::InstanceGroundTruth gt = prm::load_instance_ground_truth(f.data, id, 20);
      for (const prm::GtInstance& g : gt.instances) {
        std::vector<uint8_t> mask(gt.objects.size());
        for (size_t i = 0; i < mask.size(); ++i) mask[i] = gt.objects[i] == g.object_value;
        w.add_instance(id, prm::voc_class_names()[g.class_id], 0.5, mask, gt.width, gt.height);
      }
    }
    w.flush();
  }
  prm::EvalOptions o = f.options();
  o.allow_missing = true;  // only instances were written: the other two files are empty
  const prm::EvalReport r = prm::evaluate(o);
  CHECK(r.has_instances);
  CHECK(r.instance[2].mean == doctest::Approx(1.0));
  CHECK(r.semantic.mean == doctest::Approx(1.0));
}

TEST_CASE("metrics eval: instance predictions for images outside the split are counted in a note") {
  EvalFixture f;
  f.write(false);
  prm::EvalOptions o = f.options();
  auto note_about_outside = [](const prm::EvalReport& r) {
    for (const std::string& n : r.notes)
      if (n.find("outside the split") != std::string::npos) return n;
    return std::string();
  };
  CHECK(note_about_outside(prm::evaluate(o)).empty());  // every image of the file is in the split
  std::ofstream(f.pred + "/instances.txt", std::ios::app)
      << "2099_000001 aeroplane 0.5 masks/elsewhere.png\n"
      << "2099_000002 aeroplane 0.4 masks/elsewhere.png\n";
  CHECK(note_about_outside(prm::evaluate(o)) ==
        "instances: predictions for 2 images outside the split ignored");
}

TEST_CASE("metrics eval: an empty predictions file, or one missing a class, is refused") {
  EvalFixture f;
  f.write(false);
  prm::EvalOptions o = f.options();
  CHECK_NOTHROW(prm::evaluate(o));  // complete files
  // classification.txt without any line for one class that has positives (aeroplane, index 0).
  const std::string cls = prm::read_file_bytes(f.pred + "/classification.txt");
  std::string without;
  std::istringstream lines(cls);
  for (std::string line; std::getline(lines, line);)
    if (line.find(" aeroplane ") == std::string::npos) without += line + "\n";
  prm::write_file_atomic(f.pred + "/classification.txt", without);
  CHECK_THROWS_WITH_AS(prm::evaluate(o),
                       doctest::Contains("classification.txt: no line for 1 class(es) with "
                                         "positive images in the split (class indices 0)"),
                       prm::Error);
  o.allow_missing = true;
  CHECK_NOTHROW(prm::evaluate(o));
  o.allow_missing = false;
  prm::write_file_atomic(f.pred + "/classification.txt", "# nothing\n");
  CHECK_THROWS_WITH_AS(prm::evaluate(o), doctest::Contains("no predictions in the file"),
                       prm::Error);
}

TEST_CASE("metrics eval: a score or coordinate with trailing characters is not a number") {
  EvalFixture f;
  f.write(false);
  prm::EvalOptions o = f.options();
  o.allow_missing = true;
  std::ofstream(f.pred + "/classification.txt") << "2012_000003 aeroplane 0.5x\n";
  CHECK_THROWS_WITH_AS(prm::evaluate(o),
                       doctest::Contains("classification.txt:1: expected '<image_id> <class_name> "
                                         "<score>', the score is '0.5x'"),
                       prm::Error);
  fs::remove(f.pred + "/classification.txt");
  std::ofstream(f.pred + "/points.txt") << "2012_000003 aeroplane 1 5 5px\n";
  CHECK_THROWS_WITH_AS(prm::evaluate(o), doctest::Contains("points.txt:1: expected the point's x"),
                       prm::Error);
}
