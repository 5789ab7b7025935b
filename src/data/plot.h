// A precision-recall plot drawn by hand into an RGB image and written as PNG with stb: axes with
// a 0.2 grid and tick labels, one curve per class (VOC colour map), a legend with each AP, and a
// title. Text uses stb_easy_font's quads, filled as rectangles.
#pragma once
#include <string>
#include <vector>

#include "data/metrics.h"

namespace prm {

struct PlotCurve {
  std::string label;  // "cat (0.731)"
  const ApCurve* curve = nullptr;
  int colour_index = 1;  // VOC colour map entry
};

void write_pr_plot(const std::string& path, const std::string& title,
                   const std::vector<PlotCurve>& curves);

// Text as stb_easy_font draws it: the filled rectangles {x0, y0, x1, y1} of string s at the
// origin, scaled by `scale` (glyphs ~6x7 pixels at scale 1), and its width. Shared by the plot
// and the PRM pictures (prm/visualize.cpp).
struct TextRect {
  int x0, y0, x1, y1;
};
std::vector<TextRect> text_rects(const std::string& s, int scale);
int text_width_px(const std::string& s, int scale);

}  // namespace prm
