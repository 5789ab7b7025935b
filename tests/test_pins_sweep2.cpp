// Tests for survivors of the mutation sweep's extension from 70 to 100 mutants per area
// (tools/mutate.py, docs/testing.md): each pins a rule that a mechanically planted one-line bug
// changed without any test noticing.
#include <dirent.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "data/files.h"
#include "data/image.h"
#include "data/json.h"
#include "data/labels.h"
#include "data/predictions.h"
#include "dist/comm.h"
#include "dist/grad_reducer.h"
#include "helpers.h"
#include "layers/resnet.h"
#include "prm/infer.h"
#include "prm/selective_search.h"
#include "prm/train.h"
#include "prm/visualize.h"
#include "tensor/ops.h"

using namespace prm;

namespace {

int open_descriptors() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  REQUIRE(d != nullptr);
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

Image solid_image(int h, int w, uint8_t v) {
  Image img;
  img.width = w;
  img.height = h;
  img.channels = 3;
  img.pixels.assign(static_cast<size_t>(h) * w * 3, v);
  return img;
}

}  // namespace

TEST_CASE("selective search: each channel's texture bins come from its own plane") {
  // Channel 1 a vertical ramp, channels 0 and 2 horizontal ones. Orientation 0 (cos 1, sin 0,
  // both exact) responds to x derivatives only: at its maximum level on a horizontal ramp, and
  // nowhere on a vertical one (every response 0: level 0). Orientation 2 (sin 1 exact) sees the
  // vertical ramp's y derivative at its maximum.
  const int H = 16, W = 16;
  std::vector<float> planes(3 * H * W);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) planes[(c * H + y) * W + x] = 10.0f * (c == 1 ? y : x);
  const PixelBins bins = pixel_bins(planes, H, W);
  const int y = 8, x = 8;
  for (int c = 0; c < 3; ++c) {
    CAPTURE(c);
    auto level = [&](int o) {
      return bins.bins[(static_cast<size_t>(y) * W + x) * 27 + 3 + c * 8 + o] -
             (75 + (c * 8 + o) * 10);
    };
    CHECK(level(0) == (c == 1 ? 0 : 9));
    if (c == 1) CHECK(level(2) == 9);
  }
}

TEST_CASE("selective search: colour and texture similarities are the plain intersections") {
  // Four regions in a row (neighbours 0-1, 1-2, 2-3). Regions 0 and 1 have one pixel each and
  // nothing in common: similarity 0. Regions 2 and 3 have 10 pixels and share a fifth of their
  // colour counts (0.2) and a fiftieth of their texture counts (0.02). So (2, 3) merge first, by
  // colour and by texture. An intersection that started from 1 instead of 0 would add
  // 1 / (3 sa sb) (1 / (24 sa sb) for texture): 0.33 (0.042) for the one-pixel pair, which would
  // then merge first.
  constexpr int B = RegionFeatures::kBins, CB = RegionFeatures::kColourBins;
  RegionFeatures f;
  f.count = 4;
  f.histograms.assign(4 * B, 0.0f);
  auto bin = [&](int region, int k) -> float& { return f.histograms[region * B + k]; };
  bin(0, 0) = 3;  // colour: 3 counts per pixel
  bin(1, 1) = 3;
  bin(2, 2) = 24;
  bin(2, 3) = 6;
  bin(3, 3) = 6;
  bin(3, 4) = 24;
  bin(0, CB + 5) = 24;  // texture: 24 counts per pixel
  bin(1, CB + 6) = 24;
  bin(2, CB + 0) = 235.2f;
  bin(2, CB + 1) = 4.8f;
  bin(3, CB + 1) = 4.8f;
  bin(3, CB + 2) = 235.2f;
  f.size = {1, 1, 10, 10};
  f.y0 = {0, 0, 0, 0};
  f.y1 = {0, 0, 1, 1};
  f.x0 = {0, 1, 2, 7};
  f.x1 = {0, 1, 6, 11};
  f.hash = {1, 2, 4, 8};
  f.neighbours = {{0, 1}, {1, 2}, {2, 3}};
  for (unsigned sim : {unsigned(kSimColour), unsigned(kSimTexture)}) {
    CAPTURE(sim);
    const Hierarchy h = hierarchical_grouping(f, sim);
    REQUIRE(h.merges.size() == 3);
    CHECK(h.merges[0].a == 2);
    CHECK(h.merges[0].b == 3);
  }
}

TEST_CASE("infer: extraction size 0 means the network's input size") {
  ResNetOptions ro;
  ro.arch = "resnet18";
  ro.width = 4;
  ro.num_classes = 2;
  ro.seed = 3;
  ResNet net(ro);
  Image img = solid_image(48, 40, 90);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(i * 7 % 251);
  InferOptions o;
  o.size = 64;
  REQUIRE(o.extraction_size == 0);
  o.peaks.peak_threshold = -1e30;  // every peak is used, whatever the random network says
  o.peaks.class_threshold = -1e30;
  o.keep_diagnostics = true;
  o.search.max_side = 32;
  const ImageInference r = infer_image(net, img, "x", Device::cpu, o);
  REQUIRE(r.response.count() > 0);
  CHECK(r.diagnostics.size == 64);
}

TEST_CASE("infer: the JSON line says the image's size; CRM pictures show each class's own map") {
  ImageInference r;
  r.id = "img";
  r.width = 40;
  r.height = 30;
  r.class_scores = {1.0, -1.0};
  // CRMs [1, C = 2, h = 3, w = 5] (h differs from C): class 0's map is 0..14, class 1's 100+.
  std::vector<double> crm(2 * 3 * 5);
  for (size_t i = 0; i < crm.size(); ++i) crm[i] = i < 15 ? double(i) : 100.0 + i;
  r.response.crm = Tensor::from_vector(crm, {1, 2, 3, 5});
  r.response.prms = Tensor::zeros({0, 64, 64});
  const std::vector<std::string> names = {"cat", "dog"};

  const Json j = parse_json(inference_json(r, names, {}), "json");
  CHECK(j.at("width").as_int64() == 40);
  CHECK(j.at("height").as_int64() == 30);

  const std::string dir = fresh_temp_dir("crm-pictures").string();
  const Image image = solid_image(30, 40, 128);
  write_inference_pictures(dir, image, r, names);
  std::vector<float> map0(15);
  for (int i = 0; i < 15; ++i) map0[i] = static_cast<float>(i);
  const Image expected = draw_crm(image, map0.data(), 3, 5, "cat");
  const Image got = load_image(dir + "/img_crm_cat.png");
  CHECK(got.width == expected.width);
  CHECK(got.height == expected.height);
  CHECK(got.pixels == expected.pixels);
  CHECK_FALSE(std::filesystem::exists(dir + "/img_crm_dog.png"));  // not present
}

TEST_CASE("visualize: instance contours are drawn in the instance's own colour") {
  Image image = solid_image(64, 64, 0);
  Instance inst;
  inst.mask = Mask(64, 64);
  for (int y = 10; y < 50; ++y)
    for (int x = 10; x < 50; ++x) inst.mask.at(y, x) = 1;
  const Image out = draw_instances(image, {inst}, {"cat"});
  const std::array<uint8_t, 3> colour = instance_colour(0);
  REQUIRE(colour[0] != colour[1]);
  // The bottom edge, far from the label (at the top-left corner): the 2-pixel contour band is
  // rows 49 (inside) and 50 (outside).
  for (int y : {49, 50}) {
    CAPTURE(y);
    const uint8_t* p = out.at(y, 30);
    CHECK(p[0] == colour[0]);
    CHECK(p[1] == colour[1]);
    CHECK(p[2] == colour[2]);
  }
}

TEST_CASE("labels: a class without any object is -1 (a negative), not 0 (ignored)") {
  VocObject o;
  o.class_id = 2;
  VocObject d;
  d.class_id = 0;
  d.difficult = true;
  CHECK(voc_image_labels({o, d}, 4) == std::vector<int>{0, -1, 1, -1});
  CHECK(voc_image_labels({}, 3) == std::vector<int>{-1, -1, -1});
}

TEST_CASE("files: atomic writes leave no file descriptor open") {
  const std::string dir = fresh_temp_dir("fd-leak").string();
  write_file_atomic(dir + "/warm", "x");  // first-use allocations, if any
  const int before = open_descriptors();
  for (int i = 0; i < 20; ++i) write_file_atomic(dir + "/f" + std::to_string(i), "bytes");
  CHECK(open_descriptors() == before);
}

TEST_CASE("json: fields() and find() refuse what is not an object") {
  const Json a = Json::array({Json(1)}), n = Json(2.5);
  CHECK_THROWS_WITH_AS(a.fields(), doctest::Contains("expected an object"), Error);
  CHECK_THROWS_WITH_AS(n.find("x"), doctest::Contains("expected an object"), Error);
}

TEST_CASE("predictions: flush() makes every line written so far readable") {
  const std::string dir = fresh_temp_dir("pred-flush").string();
  PredictionWriter w(dir);
  w.add_score("2012_000001", "cat", 0.5);
  w.add_point("2012_000001", "cat", 0.5, 3, 4);
  w.flush();  // the writer is still open
  auto text = [&](const std::string& name) {
    std::ifstream in(dir + "/" + name);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  CHECK(text("classification.txt") == "2012_000001 cat 0.5\n");
  CHECK(text("points.txt").find("2012_000001 cat 0.5 3 4") == 0);
}

TEST_CASE("dist: a rank whose step throws an empty message still fails every rank") {
  const int R = 2;
  ThreadGroup group(R);
  std::vector<std::string> errors(R);
  std::vector<std::thread> threads;
  for (int r = 0; r < R; ++r)
    threads.emplace_back([&, r] {
      try {
        agree(group.comm(r), [&] {
          if (r == 0) throw std::runtime_error("");
        });
      } catch (const std::exception& e) {
        errors[r] = std::string("threw: ") + e.what();
      }
    });
  for (std::thread& t : threads) t.join();
  CHECK(errors[0].find("unknown error") != std::string::npos);
  CHECK(errors[1].find("rank(s) 0 failed") != std::string::npos);
}

TEST_CASE("train: as many ranks as images in a batch is allowed, one more is refused") {
  CHECK(rank_batch_problem(4, 4) == "");
  CHECK(rank_batch_problem(1, 1) == "");
  CHECK(rank_batch_problem(5, 4).find("started with 5 ranks but --batch is 4") == 0);
}

namespace {

// A communicator whose all-reduces fail, as a broken link would: for the gradient reducer's
// error path.
class FailingComm : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  std::string backend() const override { return "failing"; }
  void all_reduce_sum(Tensor&) override { throw Error("the wire is cut"); }
  void all_reduce(double*, size_t, ReduceOp) override { throw Error("the wire is cut"); }
  void broadcast(Tensor&, int) override {}
  void broadcast(std::string&, int) override {}
  void barrier() override {}
  std::unique_ptr<Comm> duplicate() override { return std::make_unique<FailingComm>(); }
  bool concurrent() const override { return true; }
};

std::vector<Tensor> small_params() {
  std::vector<Tensor> params = {Tensor::full({3}, 1.0), Tensor::full({2, 2}, 2.0)};
  for (Tensor& p : params) p.set_grad(Tensor::full(p.shape(), 0.5));
  return params;
}

}  // namespace

TEST_CASE("grad reducer: a failed all-reduce on the background thread fails finish()") {
  std::vector<Tensor> params = small_params();
  FailingComm comm;
  GradReducer reducer(comm, params);
  REQUIRE(reducer.overlapping());
  reducer.begin();
  for (const Tensor& p : params) reducer.on_grad_ready(p);
  CHECK_THROWS_WITH_AS(reducer.finish(), doctest::Contains("the wire is cut"), Error);
}

TEST_CASE("grad reducer: begin twice is refused; an unknown tensor is ignored; 1-byte buckets") {
  std::vector<Tensor> params = small_params();
  SingleComm single;
  {
    GradReducer reducer(single, params);
    reducer.begin();
    CHECK_THROWS_WITH_AS(reducer.begin(), doctest::Contains("previous step was not finished"),
                         Error);
    Tensor stranger = Tensor::full({5}, 3.0);
    stranger.set_grad(Tensor::full({5}, 1.0));
    reducer.on_grad_ready(stranger);  // not a parameter of this reducer: ignored
    reducer.on_grad_ready(params[1]);
    reducer.finish();
    CHECK(params[1].grad().to_vector() == std::vector<double>{0.5, 0.5, 0.5, 0.5});
  }
  GradReducerOptions tiny;
  tiny.bucket_bytes = 1;  // positive: every parameter in a bucket of its own
  CHECK(GradReducer(single, params, tiny).bucket_count() == 2);
  tiny.bucket_bytes = 0;
  CHECK_THROWS_WITH_AS(GradReducer(single, params, tiny),
                       doctest::Contains("bucket size must be positive"), Error);
}

TEST_CASE("grad reducer: two thread ranks reduce in the background (overlap), one rank does not") {
  ThreadGroup group(2);
  std::vector<int> overlapping(2, -1);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      std::vector<Tensor> params = small_params();
      GradReducer reducer(group.comm(r), params);
      overlapping[r] = reducer.overlapping();
      reducer.begin();
      for (const Tensor& p : params) reducer.on_grad_ready(p);
      reducer.finish();
    });
  for (std::thread& t : threads) t.join();
  CHECK(overlapping == std::vector<int>{1, 1});
  SingleComm single;
  std::vector<Tensor> params = small_params();
  CHECK_FALSE(GradReducer(single, params).overlapping());
}
