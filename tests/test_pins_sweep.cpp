// Tests for survivors of the mutation sweep (tools/mutate.py, docs/testing.md): each pins a rule
// that a mechanically planted one-line bug changed without any test noticing.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "data/image.h"
#include "data/metrics.h"
#include "data/plot.h"
#include "data/synth.h"
#include "dist/comm.h"
#include "dist/grad_reducer.h"
#include "helpers.h"
#include "layers/layers.h"
#include "layers/module.h"
#include "layers/resnet.h"
#include "layers/sgd.h"
#include "prm/instances.h"
#include "prm/selective_search.h"
#include "tensor/autograd.h"
#include "tensor/ops.h"

using namespace prm;

TEST_CASE("metrics: the pointwise box grown by the tolerance, at its four edges exactly") {
  // VOC box xmin 11, ymin 21, xmax 30, ymax 40 (1-based, inclusive): pixels x 10..29, y 20..39;
  // grown by a tolerance of 2: a hit for 8 <= x <= 31 and 18 <= y <= 41, 0-based.
  const std::vector<std::vector<GtBox>> boxes = {{{0, false, 11, 21, 30, 40}}};
  struct Case {
    double x, y;
    bool hit;
  };
  const Case cases[] = {{8, 25, true},    {31, 25, true},   {20, 18, true},   {20, 41, true},
                        {7.9, 25, false}, {31.1, 25, false}, {20, 17.9, false}, {20, 41.1, false},
                        {8, 18, true},    {31, 41, true}};
  for (const Case& c : cases) {
    CAPTURE(c.x);
    CAPTURE(c.y);
    const MeanMetric m = pointwise_map(boxes, {{0, 0, 0.5, c.x, c.y}}, 1, 2.0);
    CHECK(m.per_class[0].value == (c.hit ? 1.0 : 0.0));
  }
}

TEST_CASE("selective search: the colour and texture similarities are each what their bit asks") {
  // Three regions of 10 pixels in a row (neighbours 0-1 and 1-2). Colour: 0 and 1 share half of
  // their colour counts, 2 shares none with 1. Texture: 1 and 2 have the same texture
  // histogram, 0 shares none with 1. Similarities (docs/proposals.md): colour(0,1) = 0.5,
  // colour(1,2) = 0; texture(0,1) = 0, texture(1,2) = 1. So colour alone merges 0 and 1 first,
  // texture alone 1 and 2; a texture term added to the colour similarity would merge 1 and 2.
  constexpr int B = RegionFeatures::kBins, CB = RegionFeatures::kColourBins;
  RegionFeatures f;
  f.count = 3;
  f.histograms.assign(3 * B, 0.0f);
  auto bin = [&](int region, int k) -> float& { return f.histograms[region * B + k]; };
  bin(0, 0) = 15;  // colour: 3 counts per pixel, 30 in all
  bin(0, 1) = 15;
  bin(1, 1) = 15;
  bin(1, 2) = 15;
  bin(2, 3) = 30;
  bin(0, CB + 0) = 240;  // texture: 24 counts per pixel
  bin(1, CB + 5) = 240;
  bin(2, CB + 5) = 240;
  f.size = {10, 10, 10};
  f.y0 = {0, 0, 0};
  f.y1 = {1, 1, 1};
  f.x0 = {0, 5, 10};
  f.x1 = {4, 9, 14};
  f.hash = {1, 2, 4};
  f.neighbours = {{0, 1}, {1, 2}};
  const Hierarchy colour = hierarchical_grouping(f, kSimColour);
  REQUIRE(colour.merges.size() == 2);
  CHECK(colour.merges[0].a == 0);
  CHECK(colour.merges[0].b == 1);
  const Hierarchy texture = hierarchical_grouping(f, kSimTexture);
  REQUIRE(texture.merges.size() == 2);
  CHECK(texture.merges[0].a == 1);
  CHECK(texture.merges[0].b == 2);
}

TEST_CASE("plot: the precision-recall plot has its 0.2 grid, vertical and horizontal") {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("prm_test_plot_grid_" + std::to_string(getpid()) + ".png"))
                               .string();
  ApCurve curve;
  curve.recall = {0.5, 1.0};
  curve.precision = {1.0, 0.5};
  curve.positives = 2;
  curve.ap = 0.75;
  write_pr_plot(path, "grid", {{"a (0.750)", &curve, 1}});
  const Image img = load_image(path, 3);
  // The grid's grey (225, 225, 225): a column of the plot area holding it on most of its rows is
  // a vertical grid line, a row holding it on most of its columns a horizontal one.
  auto grey = [&](int x, int y) {
    const uint8_t* p = &img.pixels[(static_cast<size_t>(y) * img.width + x) * 3];
    return p[0] == 225 && p[1] == 225 && p[2] == 225;
  };
  int columns = 0, rows = 0;
  for (int x = 0; x < img.width; ++x) {
    int n = 0;
    for (int y = 0; y < img.height; ++y) n += grey(x, y);
    columns += n > img.height / 3;
  }
  for (int y = 0; y < img.height; ++y) {
    int n = 0;
    for (int x = 0; x < img.width; ++x) n += grey(x, y);
    rows += n > img.width / 3;
  }
  MESSAGE("grid columns " << columns << ", rows " << rows);
  CHECK(columns >= 4);  // 0.2 .. 0.8 at least (0 and 1 may lie under the axes)
  CHECK(rows >= 4);
}

TEST_CASE("conv2d_backward_input: its operands are checked, by name") {
  const Tensor w = Tensor::zeros({2, 3, 3, 3}, DType::f32);
  const Tensor g64 = Tensor::zeros({1, 2, 4, 4}, DType::f64);
  CHECK_THROWS_WITH_AS(conv2d_backward_input(g64, w, {1, 3, 6, 6}),
                       doctest::Contains("conv2d_backward_input"), Error);
}

TEST_CASE("plot: text rectangles are the glyphs' boxes, each inside the text's extent") {
  for (int scale : {1, 3}) {
    const std::string text = "Hello, AP 0.731 (cat)";
    const std::vector<TextRect> rects = text_rects(text, scale);
    REQUIRE(rects.size() > 20);
    const int width = text_width_px(text, scale);
    for (const TextRect& r : rects) {
      CAPTURE(r.x0);
      CAPTURE(r.y0);
      CAPTURE(r.x1);
      CAPTURE(r.y1);
      CHECK(r.x0 >= 0);
      CHECK(r.x0 < r.x1);  // the first vertex is the top-left corner, the third the bottom-right
      CHECK(r.x1 <= width + scale);
      CHECK(r.y0 >= 0);
      CHECK(r.y0 < r.y1);
      CHECK(r.y1 <= 12 * scale);
    }
  }
}

TEST_CASE("instances: equal scores keep the peaks' order; a proposal limit of 0 considers none") {
  // Two peaks of different classes whose PRMs pick disjoint proposals with equal scores: the
  // sort is stable, so the first peak's instance comes first.
  const int H = 10, W = 10;
  auto square = [&](int y0, int x0) {
    Mask m(H, W);
    for (int y = y0; y < y0 + 3; ++y)
      for (int x = x0; x < x0 + 3; ++x) m.at(y, x) = 1;
    return m;
  };
  std::vector<PeakPrm> prms(2);
  for (int k = 0; k < 2; ++k) {
    prms[k].peak.c = k;
    prms[k].height = H;
    prms[k].width = W;
    prms[k].prm.assign(H * W, 0.0f);
  }
  prms[0].prm[1 * W + 1] = 1.0f;  // inside the first square
  prms[1].prm[6 * W + 6] = 1.0f;  // inside the second
  const std::vector<Mask> proposals = {square(0, 0), square(5, 5)};
  const std::vector<float> crms(2 * 2 * 2, 1.0f);  // flat CRMs: no background pixel
  const std::vector<Instance> inst = extract_instances(prms, crms.data(), 2, 2, 2, proposals);
  REQUIRE(inst.size() == 2);
  CHECK(inst[0].score == inst[1].score);
  CHECK(inst[0].peak_index == 0);
  CHECK(inst[1].peak_index == 1);
  InstanceOptions none;
  none.proposal_limit = 0;
  CHECK(extract_instances(prms, crms.data(), 2, 2, 2, proposals, none).empty());
}

TEST_CASE("selective search: the down-left neighbour at the left border is a neighbour") {
  // Labels [[0, 1], [2, 0]]: regions 1 and 2 touch only diagonally, (row 0, col 1) to
  // (row 1, col 0), a down-left step that ends in column 0.
  Segmentation seg;
  seg.height = 2;
  seg.width = 2;
  seg.labels = {0, 1, 2, 0};
  seg.count = 3;
  const std::vector<float> planes(3 * 4, 128.0f);
  const RegionFeatures f = region_features(seg, pixel_bins(planes, 2, 2));
  const std::vector<std::pair<int, int>> expected = {{0, 1}, {0, 2}, {1, 2}};
  std::vector<std::pair<int, int>> got = f.neighbours;
  got.erase(std::unique(got.begin(), got.end()), got.end());
  CHECK(got == expected);
}

TEST_CASE("dist: thread-rank broadcast from any root, and agree on success and failure") {
  const int R = 3;
  ThreadGroup group(R);
  std::vector<std::vector<double>> got(R);
  std::vector<std::string> text(R);
  std::vector<int> threw(R, 0);
  std::vector<std::thread> threads;
  for (int r = 0; r < R; ++r)
    threads.emplace_back([&, r] {
      Comm& c = group.comm(r);
      Tensor t = Tensor::full({3}, r == 1 ? 5.0 : -1.0, DType::f64);
      c.broadcast(t, 1);
      got[r] = t.to_vector();
      text[r] = r == 2 ? "from two" : "";
      c.broadcast(text[r], 2);
      agree(c, [] {});  // nobody fails: nobody throws
      try {
        agree(c, [&] { PRM_CHECK(r != 0, "rank zero's own trouble"); });
      } catch (const CollectiveError& e) {
        threw[r] = 1;
        const std::string what = e.what();
        CHECK(what.find(r == 0 ? "rank zero's own trouble" : "rank(s) 0 failed") !=
              std::string::npos);
      }
    });
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < R; ++r) {
    CAPTURE(r);
    CHECK(got[r] == std::vector<double>{5, 5, 5});
    CHECK(text[r] == "from two");
    CHECK(threw[r] == 1);
  }
}

TEST_CASE("dist: the launcher's rank count is read from each launcher's variable") {
  const char* names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"};
  for (const char* n : names) unsetenv(n);
  CHECK(launched_ranks() == 1);
  int value = 2;
  for (const char* n : names) {
    CAPTURE(n);
    setenv(n, std::to_string(value).c_str(), 1);
    CHECK(launched_ranks() == value);
    unsetenv(n);
    ++value;
  }
  setenv("SLURM_NTASKS", "7", 1);  // the last of the list, alone
  CHECK(launched_ranks() == 7);
  unsetenv("SLURM_NTASKS");
}

namespace {
struct NamedTwice : Module {
  Tensor w = Tensor::zeros({1});
  explicit NamedTwice(const std::string& name) { register_parameter(name, &w); }
  Tensor forward(const Tensor& x) override { return x; }
};
}  // namespace

TEST_CASE("module: a parameter name with a dot or no name is refused") {
  CHECK_THROWS_WITH_AS(NamedTwice("a.b"), doctest::Contains("bad name 'a.b'"), Error);
  CHECK_THROWS_WITH_AS(NamedTwice(""), doctest::Contains("bad name ''"), Error);
  CHECK_NOTHROW(NamedTwice("weight"));
}

namespace {
struct NamedBuffer : Module {
  Tensor b = Tensor::zeros({1});
  explicit NamedBuffer(const std::string& name) { register_buffer(name, &b); }
  Tensor forward(const Tensor& x) override { return x; }
};
struct NamedChild : Module {
  explicit NamedChild(const std::string& name) {
    register_module(name, std::make_shared<NamedTwice>("w"));
  }
  Tensor forward(const Tensor& x) override { return x; }
};
// Counts the collectives a batch norm asks of its group.
struct CountingGroup : BatchNormGroup {
  int sums = 0;
  void sum(Tensor&) override { ++sums; }
  int64_t local_samples() const override { return 2; }
  int64_t group_samples() const override { return 2; }
};
}  // namespace

TEST_CASE("module: buffer and child names with a dot are refused too") {
  CHECK_THROWS_WITH_AS(NamedBuffer("running.mean"), doctest::Contains("bad name"), Error);
  CHECK_THROWS_WITH_AS(NamedChild("layer.1"), doctest::Contains("bad name"), Error);
  CHECK_NOTHROW(NamedBuffer("running_mean"));
  CHECK_NOTHROW(NamedChild("layer1"));
}

TEST_CASE("resnet: the block counts of torchvision's ResNet-18/34/50/101, by parameter names") {
  // torchvision: resnet18 [2, 2, 2, 2], resnet34 and resnet50 [3, 4, 6, 3], resnet101
  // [3, 4, 23, 3] blocks per layer; block b of layer l has parameters "layer<l>.<b>.conv1.weight".
  const std::map<std::string, std::vector<int>> blocks = {{"resnet18", {2, 2, 2, 2}},
                                                          {"resnet34", {3, 4, 6, 3}},
                                                          {"resnet50", {3, 4, 6, 3}},
                                                          {"resnet101", {3, 4, 23, 3}}};
  for (const auto& [arch, counts] : blocks) {
    CAPTURE(arch);
    ResNetOptions o;
    o.arch = arch;
    o.width = 2;
    const ResNet net(o);
    std::set<std::string> names;
    for (const auto& [name, t] : net.named_parameters()) names.insert(name);
    for (int l = 0; l < 4; ++l) {
      CAPTURE(l);
      const std::string layer = "layer" + std::to_string(l + 1) + ".";
      CHECK(names.count(layer + std::to_string(counts[l] - 1) + ".conv1.weight") == 1);
      CHECK(names.count(layer + std::to_string(counts[l]) + ".conv1.weight") == 0);
    }
  }
}

TEST_CASE("sgd: a momentum buffer past the last parameter is an error, not a read") {
  const Tensor p = Tensor::zeros({2}).set_requires_grad(true);
  SGDOptions o;
  o.momentum = 0.9;
  SGD sgd({p}, o);
  CHECK_NOTHROW(sgd.momentum_buffer(0, 0));
  CHECK_THROWS_WITH_AS(sgd.momentum_buffer(0, 1), doctest::Contains("no parameter 1 in group 0"),
                       Error);
  CHECK_THROWS_AS(sgd.momentum_buffer(1, 0), Error);
}

TEST_CASE("batch norm: eval mode never asks the group for a collective") {
  std::mt19937_64 rng(2);
  const Tensor x = Tensor::randn({2, 3, 4, 4}, rng, DType::f64).set_requires_grad(true);
  const Tensor w = Tensor::full({3}, 1.5, DType::f64), b = Tensor::full({3}, 0.5, DType::f64);
  const Tensor rm = Tensor::full({3}, 0.2, DType::f64), rv = Tensor::full({3}, 2.0, DType::f64);
  CountingGroup group;
  const Tensor with = batch_norm(x, w, b, rm, rv, /*training=*/false, 0.1, 1e-5, &group);
  const Tensor plain = batch_norm(x, w, b, rm, rv, /*training=*/false);
  CHECK(with.to_vector() == plain.to_vector());
  sum(with).backward();
  CHECK(group.sums == 0);
  CHECK(with.grad_fn()->name == "batch_norm");
}

TEST_CASE("names in the graph and in bench's JSON: conv engines, peak-stimulation rules") {
  CHECK(std::string(conv_engine_name(ConvEngine::native)) == "native");
  CHECK(std::string(conv_engine_name(ConvEngine::cudnn)) == "cudnn");
  CHECK(parse_conv_engine("native") == ConvEngine::native);  // cudnn parses only with cuDNN built
  const Tensor crm =
      Tensor::from_vector({1, 3, 2, 0, 5, 1, 2, 2, 0}, {1, 1, 3, 3}, DType::f64).set_requires_grad(true);
  CHECK(peak_stimulation(crm, PeakGrad::mean).grad_fn()->backward_name ==
        "peak_stimulation_backward_mean");
  CHECK(peak_stimulation(crm, PeakGrad::official).grad_fn()->backward_name ==
        "peak_stimulation_backward_official");
}

namespace {
struct Undefined : Module {
  Tensor w;  // never given a value
  Undefined() { register_parameter("w", &w); }
  Tensor forward(const Tensor& x) override { return x; }
};
}  // namespace

TEST_CASE("module: an undefined parameter is refused when registered") {
  CHECK_THROWS_WITH_AS(Undefined(), doctest::Contains("parameter 'w' is undefined"), Error);
}

TEST_CASE("dist: a GradReducer dropped in the middle of a step (an exception) stops its thread") {
  // begin() starts the reducing thread on a concurrent group; an error before finish() destroys
  // the reducer with the thread running: it must be stopped and joined, not left to terminate().
  ThreadGroup group(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      Tensor p = Tensor::zeros({4}).set_requires_grad(true);
      GradReducer reducer(group.comm(r), {p});
      reducer.begin();
    });
  for (std::thread& t : threads) t.join();
  CHECK(true);  // reached: no terminate()
}

TEST_CASE("ops refuse integer tensors saying what they expect: matmul, max_pool2d, mean") {
  const Tensor i2 = Tensor::zeros({2, 2}, DType::i64), i4 = Tensor::zeros({1, 1, 2, 2}, DType::i64);
  const Tensor f2 = Tensor::zeros({2, 2});
  // Each names itself (mean is built on sum, whose own check would name "sum").
  CHECK_THROWS_WITH_AS(matmul(i2, f2),
                       doctest::Contains("matmul: expected a float32 or float64 tensor"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(i4, 2, 2, 0),
                       doctest::Contains("max_pool2d: expected a float32 or float64 tensor"),
                       Error);
  CHECK_THROWS_WITH_AS(mean(i2, {0}),
                       doctest::Contains("mean: expected a float32 or float64 tensor"), Error);
  CHECK_THROWS_WITH_AS(mean(i2), doctest::Contains("mean: expected a float32 or float64 tensor"),
                       Error);
}

TEST_CASE("selective search: texture bins of a ramp: the steered derivatives' levels per pixel") {
  // Each channel a ramp of slope 10 (horizontal, then vertical). Away from the borders (further
  // than the blur's radius 4) the blurred ramp is the ramp: gx = 10, gy = 0 (or the reverse), so
  // the orientation along the ramp and the two at 45 degrees of it reach their maximum (level 9 of
  // 10) and the three facing away respond below 0 (level 0). Bins per pixel: 3 colour, then 24
  // texture = 75 + (channel * 8 + orientation) * 10 + level.
  const int H = 16, W = 16;
  for (bool horizontal : {true, false}) {
    CAPTURE(horizontal);
    std::vector<float> planes(3 * H * W);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) planes[(c * H + y) * W + x] = 10.0f * (horizontal ? x : y);
    const PixelBins bins = pixel_bins(planes, H, W);
    REQUIRE(bins.bins.size() == static_cast<size_t>(H) * W * 27);
    // Orientation o points at o * 45 degrees (x right, y down).
    const int along = horizontal ? 0 : 2;
    for (int y = 5; y <= 10; ++y)
      for (int x = 5; x <= 10; ++x)
        for (int c = 0; c < 3; ++c) {
          CAPTURE(y);
          CAPTURE(x);
          auto level = [&](int o) {
            const int bin = bins.bins[(static_cast<size_t>(y) * W + x) * 27 + 3 + c * 8 + o];
            const int l = bin - (75 + (c * 8 + o) * 10);
            CHECK(l >= 0);  // within the orientation's own 10 bins
            CHECK(l <= 9);
            return l;
          };
          CHECK(level(along) == 9);
          CHECK(level((along + 1) % 8) == 9);
          CHECK(level((along + 7) % 8) == 9);
          CHECK(level((along + 3) % 8) == 0);
          CHECK(level((along + 4) % 8) == 0);
          CHECK(level((along + 5) % 8) == 0);
        }
  }
}

// ---- survivors of the sweep's extension to 70 and more per area ----------------------------

TEST_CASE("selective search: the default keeps the first 200 of more distinct regions") {
  // Coloured noise, 96 x 96: far more than 200 distinct regions over the four scales, two colour
  // spaces and two similarity sets (docs/proposals.md: "the first max_proposals (default 200)").
  Image img;
  img.width = img.height = 96;
  img.channels = 3;
  img.pixels.resize(96 * 96 * 3);
  uint64_t state = 12345;
  for (uint8_t& v : img.pixels) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<uint8_t>(state >> 56);
  }
  ProposalOptions every;
  every.max_proposals = 0;
  const size_t all = selective_search(img, every).size();
  REQUIRE(all > 200);
  CHECK(selective_search(img).size() == 200);
}

TEST_CASE("synth: image ids count from 2012_000001, as VOC 2012's names look") {
  CHECK(synth_image_id(0) == "2012_000001");
  CHECK(synth_image_id(41) == "2012_000042");
  CHECK(synth_image_id(999998) == "2012_999999");
}

TEST_CASE("dist: thread-rank barrier and broadcast hold every rank, round after round") {
  // Each round: every rank adds to a shared counter, then a barrier; after it every rank must see
  // all R additions. Then a broadcast from a rotating root with a round-specific value; a rank
  // that ran ahead would overwrite the slot before a slower one read it. Ranks sleep a little,
  // unevenly, so that the orders vary.
  const int R = 4, rounds = 300;
  ThreadGroup group(R);
  std::atomic<int> counter{0};
  std::vector<int> bad_barrier(R, 0), bad_tensor(R, 0), bad_bytes(R, 0);
  std::vector<std::thread> threads;
  for (int r = 0; r < R; ++r)
    threads.emplace_back([&, r] {
      Comm& c = group.comm(r);
      for (int i = 0; i < rounds; ++i) {
        if ((i + r) % 3 == 0) std::this_thread::yield();
        counter.fetch_add(1);
        c.barrier();
        bad_barrier[r] += counter.load() < (i + 1) * R;
        c.barrier();  // nobody adds for the next round before everybody has looked
        const int root = i % R;
        Tensor t = Tensor::full({2}, r == root ? double(i) : -1.0, DType::f64);
        if (r % 2 == i % 2) std::this_thread::yield();
        c.broadcast(t, root);
        bad_tensor[r] += t.to_vector() != std::vector<double>{double(i), double(i)};
        std::string s = r == root ? std::to_string(i) : std::string();
        if (r == (i + 1) % R) std::this_thread::yield();
        c.broadcast(s, root);
        bad_bytes[r] += s != std::to_string(i);
      }
    });
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < R; ++r) {
    CAPTURE(r);
    CHECK(bad_barrier[r] == 0);
    CHECK(bad_tensor[r] == 0);
    CHECK(bad_bytes[r] == 0);
  }
}

TEST_CASE("dist: back-to-back thread-rank collectives never read the next one's value") {
  // Broadcasts and all-reduces one after the other with nothing between them: a rank that left a
  // broadcast before every rank had read its value would overwrite the shared slot (the next
  // broadcast's root, or its own all-reduce contribution) under a slower rank's eyes.
  const int R = 3, rounds = 400;
  ThreadGroup group(R);
  std::vector<int> bad(R, 0);
  std::vector<std::thread> threads;
  for (int r = 0; r < R; ++r)
    threads.emplace_back([&, r] {
      Comm& c = group.comm(r);
      for (int i = 0; i < rounds; ++i) {
        for (int k = 0; k < 2; ++k) {  // tensor after tensor: both use the shared slots
          const int root = (i + k) % R;
          Tensor t = Tensor::full({1}, r == root ? double(10 * i + k) : -1.0, DType::f64);
          c.broadcast(t, root);
          bad[r] += t.to_vector()[0] != double(10 * i + k);
        }
        for (int k = 0; k < 2; ++k) {  // string after string: both use the shared bytes
          const int root = (i + k + 1) % R;
          std::string s = r == root ? std::to_string(10 * i + k) : std::string("?");
          c.broadcast(s, root);
          bad[r] += s != std::to_string(10 * i + k);
        }
        Tensor t = Tensor::full({1}, r == i % R ? 7.0 : -1.0, DType::f64);
        c.broadcast(t, i % R);  // then an all-reduce, whose rank 0 writes slot 0
        bad[r] += t.to_vector()[0] != 7.0;
        double v[1] = {double(r + i)};
        c.all_reduce(v, 1, ReduceOp::sum);
        bad[r] += v[0] != double(R * i + R * (R - 1) / 2);
      }
    });
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < R; ++r) CHECK(bad[r] == 0);
}

TEST_CASE("dist: a thread rank's second and third duplicate() are groups of their own") {
  const int R = 2;
  ThreadGroup group(R);
  std::vector<std::vector<double>> sums(R);
  std::vector<std::thread> threads;
  for (int r = 0; r < R; ++r)
    threads.emplace_back([&, r] {
      Comm& c = group.comm(r);
      std::unique_ptr<Comm> a = c.duplicate(), b = c.duplicate(), d = c.duplicate();
      double x[1] = {1.0 + r}, y[1] = {10.0 * (1 + r)}, z[1] = {100.0 * (1 + r)};
      a->all_reduce(x, 1, ReduceOp::sum);
      b->all_reduce(y, 1, ReduceOp::sum);
      d->all_reduce(z, 1, ReduceOp::sum);
      sums[r] = {x[0], y[0], z[0], double(a->size() + b->size() + d->size())};
    });
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < R; ++r) CHECK(sums[r] == std::vector<double>{3, 30, 300, 6});
}

TEST_CASE("layers: BatchNorm2d refuses 0 channels; a one-class ResNet is a valid network") {
  CHECK_THROWS_WITH_AS(BatchNorm2d(0), doctest::Contains("bad channel count"), Error);
  ResNetOptions o;
  o.arch = "resnet18";
  o.width = 4;
  o.num_classes = 1;
  ResNet net(o);
  const Tensor crm = net.forward(Tensor::full({2, 3, 64, 64}, 0.5));  // stride 32
  CHECK(crm.shape() == Shape{2, 1, 2, 2});
}

TEST_CASE("module: a child added after eval() is in eval mode, as its parent") {
  Sequential seq;
  seq.eval();
  seq.push_back(std::make_shared<BatchNorm2d>(2));
  CHECK_FALSE(seq[0]->is_training());
  // and so it normalises with its running statistics (0 and 1): the output is x / sqrt(1 + eps)
  const Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 2, 2});
  const std::vector<double> y = seq.forward(x).to_vector();
  for (int i = 0; i < 8; ++i)
    CHECK(y[i] == doctest::Approx((i + 1) / std::sqrt(1 + 1e-5)).epsilon(1e-6));
}

TEST_CASE("conv2d_backward_bias: an empty batch or empty maps give a zero bias gradient") {
  for (const Shape& s : {Shape{0, 3, 4, 4}, Shape{2, 3, 0, 5}}) {
    CAPTURE(s.size());
    CHECK(conv2d_backward_bias(Tensor::full(s, 1.0, DType::f64)).to_vector() ==
          std::vector<double>{0, 0, 0});
  }
}
