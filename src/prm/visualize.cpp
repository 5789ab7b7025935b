#include "prm/visualize.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "data/files.h"
#include "data/plot.h"
#include "prm/image_ops.h"
#include "tensor/error.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb_image_write.h>  // declarations only; the implementation lives in data/image.cpp
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace prm {

namespace {

constexpr float kFillAlpha = 0.5f;  // weight of the instance colour inside its mask
constexpr float kHeatAlpha = 0.5f;  // weight of the heat colour over the image

Image to_rgb(const Image& image, const char* op) {
  PRM_CHECK(image.width > 0 && image.height > 0, op, ": empty image (", image.width, "x",
            image.height, ")");
  PRM_CHECK(image.channels == 1 || image.channels == 3 || image.channels == 4, op,
            ": image has ", image.channels, " channels, expected 1, 3 or 4");
  PRM_CHECK(image.pixels.size() == static_cast<size_t>(image.width) * image.height * image.channels,
            op, ": image holds ", image.pixels.size(), " bytes for ", image.width, "x",
            image.height, "x", image.channels);
  Image out;
  out.width = image.width;
  out.height = image.height;
  out.channels = 3;
  out.pixels.resize(static_cast<size_t>(image.width) * image.height * 3);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const uint8_t* s = image.at(y, x);
      uint8_t* d = out.at(y, x);
      for (int k = 0; k < 3; ++k) d[k] = image.channels == 1 ? s[0] : s[k];
    }
  }
  return out;
}

void blend(uint8_t* pixel, const std::array<uint8_t, 3>& colour, float alpha) {
  for (int k = 0; k < 3; ++k) {
    pixel[k] = static_cast<uint8_t>(std::lround((1 - alpha) * pixel[k] + alpha * colour[k]));
  }
}

void fill_rect(Image& img, int x0, int y0, int x1, int y1, const std::array<uint8_t, 3>& rgb) {
  x0 = std::max(x0, 0);
  y0 = std::max(y0, 0);
  x1 = std::min(x1, img.width);
  y1 = std::min(y1, img.height);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      uint8_t* p = img.at(y, x);
      p[0] = rgb[0];
      p[1] = rgb[1];
      p[2] = rgb[2];
    }
  }
}

// Text scale: 2 on images at least 256 pixels wide, else 1 (stb_easy_font glyphs are ~6x7).
int text_scale(const Image& img) { return img.width >= 256 ? 2 : 1; }

int text_width(const std::string& s, int scale) {
  return text_width_px(s, scale);
}

void draw_text(Image& img, int x, int y, const std::string& s, const std::array<uint8_t, 3>& rgb,
               int scale) {
  for (const TextRect& r : text_rects(s, scale))
    fill_rect(img, x + r.x0, y + r.y0, x + r.x1, y + r.y1, rgb);
}

// Text on a filled box of `box` colour, in black or white, whichever reads better; kept inside
// the image: a label wider than the image is drawn smaller, and cut at the right if it still
// does not fit at the smallest size.
void draw_label(Image& img, int x, int y, std::string s, const std::array<uint8_t, 3>& box) {
  int scale = text_scale(img);
  while (scale > 1 && text_width(s, scale) + 2 * scale > img.width) --scale;
  while (s.size() > 1 && text_width(s, scale) + 2 * scale > img.width) s.pop_back();
  const int pad = scale;
  const int w = text_width(s, scale) + 2 * pad, h = 9 * scale + 2 * pad;
  x = std::clamp(x, 0, std::max(0, img.width - w));
  y = std::clamp(y, 0, std::max(0, img.height - h));
  fill_rect(img, x, y, x + w, y + h, box);
  const double luma = 0.299 * box[0] + 0.587 * box[1] + 0.114 * box[2];
  const std::array<uint8_t, 3> ink = luma > 128 ? std::array<uint8_t, 3>{0, 0, 0}
                                                : std::array<uint8_t, 3>{255, 255, 255};
  draw_text(img, x + pad, y + pad + scale, s, ink, scale);
}

// Jet-like colour map on [0, 1]: dark blue, blue, cyan, yellow, red, dark red.
std::array<uint8_t, 3> jet(float v) {
  v = std::clamp(v, 0.0f, 1.0f);
  auto channel = [v](float centre) {
    const float c = std::clamp(1.5f - std::fabs(4 * v - centre), 0.0f, 1.0f);
    return static_cast<uint8_t>(std::lround(255 * c));
  };
  return {channel(3), channel(2), channel(1)};
}

}  // namespace

std::array<uint8_t, 3> instance_colour(int i) {
  static const std::array<uint8_t, 768> pal = voc_palette();
  const int entry = 1 + ((i % 20) + 20) % 20;
  return {pal[3 * entry], pal[3 * entry + 1], pal[3 * entry + 2]};
}

Image draw_instances(const Image& image, const std::vector<Instance>& instances,
                     const std::vector<std::string>& class_names) {
  Image out = to_rgb(image, "draw_instances");
  const int H = out.height, W = out.width;
  for (size_t i = 0; i < instances.size(); ++i) {
    const Mask& m = instances[i].mask;
    PRM_CHECK(m.height == H && m.width == W && m.data.size() == static_cast<size_t>(H) * W,
              "draw_instances: instance ", i, " has a ", m.height, "x", m.width,
              " mask, the image is ", H, "x", W);
  }
  std::vector<size_t> order(instances.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return instances[a].score < instances[b].score;
  });
  // Masks and contours, the best instance last (on top); then every label above all masks.
  for (size_t i : order) {
    const std::array<uint8_t, 3> colour = instance_colour(static_cast<int>(i));
    const Mask& m = instances[i].mask;
    const Mask contour = morphological_gradient(m, 3);  // a 2-pixel band across the edge
    for (int y = 0; y < H; ++y) {
      for (int x = 0; x < W; ++x) {
        if (contour.at(y, x)) {
          uint8_t* p = out.at(y, x);
          p[0] = colour[0];
          p[1] = colour[1];
          p[2] = colour[2];
        } else if (m.at(y, x)) {
          blend(out.at(y, x), colour, kFillAlpha);
        }
      }
    }
  }
  for (size_t i : order) {
    const Instance& inst = instances[i];
    int top = H, left = W;  // the label goes at the top-left corner of the mask's bounding box
    for (int y = 0; y < H && top == H; ++y) {
      for (int x = 0; x < W; ++x) {
        if (inst.mask.at(y, x)) {
          top = y;
          break;
        }
      }
    }
    for (int x = 0; x < W && left == W; ++x) {
      for (int y = 0; y < H; ++y) {
        if (inst.mask.at(y, x)) {
          left = x;
          break;
        }
      }
    }
    if (top == H) continue;  // empty mask: nothing to label
    const int64_t c = inst.peak.c;
    const bool named = c >= 0 && c < static_cast<int64_t>(class_names.size());
    char score[32];
    std::snprintf(score, sizeof score, " %.3g", inst.score);
    const std::string name = named ? class_names[c] : str_cat("c", c);
    draw_label(out, left, top, name + score, instance_colour(static_cast<int>(i)));
  }
  return out;
}

Image draw_heatmap(const Image& image, const float* map, int height, int width,
                   const std::string& label) {
  Image out = to_rgb(image, "draw_heatmap");
  PRM_CHECK(map != nullptr, "draw_heatmap: no map given");
  PRM_CHECK(height == out.height && width == out.width, "draw_heatmap: map is ", height, "x",
            width, ", the image is ", out.height, "x", out.width);
  const size_t n = static_cast<size_t>(height) * width;
  float peak = 0;
  for (size_t i = 0; i < n; ++i) {
    if (std::isfinite(map[i])) peak = std::max(peak, map[i]);
  }
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const float v = map[static_cast<size_t>(y) * width + x];
      const float t = peak > 0 && std::isfinite(v) ? v / peak : 0.0f;
      blend(out.at(y, x), jet(t), kHeatAlpha);
    }
  }
  if (!label.empty()) draw_label(out, 0, 0, label, {0, 0, 0});
  return out;
}

Image draw_crm(const Image& image, const float* crm, int h, int w, const std::string& label) {
  PRM_CHECK(image.width > 0 && image.height > 0, "draw_crm: empty image");
  PRM_CHECK(crm != nullptr && h > 0 && w > 0, "draw_crm: no CRM given (", h, "x", w, ")");
  const std::vector<float> up = bicubic_upsample(crm, h, w, image.height, image.width);
  const float peak = *std::max_element(crm, crm + static_cast<size_t>(h) * w);
  char text[48];
  std::snprintf(text, sizeof text, " (max %.3g)", peak);
  return draw_heatmap(image, up.data(), image.height, image.width, label + text);
}

void save_png_atomic(const std::string& path, const Image& image) {
  PRM_CHECK(image.width > 0 && image.height > 0 && image.channels >= 1 && image.channels <= 4 &&
                image.pixels.size() ==
                    static_cast<size_t>(image.width) * image.height * image.channels,
            path, ": cannot write a ", image.width, "x", image.height, "x", image.channels,
            " image holding ", image.pixels.size(), " bytes");
  std::string bytes;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
  };
  PRM_CHECK(stbi_write_png_to_func(append, &bytes, image.width, image.height, image.channels,
                                   image.pixels.data(), image.width * image.channels) != 0,
            path, ": cannot encode PNG");
  write_file_atomic(path, bytes);
}

}  // namespace prm
