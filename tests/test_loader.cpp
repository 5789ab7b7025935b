// Transforms (against hand-computed bilinear values) and the threaded loader (against the same
// transforms applied directly to each sample, and against the single-threaded loader).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "data/image.h"
#include "data/loader.h"
#include "data/synth.h"
#include "data/transforms.h"
#include "data/voc.h"
#include "helpers.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace {

// A small synthetic VOC tree shared by the loader tests, written once, removed at exit.
struct LoaderData {
  std::string dir =
      (fs::temp_directory_path() / ("prm_test_loader_voc_" + std::to_string(::getpid()))).string();
  LoaderData() {
    fs::remove_all(dir);
    prm::SynthOptions o;
    o.out = dir;
    o.train = 11;
    o.val = 2;
    o.size = 64;
    o.seed = 5;
    prm::synthesize_voc(o);
  }
  ~LoaderData() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

const std::string& loader_data() {
  static const LoaderData data;
  return data.dir;
}

prm::VocDataset train_set() {
  prm::VocOptions vo;
  vo.root = loader_data();
  vo.split = "train";
  return prm::VocDataset(vo);
}

}  // namespace

TEST_CASE("transforms: bilinear resize matches hand-computed half-pixel values") {
  // 2 -> 4 columns: source x = (o + .5) / 2 - .5 = -.25 (clamped to 0), .25, .75, 1.25 (-> 1):
  // values 0, 25, 75, 100 (torch F.interpolate align_corners=False gives the same).
  prm::Image src;
  src.width = 2;
  src.height = 1;
  src.channels = 1;
  src.pixels = {0, 100};
  prm::Image out = prm::resize_bilinear(src, 4, 1);
  CHECK(out.pixels == std::vector<uint8_t>{0, 25, 75, 100});
  // 4 -> 2: source x = .5, 2.5: (a0 + a1) / 2 and (a2 + a3) / 2.
  src.width = 4;
  src.pixels = {10, 20, 30, 50};
  CHECK(prm::resize_bilinear(src, 2, 1).pixels == std::vector<uint8_t>{15, 40});
}

TEST_CASE("transforms: normalisation and flip of a 2x2 RGB image") {
  prm::Image src;
  src.width = 2;
  src.height = 2;
  src.channels = 3;
  // left column red channel 0, right column 255; green 51 everywhere; blue 255 everywhere.
  src.pixels = {0, 51, 255, 255, 51, 255, 0, 51, 255, 255, 51, 255};
  std::vector<float> out(12), flipped(12);
  prm::resize_flip_normalize(src, 2, false, out.data());
  prm::resize_flip_normalize(src, 2, true, flipped.data());
  const double r0 = (0.0 - 0.485) / 0.229, r1 = (1.0 - 0.485) / 0.229;
  const double g = (0.2 - 0.456) / 0.224, b = (1.0 - 0.406) / 0.225;
  check_close(std::vector<double>(out.begin(), out.end()), {r0, r1, r0, r1, g, g, g, g, b, b, b, b},
              1e-5, 1e-5);
  check_close(std::vector<double>(flipped.begin(), flipped.end()),
              {r1, r0, r1, r0, g, g, g, g, b, b, b, b}, 1e-5, 1e-5);
  // The flip decision is a pure function of (seed, epoch, sample), about half true.
  int flips = 0;
  for (int i = 0; i < 1000; ++i) flips += prm::flip_for(7, 2, i);
  CHECK(flips > 420);
  CHECK(flips < 580);
  CHECK(prm::flip_for(7, 2, 13) == prm::flip_for(7, 2, 13));
}

TEST_CASE("loader: batches equal the transforms applied directly; threads change nothing") {
  prm::VocDataset data = train_set();
  REQUIRE(data.size() == 11);
  prm::LoaderOptions lo;
  lo.batch_size = 4;
  lo.image_size = 32;
  lo.workers = 2;
  lo.prefetch = 2;
  lo.seed = 9;
  prm::Loader threaded(data, lo);
  lo.workers = 0;
  prm::Loader inline_loader(data, lo);
  CHECK(threaded.batches_per_epoch() == 3);
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    threaded.start_epoch(epoch);
    inline_loader.start_epoch(epoch);
    std::multiset<size_t> seen;
    prm::Batch a, b;
    int batches = 0;
    while (threaded.next(a)) {
      REQUIRE(inline_loader.next(b));
      ++batches;
      CHECK(a.indices == b.indices);
      CHECK(a.images.to_vector() == b.images.to_vector());
      const int64_t B = static_cast<int64_t>(a.indices.size());
      CHECK(a.images.shape() == prm::Shape{B, 3, 32, 32});
      CHECK(a.targets.shape() == prm::Shape{B, 20});
      const std::vector<double> imgs = a.images.to_vector(), tg = a.targets.to_vector();
      for (int64_t i = 0; i < B; ++i) {
        const prm::VocSample& s = data.sample(a.indices[i]);
        seen.insert(a.indices[i]);
        std::vector<float> expect(3 * 32 * 32);
        prm::resize_flip_normalize(prm::load_image(s.image_path), 32,
                                   prm::flip_for(9, epoch, static_cast<int64_t>(a.indices[i])),
                                   expect.data());
        CHECK(a.flipped[i] == prm::flip_for(9, epoch, static_cast<int64_t>(a.indices[i])));
        for (size_t k = 0; k < expect.size(); k += 97)
          REQUIRE(imgs[i * expect.size() + k] == expect[k]);
        for (int c = 0; c < 20; ++c) REQUIRE(tg[i * 20 + c] == s.target[c]);
      }
    }
    CHECK(!inline_loader.next(b));
    CHECK(batches == 3);
    CHECK(seen.size() == 11);
    CHECK(*seen.rbegin() == 10);
  }
}

TEST_CASE("loader: shuffling per epoch from the seed, drop_last, early shutdown") {
  prm::VocDataset data = train_set();
  prm::LoaderOptions lo;
  lo.batch_size = 4;
  lo.image_size = 16;
  lo.workers = 2;
  lo.drop_last = true;
  lo.seed = 3;
  auto first_indices = [&](int64_t epoch) {
    prm::Loader loader(data, lo);
    loader.start_epoch(epoch);
    std::vector<size_t> all;
    prm::Batch b;
    int n = 0;
    while (loader.next(b)) {
      CHECK(b.indices.size() == 4);
      all.insert(all.end(), b.indices.begin(), b.indices.end());
      ++n;
    }
    CHECK(n == 2);  // 11 samples, batch 4, last partial batch dropped
    return all;
  };
  CHECK(first_indices(0) == first_indices(0));
  CHECK(first_indices(0) != first_indices(1));
  // Destroyed after one batch, with workers still prefetching: joins cleanly.
  prm::Loader loader(data, lo);
  loader.start_epoch(0);
  prm::Batch b;
  CHECK(loader.next(b));
  loader.start_epoch(1);  // restart mid-epoch
  CHECK(loader.next(b));
}

TEST_CASE("loader: an unreadable JPEG is an error naming the file, or skipped with skip_bad") {
  const std::string dir =
      (fs::temp_directory_path() / ("prm_test_loader_bad_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  fs::copy(loader_data(), dir, fs::copy_options::recursive);
  const std::string victim =
      (fs::path(dir) / "JPEGImages" / (prm::synth_image_id(3) + ".jpg")).string();
  fs::resize_file(victim, 40);  // truncated
  prm::VocOptions vo;
  vo.root = dir;
  vo.split = "train";
  prm::VocDataset data(vo);
  prm::LoaderOptions lo;
  lo.batch_size = 11;
  lo.image_size = 16;
  lo.workers = 2;
  lo.shuffle = false;
  {
    prm::Loader loader(data, lo);
    loader.start_epoch(0);
    prm::Batch b;
    CHECK_THROWS_WITH_AS(
        loader.next(b),
        doctest::Contains(doctest::String((prm::synth_image_id(3) + ".jpg").c_str())), prm::Error);
  }
  lo.skip_bad = true;
  prm::Loader loader(data, lo);
  loader.start_epoch(0);
  prm::Batch b;
  REQUIRE(loader.next(b));
  CHECK(b.indices.size() == 10);
  CHECK(b.images.shape()[0] == 10);
  CHECK(loader.skipped() == 1);
  fs::remove_all(dir);
}

TEST_CASE("voc: missing files, unknown classes, broken tags and wrong PNG sizes name the file") {
  const std::string dir =
      (fs::temp_directory_path() / ("prm_test_voc_bad_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  fs::copy(loader_data(), dir, fs::copy_options::recursive);
  auto open = [&](bool skip) {
    prm::VocOptions vo;
    vo.root = dir;
    vo.split = "train";
    vo.skip_bad = skip;
    return prm::VocDataset(vo);
  };
  const std::string id1 = prm::synth_image_id(1), id2 = prm::synth_image_id(2),
                    id4 = prm::synth_image_id(4);
  fs::remove(fs::path(dir) / "JPEGImages" / (id1 + ".jpg"));
  CHECK_THROWS_WITH_AS(open(false),
                       doctest::Contains(doctest::String(
                           (id1 + ".jpg: image listed in split 'train' is missing").c_str())),
                       prm::Error);
  {
    std::ofstream(fs::path(dir) / "Annotations" / (id2 + ".xml"))
        << "<annotation><object><name>unicorn</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
           "<xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>";
    std::ofstream(fs::path(dir) / "Annotations" / (id4 + ".xml"))
        << "<annotation><size><width>3</width></annotation>";
  }
  prm::VocDataset skipped = open(true);
  CHECK(skipped.skipped() == 3);
  CHECK(skipped.size() == 8);
  fs::copy_file(fs::path(loader_data()) / "JPEGImages" / (id1 + ".jpg"),
                fs::path(dir) / "JPEGImages" / (id1 + ".jpg"));
  CHECK_THROWS_WITH_AS(
      open(false),
      doctest::Contains(doctest::String((id2 + ".xml:1: unknown class name 'unicorn'").c_str())),
      prm::Error);
  std::ofstream(fs::path(dir) / "Annotations" / (id2 + ".xml")) << "<annotation></annotation>";
  CHECK_THROWS_WITH_AS(open(false),
                       doctest::Contains(doctest::String(
                           (id4 + ".xml:1: XML error: </annotation> closes <size>").c_str())),
                       prm::Error);
  // A SegmentationObject PNG of the wrong size.
  const prm::VocAnnotation a = prm::read_voc_annotation(
      (fs::path(dir) / "Annotations" / (prm::synth_image_id(0) + ".xml")).string(),
      prm::voc_class_names());
  prm::IndexedImage small;
  small.width = 3;
  small.height = 2;
  small.index.assign(6, 0);
  small.palette.assign(768, 0);
  prm::write_indexed_png(
      (fs::path(dir) / "SegmentationObject" / (prm::synth_image_id(0) + ".png")).string(), small);
  CHECK_THROWS_WITH_AS(
      prm::load_instance_ground_truth(dir, prm::synth_image_id(0), 20, a.width, a.height),
      doctest::Contains(doctest::String(
          ("SegmentationObject/" + prm::synth_image_id(0) + ".png: size 3x2").c_str())),
      prm::Error);
  CHECK_THROWS_WITH_AS(prm::resolve_voc_root("/nonexistent"), doctest::Contains("not a VOC root"),
                       prm::Error);
  fs::remove_all(dir);
}

TEST_SUITE("cuda") {
  TEST_CASE("loader cuda: batches assembled in pinned memory equal the CPU loader's") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    prm::VocDataset data = train_set();
    prm::LoaderOptions lo;
    lo.batch_size = 5;
    lo.image_size = 24;
    lo.workers = 2;
    lo.seed = 4;
    prm::Loader cpu(data, lo);
    lo.device = prm::Device::cuda;
    prm::Loader gpu(data, lo);
    cpu.start_epoch(1);
    gpu.start_epoch(1);
    prm::Batch a, b;
    while (cpu.next(a)) {
      REQUIRE(gpu.next(b));
      CHECK(b.images.is_cuda());
      CHECK(b.targets.is_cuda());
      CHECK(a.indices == b.indices);
      CHECK(a.images.to_vector() == b.images.to_vector());
      CHECK(a.targets.to_vector() == b.targets.to_vector());
    }
    CHECK(!gpu.next(b));
  }
}
