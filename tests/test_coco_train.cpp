// The COCO layout end to end for data and training: `prm synth --format coco` read back by the
// COCO reader (categories sorted, every polygon's rasterisation agreeing with the recorded area
// and box, crowd RLEs, images without annotations, images on disk), the polygon outlines checked
// against the drawings they came from, the training set of a COCO split, `prm train` on a COCO
// root (weights naming COCO's classes, resume), `prm data` counts and mixed-up layouts refused.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "data/coco.h"
#include "data/coco_mask.h"
#include "data/files.h"
#include "data/image.h"
#include "data/json.h"
#include "data/loader.h"
#include "data/polygon_trace.h"
#include "data/synth_coco.h"
#include "data/voc.h"
#include "helpers.h"
#include "prm/weights.h"

using namespace prm;
namespace fs = std::filesystem;

namespace {

SynthOptions coco_synth_options(const std::string& dir) {
  SynthOptions o;
  o.out = dir;
  o.train = 12;
  o.val = 6;
  o.size = 80;
  o.classes = 5;
  o.seed = 4;
  return o;
}

struct CocoSet {
  SynthOptions options;
  SynthCocoSummary summary;
};

// One synthetic COCO root shared by the cases of this file.
const CocoSet& coco_set() {
  static const CocoSet set = [] {
    CocoSet s;
    s.options = coco_synth_options(fresh_temp_dir("coco_train_data").string());
    s.summary = synthesize_coco(s.options);
    return s;
  }();
  return set;
}

coco::Rle annotation_rle(const CocoAnnotation& a, const CocoImage& image) {
  const uint32_t h = static_cast<uint32_t>(image.height), w = static_cast<uint32_t>(image.width);
  if (a.segmentation.kind == CocoSegmentation::Kind::polygons)
    return coco::rle_from_polygons(a.segmentation.polygons, h, w);
  REQUIRE(a.segmentation.kind == CocoSegmentation::Kind::rle);
  return coco::Rle{h, w, a.segmentation.counts};
}

double iou(const coco::Rle& a, const coco::Rle& b) { return coco::rle_iou(a, b, false); }

// A random mask of blobs, rings, lines and lone pixels: what outlines must reproduce exactly.
std::vector<uint8_t> random_mask(std::mt19937& rng, int h, int w) {
  std::uniform_real_distribution<double> U(0, 1);
  std::vector<uint8_t> m(static_cast<size_t>(h) * w, 0);
  const int shapes = 1 + static_cast<int>(U(rng) * 5);
  for (int s = 0; s < shapes; ++s) {
    const double cx = U(rng) * w, cy = U(rng) * h, r = 1 + U(rng) * w / 3.0;
    const double aspect = 0.5 + U(rng), inner = U(rng) < 0.4 ? r * (0.2 + 0.5 * U(rng)) : -1;
    const bool erase = s > 0 && U(rng) < 0.25;  // cuts into what is there
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const double d = std::hypot(x + 0.5 - cx, (y + 0.5 - cy) * aspect);
        if (d <= r && d >= inner) m[static_cast<size_t>(y) * w + x] = erase ? 0 : 1;
      }
  }
  const int dots = static_cast<int>(U(rng) * 12);  // lone pixels, diagonal touches
  for (int k = 0; k < dots; ++k)
    m[static_cast<size_t>(U(rng) * h) * w + static_cast<size_t>(U(rng) * w)] ^= 1;
  return m;
}

void check_exact_outlines(const std::vector<uint8_t>& m, int h, int w) {
  TraceOptions exact;
  exact.smooth = false;
  exact.min_part_pixels = 1;
  const std::vector<std::vector<double>> parts = mask_to_polygons(m.data(), h, w, exact);
  const coco::Rle want = coco::rle_encode(m.data(), static_cast<uint32_t>(h),
                                          static_cast<uint32_t>(w));
  if (parts.empty()) {
    CHECK(coco::rle_area(want) == 0);
    return;
  }
  for (const std::vector<double>& p : parts) CHECK(p.size() >= 6);
  CHECK(coco::rle_from_polygons(parts, static_cast<uint32_t>(h), static_cast<uint32_t>(w)) ==
        want);
}

}  // namespace

TEST_CASE("coco polygon trace: exact outlines rasterise to the mask pixel for pixel") {
  // By hand: a ring (a hole, cut in two parts), a checkerboard (diagonal neighbours are apart),
  // a ring holding an island, the border pixels, a full image.
  const int h = 9, w = 9;
  std::vector<uint8_t> ring(h * w, 0), checker(h * w, 0), island(h * w, 0), border(h * w, 0);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int i = y * w + x;
      const int r = std::max(std::abs(x - 4), std::abs(y - 4));
      ring[i] = r >= 2 && r <= 3;
      checker[i] = (x + y) % 2 == 0;
      island[i] = r == 4 || r == 0 || (r == 2 && x != 2);
      border[i] = x == 0 || y == 0 || x == w - 1 || y == h - 1;
    }
  for (const std::vector<uint8_t>* m : {&ring, &checker, &island, &border})
    check_exact_outlines(*m, h, w);
  TraceOptions exact;
  exact.smooth = false;
  CHECK(mask_to_polygons(ring.data(), h, w, exact).size() == 2);  // cut at the hole
  check_exact_outlines(std::vector<uint8_t>(h * w, 1), h, w);
  check_exact_outlines(std::vector<uint8_t>(h * w, 0), h, w);

  std::mt19937 rng(7);
  for (int t = 0; t < 300; ++t) {
    const int mh = 1 + static_cast<int>(rng() % 40), mw = 1 + static_cast<int>(rng() % 40);
    CAPTURE(t);
    check_exact_outlines(random_mask(rng, mh, mw), mh, mw);
  }
}

TEST_CASE("coco polygon trace: smoothed outlines have float vertices and stay close") {
  std::mt19937 rng(11);
  int checked = 0;
  for (int t = 0; t < 100; ++t) {
    const int h = 48, w = 56;
    const std::vector<uint8_t> m = random_mask(rng, h, w);
    const coco::Rle want = coco::rle_encode(m.data(), h, w);
    if (coco::rle_area(want) < 300) continue;
    const std::vector<std::vector<double>> parts = mask_to_polygons(m.data(), h, w);
    REQUIRE_FALSE(parts.empty());
    CHECK(iou(coco::rle_from_polygons(parts, h, w), want) >= 0.8);
    ++checked;
  }
  CHECK(checked > 30);
  // A 20 x 20 square: thinned to a few vertices, corners cut by a third of a pixel.
  std::vector<uint8_t> square(30 * 30, 0);
  for (int y = 5; y < 25; ++y)
    for (int x = 5; x < 25; ++x) square[y * 30 + x] = 1;
  const std::vector<std::vector<double>> parts = mask_to_polygons(square.data(), 30, 30);
  REQUIRE(parts.size() == 1);
  CHECK(parts[0].size() <= 16);
  CHECK(std::any_of(parts[0].begin(), parts[0].end(), [](double v) { return v != std::floor(v); }));
  CHECK(coco::rle_area(coco::rle_from_polygons(parts, 30, 30)) == 400);
}

TEST_CASE("coco synth: the reader reads back categories, masks, areas, boxes and images") {
  const CocoSet& set = coco_set();
  const std::string root = set.options.out;
  REQUIRE(is_coco_root(root));
  CHECK(resolve_dataset_format(root, "auto") == "coco");
  int64_t annotations = 0, crowd = 0, empty = 0, multi_part = 0, float_vertices = 0;
  for (const std::string split : {"train", "val"}) {
    CAPTURE(split);
    const std::string path = coco_annotation_path(root, split);
    // The file lists the categories in descending id order; the reader sorts them.
    const Json doc = parse_json(read_file_bytes(path), path);
    const std::vector<Json>& listed = doc.at("categories").items();
    REQUIRE(listed.size() == 5);
    CHECK(listed.front().at("id").as_int64() > listed.back().at("id").as_int64());
    CHECK(doc.find("info"));
    CHECK(doc.find("licenses"));
    const CocoDataset d = read_coco_annotations(path);
    REQUIRE(d.categories.size() == 5);
    for (size_t c = 0; c < 5; ++c) {
      CHECK(d.categories[c].id == synth_coco_categories()[c].id);
      CHECK(d.categories[c].name == synth_coco_categories()[c].name);
    }
    CHECK(d.images.size() == static_cast<size_t>(split == "train" ? 12 : 6));
    for (size_t i = 0; i < d.images.size(); ++i) {
      const CocoImage& im = d.images[i];
      const Image jpg = load_image(coco_image_path(root, split, im));
      CHECK(jpg.width == im.width);
      CHECK(jpg.height == im.height);
      if (d.image_annotations[i].empty()) {
        ++empty;
        const std::vector<float> y = d.labels(static_cast<int>(i));
        CHECK(std::count(y.begin(), y.end(), 1.0f) == 0);
      }
    }
    for (const CocoAnnotation& a : d.annotations) {
      CAPTURE(a.id);
      const CocoImage& im = d.images[a.image];
      const coco::Rle rle = annotation_rle(a, im);
      coco::check_rle(rle);  // crowd RLEs: counts sum to h * w
      CHECK(a.has_area);
      CHECK(a.area == coco::rle_area(rle));
      CHECK(a.area > 0);
      const std::array<double, 4> box = coco::rle_to_bbox(rle);
      for (int k = 0; k < 4; ++k) CHECK(a.bbox[k] == box[k]);
      CHECK(a.iscrowd == (a.segmentation.kind == CocoSegmentation::Kind::rle));
      crowd += a.iscrowd;
      multi_part += a.segmentation.polygons.size() > 1;
      for (const std::vector<double>& p : a.segmentation.polygons)
        float_vertices += std::any_of(p.begin(), p.end(), [](double v) { return v != std::floor(v); });
    }
    annotations += static_cast<int64_t>(d.annotations.size());
  }
  CHECK(annotations == set.summary.annotations);
  CHECK(crowd == set.summary.crowd);
  CHECK(empty == set.summary.empty_images);
  CHECK(crowd > 0);
  CHECK(empty >= 2);  // at least one per split
  CHECK(multi_part > 0);
  CHECK(float_vertices > 0);
}

TEST_CASE("coco synth: each annotation outlines the object drawn, of its class") {
  const CocoSet& set = coco_set();
  int checked = 0;
  double worst = 1;
  for (const std::string split : {"train", "val"}) {
    const CocoDataset d = read_coco_annotations(coco_annotation_path(set.options.out, split));
    const int n = split == "train" ? set.options.train : set.options.val;
    for (size_t i = 0; i < d.images.size(); ++i) {
      const CocoImage& im = d.images[i];
      const int index = static_cast<int>(im.id) - 1;
      const int j = split == "train" ? index : index - set.options.train;
      const SynthImage drawn =
          synth_image(set.options, index, !synth_coco_background_only(j, n, set.options.seed));
      REQUIRE(drawn.rgb.width == im.width);
      const std::vector<int>& anns = d.image_annotations[i];
      REQUIRE(anns.size() == drawn.annotation.objects.size());
      for (size_t k = 0; k < anns.size(); ++k) {
        const CocoAnnotation& a = d.annotations[anns[k]];
        CHECK(a.category == drawn.annotation.objects[k].class_id);
        std::vector<uint8_t> mask(drawn.owners.size());
        for (size_t p = 0; p < mask.size(); ++p) mask[p] = drawn.owners[p] == k + 1;
        const coco::Rle visible = coco::rle_encode(mask.data(), im.height, im.width);
        const coco::Rle written = annotation_rle(a, im);
        if (a.iscrowd) {
          CHECK(written == visible);  // crowd regions: the exact mask
        } else if (coco::rle_area(visible) >= 100) {
          const double v = iou(written, visible);
          CHECK(v >= 0.8);
          worst = std::min(worst, v);
          ++checked;
        }
      }
    }
  }
  MESSAGE("polygon outlines of " << checked << " objects: lowest IoU with the drawn mask " << worst);
  CHECK(checked >= 10);
}

TEST_CASE("coco train: a COCO split as the training set, streamed by the loader") {
  const CocoSet& set = coco_set();
  VocOptions vo;
  vo.root = set.options.out;
  vo.split = "val";
  vo.format = "auto";
  const VocDataset data(vo);
  CHECK(data.format() == "coco");
  REQUIRE(data.size() == 6);
  REQUIRE(data.classes().size() == 5);
  CHECK(data.classes()[0] == "person");
  const CocoDataset d = read_coco_annotations(coco_annotation_path(set.options.out, "val"));
  for (size_t i = 0; i < data.size(); ++i) {
    CHECK(data.sample(i).id == std::to_string(d.images[i].id));
    CHECK(data.sample(i).target == d.labels(static_cast<int>(i)));
    CHECK(data.sample(i).annotation.objects.empty());
    const std::vector<int> labels = data.image_labels(i);
    for (size_t c = 0; c < labels.size(); ++c)
      CHECK(labels[c] == (data.sample(i).target[c] > 0 ? 1 : -1));
  }
  LoaderOptions lo;
  lo.batch_size = 4;
  lo.image_size = 32;
  lo.workers = 2;
  Loader loader(data, lo);
  loader.start_epoch(0);
  Batch batch;
  size_t seen = 0;
  while (loader.next(batch)) {
    CHECK(batch.targets.shape() == Shape{static_cast<int64_t>(batch.indices.size()), 5});
    seen += batch.indices.size();
  }
  CHECK(seen == 6);

  vo.split = "train2014";
  CHECK(error_of([&] { VocDataset x(vo); }).find("no COCO split 'train2014'") != std::string::npos);
  CHECK(error_of([&] { VocDataset x(vo); }).find("splits here: train, val") != std::string::npos);
  vo.split = "train";
  vo.format = "voc";
  CHECK(error_of([&] { VocDataset x(vo); }).find("a COCO root") != std::string::npos);
}

TEST_CASE("coco train: prm train on a COCO root, resumed, names COCO's classes") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const CocoSet& set = coco_set();
  const fs::path run = fresh_temp_dir("coco_train_run") / "run";
  const std::string flags =
      " --arch resnet18 --width 4 --size 48 --batch 4 --workers 1 --seed 2 --backbone-lr-mult 1";
  const CommandResult first = run_command(prm_bin() + " train --data " + set.options.out +
                                          " --out " + run.string() + " --epochs 1" + flags);
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  const Json config = parse_json(read_file_bytes((run / "config.json").string()), "config.json");
  CHECK(config.at("format").as_string() == "coco");
  CHECK(config.at("train_fingerprint").at("images").as_int64() == 12);

  // A resume reads the data as the run did; a flag naming another layout is refused.
  const CommandResult wrong = run_command(prm_bin() + " train --resume " + run.string() +
                                          " --epochs 2 --format voc");
  CHECK(wrong.exit_code != 0);
  CHECK(wrong.err.find("--format voc differs from the run's stored configuration (coco)") !=
        std::string::npos);
  const CommandResult second =
      run_command(prm_bin() + " train --resume " + run.string() + " --epochs 2");
  INFO(second.err);
  REQUIRE(second.exit_code == 0);
  const std::string metrics = read_file_bytes((run / "metrics.jsonl").string());
  CHECK(count_of(metrics, "\"val_map\"") == 2);

  WeightsInfo info;
  load_classifier("", (run / "weights.safetensors").string(), DType::f32, Device::cpu, &info);
  REQUIRE(info.present);
  CHECK(info.classes ==
        std::vector<std::string>{"person", "bicycle", "car", "motorcycle", "airplane"});
}

TEST_CASE("coco train: a layout mixed up or a split missing is one clear line (val: a note)") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const CocoSet& set = coco_set();
  const fs::path dir = fresh_temp_dir("coco_train_bad");
  auto one_line_error = [](const CommandResult& r, const std::string& what) {
    CHECK(r.exit_code != 0);
    CHECK(count_of(r.err, "\n") == 1);
    CHECK(r.err.find(what) != std::string::npos);
  };
  const std::string train = prm_bin() + " train --backbone-lr-mult 1 --data ";
  one_line_error(run_command(train + set.options.out + " --format voc --out " + (dir / "a").string()),
                 "a COCO root (annotations/, no ImageSets/), not the VOC layout asked for");
  one_line_error(run_command(train + set.options.out + " --train-split train2014 --out " +
                             (dir / "b").string()),
                 "no COCO split 'train2014'");
  const std::string voc = (dir / "voc").string();
  REQUIRE(run_command(prm_bin() + " synth --out " + voc + " --train 2 --val 1 --size 48")
              .exit_code == 0);
  one_line_error(run_command(train + voc + " --format coco --out " + (dir / "c").string()),
                 "not a COCO root");
  one_line_error(run_command(prm_bin() + " synth --out " + (dir / "d").string() +
                             " --train-split train2014"),
                 "give --format coco");
  // A validation split that is not there trains without validation, and says so.
  const CommandResult no_val =
      run_command(train + set.options.out + " --val-split val2014 --out " + (dir / "e").string() +
                  " --epochs 1 --arch resnet18 --width 4 --size 32 --batch 6 --workers 1");
  CHECK(no_val.exit_code == 0);
  CHECK(no_val.err.find("no validation: " + set.options.out + " has no split 'val2014'") !=
        std::string::npos);
  CHECK(no_val.out.find("val_map") == std::string::npos);
}

TEST_CASE("coco synth and data: the command line writes named splits, prm data counts them") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path root = fresh_temp_dir("coco_train_cli");
  const CommandResult synth = run_command(
      prm_bin() + " synth --format coco --out " + root.string() +
      " --train 5 --val 3 --size 48 --classes 3 --seed 9 --train-split train2014 --val-split val2014");
  INFO(synth.err);
  REQUIRE(synth.exit_code == 0);
  CHECK(synth.out.find("in the COCO layout") != std::string::npos);
  CHECK(fs::exists(root / "annotations" / "instances_train2014.json"));
  CHECK(fs::exists(root / "val2014" / "COCO_val2014_000000000008.jpg"));

  const CocoDataset d = read_coco_annotations(coco_annotation_path(root.string(), "train2014"));
  int64_t crowd = 0, empty = 0;
  for (const CocoAnnotation& a : d.annotations) crowd += a.iscrowd;
  for (const std::vector<int>& anns : d.image_annotations) empty += anns.empty();
  const CommandResult data =
      run_command(prm_bin() + " data --data " + root.string() + " --split train2014");
  INFO(data.err);
  REQUIRE(data.exit_code == 0);
  const Json line = parse_json(data.out, "prm data's output");
  CHECK(line.at("format").as_string() == "coco");
  CHECK(line.at("images").as_int64() == 5);
  CHECK(line.at("annotations").as_int64() == static_cast<int64_t>(d.annotations.size()));
  CHECK(line.at("crowd").as_int64() == crowd);
  CHECK(line.at("images_without_annotations").as_int64() == empty);
  CHECK(empty == 1);
  CHECK(line.at("classes").as_int64() == 3);
}
