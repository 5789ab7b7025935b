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

}  // namespace prm
