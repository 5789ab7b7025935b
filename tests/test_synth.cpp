// prm synth round trip: what the generator says it wrote is what the VOC reader reads back
// (annotations, class lists, palette PNGs whose instances match the objects and lie inside
// their boxes), and the generator produces the variety the issue asks for.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "data/image.h"
#include "data/synth.h"
#include "data/voc.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace {

prm::SynthOptions small_options(const std::string& dir) {
  prm::SynthOptions o;
  o.out = dir;
  o.train = 6;
  o.val = 3;
  o.size = 96;
  o.seed = 3;
  return o;
}

}  // namespace

TEST_CASE("synth: the VOC reader reads back the objects that were written") {
  const std::string dir =
      (fs::temp_directory_path() / ("prm_test_synth_roundtrip_" + std::to_string(::getpid())))
          .string();
  fs::remove_all(dir);
  const prm::SynthOptions o = small_options(dir);
  const std::vector<prm::VocAnnotation> written = prm::synthesize_voc(o);
  REQUIRE(written.size() == 9);

  prm::VocOptions vo;
  vo.root = dir;
  vo.split = "trainval";
  prm::VocDataset data(vo);
  REQUIRE(data.size() == 9);
  const auto pal = prm::voc_palette();
  for (size_t i = 0; i < data.size(); ++i) {
    const prm::VocSample& s = data.sample(i);
    CAPTURE(s.id);
    CHECK(s.id == prm::synth_image_id(static_cast<int>(i)));
    const prm::VocAnnotation& a = s.annotation;
    const prm::VocAnnotation& w = written[i];
    CHECK(a.width == w.width);
    CHECK(a.height == w.height);
    REQUIRE(a.objects.size() == w.objects.size());
    REQUIRE(!a.objects.empty());
    for (size_t k = 0; k < a.objects.size(); ++k) {
      CHECK(a.objects[k].name == w.objects[k].name);
      CHECK(a.objects[k].class_id == w.objects[k].class_id);
      CHECK(a.objects[k].difficult == w.objects[k].difficult);
      CHECK(a.objects[k].truncated == w.objects[k].truncated);
      CHECK(a.objects[k].box.xmin == w.objects[k].box.xmin);
      CHECK(a.objects[k].box.ymax == w.objects[k].box.ymax);
      CHECK(s.target[a.objects[k].class_id] == 1.0f);
    }
    const prm::Image jpg = prm::load_image(s.image_path);
    CHECK(jpg.width == a.width);
    CHECK(jpg.height == a.height);

    // Instance k+1 in SegmentationObject is object k, of its class, inside its box.
    prm::InstanceGroundTruth gt =
        prm::load_instance_ground_truth(data.root(), s.id, 20, a.width, a.height);
    REQUIRE(gt.instances.size() == a.objects.size());
    for (const prm::GtInstance& inst : gt.instances) {
      const prm::VocObject& obj = a.objects[inst.object_value - 1];
      CHECK(inst.class_id == obj.class_id);
      for (int y = 0; y < gt.height; ++y)
        for (int x = 0; x < gt.width; ++x)
          if (gt.objects[static_cast<size_t>(y) * gt.width + x] == inst.object_value) {
            REQUIRE(x + 1 >= obj.box.xmin);
            REQUIRE(x + 1 <= obj.box.xmax);
            REQUIRE(y + 1 >= obj.box.ymin);
            REQUIRE(y + 1 <= obj.box.ymax);
          }
    }
    // Palette PNGs carry the VOC colour map, and void pixels exist along boundaries.
    const prm::IndexedImage png =
        prm::read_indexed_png((fs::path(dir) / "SegmentationClass" / (s.id + ".png")).string());
    REQUIRE(png.palette.size() == 768);
    CHECK(std::equal(png.palette.begin(), png.palette.end(), pal.begin()));
    CHECK(std::count(gt.classes.begin(), gt.classes.end(), 255) > 0);
  }
  // Split lists: Main and Segmentation, train first then val; per-class lists with labels.
  CHECK(prm::read_voc_split(dir, "Main", "train").size() == 6);
  CHECK(prm::read_voc_split(dir, "Segmentation", "val").size() == 3);
  CHECK(prm::read_voc_split(dir, "Main", "val").front() == prm::synth_image_id(6));
  std::ifstream per_class(fs::path(dir) / "ImageSets/Main/aeroplane_trainval.txt");
  std::string id;
  int label = 0, lines = 0;
  while (per_class >> id >> label) {
    bool present = false;
    for (const prm::VocObject& obj : written[lines].objects) present |= obj.class_id == 0;
    CHECK((label >= 0) == present);
    ++lines;
  }
  CHECK(lines == 9);
  fs::remove_all(dir);
}

TEST_CASE("synth: deterministic per seed, with repeated classes, truncation and occlusion") {
  prm::SynthOptions o = small_options("");
  const prm::SynthImage a = prm::synth_image(o, 4), b = prm::synth_image(o, 4);
  CHECK(a.rgb.pixels == b.rgb.pixels);
  CHECK(a.objects.index == b.objects.index);
  o.seed = 4;
  CHECK(prm::synth_image(o, 4).rgb.pixels != a.rgb.pixels);

  int repeated = 0, truncated = 0, occluded = 0, touching = 0;
  std::set<size_t> counts;
  for (int i = 0; i < 40; ++i) {
    const prm::SynthImage im = prm::synth_image(o, i);
    const auto& objs = im.annotation.objects;
    counts.insert(objs.size());
    std::set<int> classes;
    for (const prm::VocObject& obj : objs) {
      truncated += obj.truncated;
      occluded += obj.occluded;
      classes.insert(obj.class_id);
    }
    repeated += classes.size() < objs.size();
    // Two instances touching: some pixel of one is within 3 px of a pixel of the other.
    const int W = im.objects.width, H = im.objects.height;
    bool touch = false;
    for (int y = 0; y < H && !touch; ++y)
      for (int x = 0; x + 3 < W && !touch; ++x) {
        const uint8_t l = im.objects.index[static_cast<size_t>(y) * W + x];
        const uint8_t r = im.objects.index[static_cast<size_t>(y) * W + x + 3];
        touch = l != 0 && l != 255 && r != 0 && r != 255 && l != r;
      }
    touching += touch;
  }
  CHECK(counts.count(1));
  CHECK(*counts.rbegin() <= 4);
  CHECK(*counts.rbegin() >= 3);
  CHECK(repeated > 0);
  CHECK(truncated > 0);
  CHECK(occluded > 0);
  CHECK(touching > 0);
}

TEST_CASE("image: indexed PNG write/read round trip, and corrupt files name the file") {
  const std::string path =
      (fs::temp_directory_path() / ("prm_test_indexed_" + std::to_string(::getpid()) + ".png"))
          .string();
  prm::IndexedImage im;
  im.width = 5;
  im.height = 3;
  im.index = {0, 1, 2, 3, 255, 20, 19, 18, 17, 16, 0, 0, 255, 255, 7};
  const auto pal = prm::voc_palette();
  im.palette.assign(pal.begin(), pal.end());
  prm::write_indexed_png(path, im);
  prm::IndexedImage back = prm::read_indexed_png(path);
  CHECK(back.width == 5);
  CHECK(back.height == 3);
  CHECK(back.index == im.index);
  CHECK(back.palette == im.palette);
  CHECK(pal[3] == 128);  // index 1 is (128, 0, 0)
  CHECK(pal[3 * 255] == 224);

  // An RGB PNG written by stb is not an indexed one.
  prm::Image rgb;
  rgb.width = 2;
  rgb.height = 2;
  rgb.channels = 3;
  rgb.pixels.assign(12, 9);
  prm::save_png(path, rgb);
  CHECK_THROWS_WITH_AS(prm::read_indexed_png(path), doctest::Contains("colour type 2"), prm::Error);
  // A grey 8-bit PNG (stb, with filters) reads back its values.
  prm::Image grey;
  grey.width = 7;
  grey.height = 4;
  grey.channels = 1;
  for (int i = 0; i < 28; ++i) grey.pixels.push_back(static_cast<uint8_t>(i * 9));
  prm::save_png(path, grey);
  CHECK(prm::read_indexed_png(path).index == grey.pixels);

  // Flipped bit in the data: a CRC error naming the file; a truncated file: an error too.
  prm::write_indexed_png(path, im);
  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  std::string bad = bytes;
  bad[bad.size() - 20] ^= 0x10;
  CHECK_THROWS_WITH_AS(
      prm::decode_indexed_png(reinterpret_cast<const uint8_t*>(bad.data()), bad.size(), "x.png"),
      doctest::Contains("x.png"), prm::Error);
  for (size_t cut : {size_t(5), size_t(30), bytes.size() - 13}) {
    CHECK_THROWS_AS(
        prm::decode_indexed_png(reinterpret_cast<const uint8_t*>(bytes.data()), cut, "t.png"),
        prm::Error);
  }
  fs::remove(path);
}

TEST_CASE("synth --cue shape: only the shape carries the class; the rest is the cue-all image") {
  // The same seed with both cues: per class, the mean over its objects of each object's mean RGB
  // (visible pixels, in [0, 1]). With cue all the classes differ in colour by far; with cue
  // shape their means must agree (colour drawn independently of the class).
  prm::SynthOptions all;
  all.size = 64;
  all.classes = 5;
  all.seed = 7;
  prm::SynthOptions shape = all;
  shape.cue = prm::SynthCue::shape;
  const int C = all.classes;
  // [cue][class]: summed object mean colours and object counts.
  double sum[2][5][3] = {}, count[2][5] = {};
  int64_t background = 0, background_differing = 0, objects = 0, objects_differing = 0;
  for (int i = 0; i < 400; ++i) {
    const prm::SynthImage a = prm::synth_image(all, i), s = prm::synth_image(shape, i);
    // Same geometry, classes, annotations and masks as the cue-all image of the seed.
    REQUIRE(s.annotation.objects.size() == a.annotation.objects.size());
    for (size_t k = 0; k < a.annotation.objects.size(); ++k) {
      CHECK(s.annotation.objects[k].class_id == a.annotation.objects[k].class_id);
      CHECK(s.annotation.objects[k].box.xmin == a.annotation.objects[k].box.xmin);
      CHECK(s.annotation.objects[k].box.ymax == a.annotation.objects[k].box.ymax);
      CHECK(s.annotation.objects[k].difficult == a.annotation.objects[k].difficult);
    }
    CHECK(s.objects.index == a.objects.index);
    CHECK(s.classes.index == a.classes.index);
    const prm::SynthImage* images[2] = {&a, &s};
    for (int cue = 0; cue < 2; ++cue) {
      const prm::SynthImage& im = *images[cue];
      const size_t n = im.objects.index.size();
      for (size_t k = 0; k < im.annotation.objects.size(); ++k) {
        double rgb[3] = {0, 0, 0}, pixels = 0;
        for (size_t p = 0; p < n; ++p)
          if (im.objects.index[p] == k + 1) {
            for (int c = 0; c < 3; ++c) rgb[c] += im.rgb.pixels[3 * p + c] / 255.0;
            ++pixels;
          }
        if (pixels == 0) continue;  // all of it in the void band
        const int cls = im.annotation.objects[k].class_id;
        for (int c = 0; c < 3; ++c) sum[cue][cls][c] += rgb[c] / pixels;
        count[cue][cls] += 1;
      }
    }
    for (size_t p = 0; p < a.objects.index.size(); ++p) {
      const bool differ = s.rgb.pixels[3 * p] != a.rgb.pixels[3 * p] ||
                          s.rgb.pixels[3 * p + 1] != a.rgb.pixels[3 * p + 1] ||
                          s.rgb.pixels[3 * p + 2] != a.rgb.pixels[3 * p + 2];
      (a.objects.index[p] == 0 ? background : objects) += 1;
      (a.objects.index[p] == 0 ? background_differing : objects_differing) += differ;
    }
  }
  // The same backgrounds (but for the few objects too small to be annotated, which stay painted
  // in the background); other object pixels.
  CAPTURE(background_differing);
  CAPTURE(objects_differing);
  CHECK(background_differing < background / 500);
  CHECK(objects_differing > objects / 2);
  // The largest difference between two classes' mean colours, per channel.
  double spread[2] = {0, 0};
  for (int cue = 0; cue < 2; ++cue)
    for (int c1 = 0; c1 < C; ++c1)
      for (int c2 = 0; c2 < C; ++c2)
        for (int ch = 0; ch < 3; ++ch) {
          REQUIRE(count[cue][c1] >= 100);
          const double d = sum[cue][c1][ch] / count[cue][c1] - sum[cue][c2][ch] / count[cue][c2];
          spread[cue] = std::max(spread[cue], d);
        }
  CAPTURE(spread[0]);
  CAPTURE(spread[1]);
  CHECK(spread[0] > 0.4);   // cue all: the colour alone tells the classes apart
  CHECK(spread[1] < 0.15);  // cue shape: it does not (0.06 here: sampling noise)

  // Shapes are one per class: --cue shape takes at most 5 classes; an unknown cue is an error.
  shape.classes = 6;
  CHECK_THROWS_WITH_AS(prm::synth_image(shape, 0), doctest::Contains("at most 5 classes"),
                       prm::Error);
  CHECK(prm::parse_synth_cue("all") == prm::SynthCue::all);
  CHECK_THROWS_WITH_AS(prm::parse_synth_cue("colour"), doctest::Contains("unknown cue"),
                       prm::Error);
}
