#include "data/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/image.h"
#include "tensor/error.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb_easy_font.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace prm {

namespace {

constexpr int kW = 760, kH = 520;
constexpr int kLeft = 70, kRight = 560, kTop = 50, kBottom = 460;  // plot area

struct Canvas {
  Image img;
  Canvas() {
    img.width = kW;
    img.height = kH;
    img.channels = 3;
    img.pixels.assign(static_cast<size_t>(kW) * kH * 3, 255);
  }
  void dot(int x, int y, const uint8_t* rgb) {
    if (x < 0 || y < 0 || x >= kW || y >= kH) return;
    uint8_t* p = img.at(y, x);
    p[0] = rgb[0];
    p[1] = rgb[1];
    p[2] = rgb[2];
  }
  void rect(int x0, int y0, int x1, int y1, const uint8_t* rgb) {
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) dot(x, y, rgb);
  }
  // A line `thick` pixels wide, by stepping along its longer axis.
  void line(double x0, double y0, double x1, double y1, const uint8_t* rgb, int thick = 1) {
    const int steps = static_cast<int>(std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
    for (int i = 0; i <= steps; ++i) {
      const double t = static_cast<double>(i) / steps;
      const int x = static_cast<int>(std::lround(x0 + (x1 - x0) * t));
      const int y = static_cast<int>(std::lround(y0 + (y1 - y0) * t));
      for (int dy = 0; dy < thick; ++dy)
        for (int dx = 0; dx < thick; ++dx) dot(x + dx - thick / 2, y + dy - thick / 2, rgb);
    }
  }
  void text(int x, int y, const std::string& s, const uint8_t* rgb, int scale = 1) {
    for (const TextRect& r : text_rects(s, scale)) rect(x + r.x0, y + r.y0, x + r.x1, y + r.y1, rgb);
  }
  int text_width(const std::string& s) { return text_width_px(s, 1); }
};

double px(double recall) { return kLeft + recall * (kRight - kLeft); }
double py(double precision) { return kBottom - precision * (kBottom - kTop); }

}  // namespace

// stb_easy_font emits axis-aligned quads (4 vertices of 16 bytes: x, y, z floats + colour).
std::vector<TextRect> text_rects(const std::string& s, int scale) {
  alignas(float) static thread_local char buffer[99999];  // stb stores floats into it
  const int quads =
      stb_easy_font_print(0, 0, const_cast<char*>(s.c_str()), nullptr, buffer, sizeof buffer);
  std::vector<TextRect> rects;
  for (int q = 0; q < quads; ++q) {
    const float* v0 = reinterpret_cast<const float*>(buffer + q * 64);
    const float* v2 = reinterpret_cast<const float*>(buffer + q * 64 + 32);
    rects.push_back({static_cast<int>(v0[0] * scale), static_cast<int>(v0[1] * scale),
                     static_cast<int>(v2[0] * scale), static_cast<int>(v2[1] * scale)});
  }
  return rects;
}

int text_width_px(const std::string& s, int scale) {
  return stb_easy_font_width(const_cast<char*>(s.c_str())) * scale;
}

void write_pr_plot(const std::string& path, const std::string& title,
                   const std::vector<PlotCurve>& curves) {
  Canvas cv;
  const uint8_t black[3] = {0, 0, 0}, grey[3] = {225, 225, 225};
  for (int i = 0; i <= 5; ++i) {
    const double v = i / 5.0;
    cv.line(px(v), kTop, px(v), kBottom, grey);
    cv.line(kLeft, py(v), kRight, py(v), grey);
    char buf[8];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    cv.text(static_cast<int>(px(v)) - 8, kBottom + 8, buf, black);
    cv.text(kLeft - 28, static_cast<int>(py(v)) - 4, buf, black);
  }
  cv.line(kLeft, kTop, kLeft, kBottom, black, 2);
  cv.line(kLeft, kBottom, kRight, kBottom, black, 2);
  cv.text((kLeft + kRight) / 2 - 30, kBottom + 28, "recall", black, 2);
  cv.text(8, kTop - 30, "precision", black, 2);
  cv.text(kLeft + 120, 12, title, black, 2);

  const std::array<uint8_t, 768> pal = voc_palette();
  int legend_y = kTop;
  for (const PlotCurve& c : curves) {
    PRM_CHECK(c.curve != nullptr, "write_pr_plot: curve '", c.label, "' is null");
    const uint8_t* colour = &pal[3 * (c.colour_index & 255)];
    const ApCurve& k = *c.curve;
    // Interpolated precision (running maximum from the right), drawn as a step curve from
    // recall 0, which is what the AP integrates.
    std::vector<double> prec(k.precision);
    for (size_t i = prec.size(); i-- > 1;) prec[i - 1] = std::max(prec[i - 1], prec[i]);
    double r0 = 0, p0 = prec.empty() ? 0 : prec[0];
    for (size_t i = 0; i < prec.size(); ++i) {
      cv.line(px(r0), py(p0), px(k.recall[i]), py(p0), colour, 2);
      cv.line(px(k.recall[i]), py(p0), px(k.recall[i]), py(prec[i]), colour, 2);
      r0 = k.recall[i];
      p0 = prec[i];
    }
    if (legend_y < kH - 20) {
      cv.rect(kRight + 20, legend_y + 1, kRight + 34, legend_y + 8, colour);
      cv.text(kRight + 40, legend_y, c.label, black);
      legend_y += 16;
    }
  }
  save_png(path, cv.img);
}

}  // namespace prm
