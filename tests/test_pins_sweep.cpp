// Tests for survivors of the mutation sweep (tools/mutate.py, docs/testing.md): each pins a rule
// that a mechanically planted one-line bug changed without any test noticing.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/metrics.h"
#include "data/plot.h"
#include "helpers.h"
#include "prm/selective_search.h"
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
