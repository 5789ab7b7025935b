#include "data/synth.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "data/labels.h"
#include "tensor/error.h"

namespace prm {

namespace fs = std::filesystem;

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kShapes = 5;                    // ellipse, rectangle, triangle, ring, cross
constexpr int kMinVisible = 24;               // objects with fewer visible pixels are dropped
constexpr double kDifficultFraction = 0.004;  // visible area / image area below this: difficult

struct Rgb {
  double r, g, b;
};

// A saturated colour of hue `hue` (in [0, 1)) and brightness v.
Rgb hue_colour(double hue, double v) {
  const double h = hue * 6.0, s = 0.85;
  const int i = static_cast<int>(h);
  const double f = h - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  Rgb rgb[6] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
  return rgb[i % 6];
}

// A distinct base colour per class: hues spread around the wheel, two brightness levels.
Rgb class_colour(int c) { return hue_colour(std::fmod(c * 0.381966, 1.0), c % 2 ? 0.95 : 0.7); }

struct Shape {
  int class_id = 0;
  double cx = 0, cy = 0, a = 1, b = 1, angle = 0;  // centre, half-axes, rotation
  double phase = 0, period = 6;                    // texture parameters
  int texture_kind = 0;  // speckled, stripes, checks, dots
  Rgb colour{1, 1, 1};

  // Object-local coordinates of pixel centre (x, y): u along the rotated major axis.
  void local(double x, double y, double& u, double& v) const {
    const double dx = x - cx, dy = y - cy, c = std::cos(angle), s = std::sin(angle);
    u = (c * dx + s * dy) / a;
    v = (-s * dx + c * dy) / b;
  }

  bool contains(double x, double y) const {
    double u, v;
    local(x, y, u, v);
    switch (class_id % kShapes) {
      case 0:
        return u * u + v * v <= 1;  // ellipse
      case 1:
        return std::abs(u) <= 0.85 && std::abs(v) <= 0.85;  // rectangle
      case 2:
        return v >= -0.9 && v <= 0.9 && std::abs(u) <= (v + 0.9) / 1.8;  // triangle
      case 3: {
        const double r = u * u + v * v;
        return r <= 1 && r >= 0.3;
      }  // ring
      default:
        return (std::abs(u) <= 0.95 && std::abs(v) <= 0.32) ||
               (std::abs(u) <= 0.32 && std::abs(v) <= 0.95);  // cross
    }
  }

  Rgb texture(double x, double y, std::mt19937_64& rng) const {
    const double dx = x - cx, dy = y - cy, c = std::cos(angle), s = std::sin(angle);
    const double u = c * dx + s * dy, v = -s * dx + c * dy;  // pixels, rotated
    double k = 1.0;
    switch (texture_kind) {
      case 0:
        k = 0.8 + 0.35 * std::uniform_real_distribution<double>(0, 1)(rng);
        break;  // speckled
      case 1:
        k = std::sin((u + phase) * 2 * kPi / period) > 0 ? 1.0 : 0.45;
        break;  // stripes
      case 2:
        k = (static_cast<int>(std::floor((u + phase) / period)) +
             static_cast<int>(std::floor((v + phase) / period))) %
                    2
                ? 1.0
                : 0.5;
        break;
      default: {  // dots
        const double fu = std::fmod(std::abs(u + phase), period) - period / 2;
        const double fv = std::fmod(std::abs(v + phase), period) - period / 2;
        k = fu * fu + fv * fv < period * period / 9 ? 0.35 : 1.0;
      }
    }
    return {colour.r * k, colour.g * k, colour.b * k};
  }
};

double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

void draw_background(Image& img, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> U(0, 1);
  const Rgb c0{U(rng), U(rng), U(rng)}, c1{U(rng), U(rng), U(rng)};
  const double gx = U(rng) - 0.5, gy = U(rng) - 0.5;
  double fx[3], fy[3], ph[3];  // smooth noise: a few random plane waves
  for (int i = 0; i < 3; ++i) {
    fx[i] = (U(rng) - 0.5) * 0.3;
    fy[i] = (U(rng) - 0.5) * 0.3;
    ph[i] = U(rng) * 2 * kPi;
  }
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      double t = clamp01(0.5 + gx * (x - img.width / 2.0) / img.width * 2 +
                         gy * (y - img.height / 2.0) / img.height * 2);
      double n = 0;
      for (int i = 0; i < 3; ++i) n += 0.06 * std::sin(fx[i] * x + fy[i] * y + ph[i]);
      uint8_t* p = img.at(y, x);
      p[0] = static_cast<uint8_t>(255 * clamp01(c0.r * (1 - t) + c1.r * t + n) * 0.85);
      p[1] = static_cast<uint8_t>(255 * clamp01(c0.g * (1 - t) + c1.g * t + n) * 0.85);
      p[2] = static_cast<uint8_t>(255 * clamp01(c0.b * (1 - t) + c1.b * t + n) * 0.85);
    }
  // Clutter: strokes and soft blobs in muted colours, drawn before the objects.
  const int clutter = 8 + static_cast<int>(U(rng) * 12);
  for (int k = 0; k < clutter; ++k) {
    const Rgb c{U(rng) * 0.7, U(rng) * 0.7, U(rng) * 0.7};
    const double x0 = U(rng) * img.width, y0 = U(rng) * img.height;
    if (k % 2) {  // a stroke
      const double ang = U(rng) * kPi, len = (0.1 + 0.3 * U(rng)) * img.width,
                   w = 0.8 + 1.5 * U(rng);
      for (double s = 0; s < len; s += 0.5)
        for (double o = -w; o <= w; o += 0.5) {
          const int x = static_cast<int>(x0 + s * std::cos(ang) - o * std::sin(ang));
          const int y = static_cast<int>(y0 + s * std::sin(ang) + o * std::cos(ang));
          if (x < 0 || y < 0 || x >= img.width || y >= img.height) continue;
          uint8_t* p = img.at(y, x);
          p[0] = static_cast<uint8_t>(255 * c.r);
          p[1] = static_cast<uint8_t>(255 * c.g);
          p[2] = static_cast<uint8_t>(255 * c.b);
        }
    } else {  // a blob blended into the background
      const double r = (0.02 + 0.06 * U(rng)) * img.width;
      for (int y = std::max(0, int(y0 - r)); y < std::min(img.height, int(y0 + r) + 1); ++y)
        for (int x = std::max(0, int(x0 - r)); x < std::min(img.width, int(x0 + r) + 1); ++x) {
          const double d = std::hypot(x - x0, y - y0) / r;
          if (d > 1) continue;
          const double wgt = 0.6 * (1 - d);
          uint8_t* p = img.at(y, x);
          p[0] = static_cast<uint8_t>(p[0] * (1 - wgt) + 255 * c.r * wgt);
          p[1] = static_cast<uint8_t>(p[1] * (1 - wgt) + 255 * c.g * wgt);
          p[2] = static_cast<uint8_t>(p[2] * (1 - wgt) + 255 * c.b * wgt);
        }
    }
  }
}

// Places 1-4 shapes: classes sometimes repeat; positions sometimes touch or overlap an earlier
// object or sit across the border. With SynthCue::shape, each shape's base colour and texture
// come from `side` instead of its class (`rng` draws the same numbers either way).
std::vector<Shape> place_shapes(int W, int H, int K, SynthCue cue, std::mt19937_64& rng,
                                std::mt19937_64& side) {
  std::uniform_real_distribution<double> U(0, 1);
  const int n = 1 + static_cast<int>(U(rng) * 4);
  const double S = std::min(W, H);
  std::vector<Shape> shapes;
  for (int i = 0; i < n; ++i) {
    Shape s;
    s.class_id = (i > 0 && U(rng) < 0.35) ? shapes[static_cast<int>(U(rng) * i)].class_id
                                          : static_cast<int>(U(rng) * K);
    s.a = S * (0.1 + 0.14 * U(rng));
    s.b = s.a * (0.6 + 0.4 * U(rng));
    s.angle = U(rng) * kPi;
    s.period = 4 + 4 * U(rng);
    s.phase = U(rng) * 10;
    Rgb base = class_colour(s.class_id);
    s.texture_kind = (s.class_id / kShapes) % 4;
    if (cue == SynthCue::shape) {
      const double hue = U(side), bright = U(side) < 0.5 ? 0.95 : 0.7;
      base = hue_colour(hue, bright);
      s.texture_kind = std::min(3, static_cast<int>(U(side) * 4));
    }
    const double j = 0.85 + 0.15 * U(rng);
    s.colour = {base.r * j, base.g * j, base.b * j};
    const double mode = U(rng);
    if (i > 0 && mode < 0.4) {  // touching (0.9-1.1 of the summed radii) or overlapping
      const Shape& o = shapes[static_cast<int>(U(rng) * i)];
      const double dist = (o.a + s.a) * (mode < 0.2 ? 0.95 + 0.15 * U(rng) : 0.45 + 0.3 * U(rng));
      const double dir = U(rng) * 2 * kPi;
      s.cx = o.cx + dist * std::cos(dir);
      s.cy = o.cy + dist * std::sin(dir);
    } else if (mode < 0.6) {  // across a border
      const bool vertical = U(rng) < 0.5;
      s.cx = vertical ? (U(rng) < 0.5 ? 0.0 : W) + (U(rng) - 0.5) * s.a : U(rng) * W;
      s.cy = vertical ? U(rng) * H : (U(rng) < 0.5 ? 0.0 : H) + (U(rng) - 0.5) * s.a;
    } else {
      s.cx = s.a + U(rng) * (W - 2 * s.a);
      s.cy = s.a + U(rng) * (H - 2 * s.a);
    }
    shapes.push_back(s);
  }
  return shapes;
}

// Marks as void (255) every pixel whose 3x3 neighbourhood holds a different label, as VOC's
// annotators drew a band along each object boundary.
void add_void_band(std::vector<uint8_t>& label, int W, int H) {
  std::vector<uint8_t> out = label;
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const uint8_t l = label[static_cast<size_t>(y) * W + x];
      bool edge = false;
      for (int dy = -1; dy <= 1 && !edge; ++dy)
        for (int dx = -1; dx <= 1 && !edge; ++dx) {
          const int yy = y + dy, xx = x + dx;
          if (yy < 0 || xx < 0 || yy >= H || xx >= W) continue;
          edge = label[static_cast<size_t>(yy) * W + xx] != l;
        }
      if (edge) out[static_cast<size_t>(y) * W + x] = 255;
    }
  label.swap(out);
}

}  // namespace

SynthCue parse_synth_cue(const std::string& name) {
  if (name == "all") return SynthCue::all;
  if (name == "shape") return SynthCue::shape;
  throw Error(str_cat("synth: unknown cue '", name, "' (all, shape)"));
}

std::string synth_image_id(int index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "2012_%06d", index + 1);
  return buf;
}

SynthImage synth_image(const SynthOptions& options, int index, bool draw_objects) {
  PRM_CHECK(options.size >= 32 && options.size <= 4096, "synth: --size must be in [32, 4096], got ",
            options.size);
  PRM_CHECK(options.classes >= 1 && options.classes <= 20,
            "synth: --classes must be in [1, 20], got ", options.classes);
  PRM_CHECK(options.cue == SynthCue::all || options.classes <= kShapes,
            "synth: --cue shape tells at most ", kShapes,
            " classes apart (one per shape), got --classes ", options.classes);
  const uint64_t image_seed =
      options.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(index) * 7919u + 1;
  std::mt19937_64 rng(image_seed);
  // Colours, textures and speckle of the objects under SynthCue::shape (unused with all).
  std::mt19937_64 side(image_seed ^ 0xD1B54A32D192ED03ull);
  std::mt19937_64& object_rng = options.cue == SynthCue::shape ? side : rng;
  std::uniform_real_distribution<double> U(0, 1);
  SynthImage out;
  out.id = synth_image_id(index);
  const int W = options.size,
            H = static_cast<int>(std::lround(options.size * (0.75 + 0.25 * U(rng))));
  out.rgb.width = W;
  out.rgb.height = H;
  out.rgb.channels = 3;
  out.rgb.pixels.assign(static_cast<size_t>(W) * H * 3, 0);
  draw_background(out.rgb, rng);
  std::vector<Shape> shapes = place_shapes(W, H, options.classes, options.cue, rng, side);
  if (!draw_objects) shapes.clear();

  // Paint in order: later shapes occlude earlier ones. owner: 0 background, k+1 shape k.
  const size_t N = static_cast<size_t>(W) * H;
  std::vector<uint8_t> owner(N, 0);
  std::vector<int64_t> full_area(shapes.size(), 0);
  std::vector<bool> cut(shapes.size(), false);
  for (size_t k = 0; k < shapes.size(); ++k) {
    const Shape& s = shapes[k];
    const double r = std::max(s.a, s.b) * 1.5;
    for (int y = static_cast<int>(s.cy - r); y <= static_cast<int>(s.cy + r); ++y)
      for (int x = static_cast<int>(s.cx - r); x <= static_cast<int>(s.cx + r); ++x) {
        if (!s.contains(x + 0.5, y + 0.5)) continue;
        if (x < 0 || y < 0 || x >= W || y >= H) {
          cut[k] = true;
          continue;
        }
        ++full_area[k];
        owner[static_cast<size_t>(y) * W + x] = static_cast<uint8_t>(k + 1);
        const Rgb c = s.texture(x + 0.5, y + 0.5, object_rng);
        uint8_t* p = out.rgb.at(y, x);
        p[0] = static_cast<uint8_t>(255 * clamp01(c.r));
        p[1] = static_cast<uint8_t>(255 * clamp01(c.g));
        p[2] = static_cast<uint8_t>(255 * clamp01(c.b));
      }
  }

  // Visible extent of each shape; shapes left too small become background pixels.
  std::vector<int64_t> visible(shapes.size(), 0);
  std::vector<int> x0(shapes.size(), W), y0(shapes.size(), H), x1(shapes.size(), -1),
      y1(shapes.size(), -1);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const int o = owner[static_cast<size_t>(y) * W + x];
      if (!o) continue;
      ++visible[o - 1];
      x0[o - 1] = std::min(x0[o - 1], x);
      y0[o - 1] = std::min(y0[o - 1], y);
      x1[o - 1] = std::max(x1[o - 1], x);
      y1[o - 1] = std::max(y1[o - 1], y);
    }
  std::vector<uint8_t> renumber(shapes.size() + 1, 0);
  VocAnnotation& ann = out.annotation;
  ann.folder = "VOC2012";
  ann.filename = out.id + ".jpg";
  ann.width = W;
  ann.height = H;
  ann.segmented = true;
  for (size_t k = 0; k < shapes.size(); ++k) {
    if (visible[k] < kMinVisible) continue;
    VocObject o;
    o.class_id = shapes[k].class_id;
    o.name = voc_class_names()[o.class_id];
    o.truncated = cut[k];
    o.occluded = visible[k] < full_area[k];
    o.difficult = visible[k] < kDifficultFraction * W * H;
    o.box = BoxF{double(x0[k] + 1), double(y0[k] + 1), double(x1[k] + 1), double(y1[k] + 1)};
    ann.objects.push_back(o);
    renumber[k + 1] = static_cast<uint8_t>(ann.objects.size());
  }
  std::vector<uint8_t> objects(N), classes(N);
  for (size_t i = 0; i < N; ++i) objects[i] = renumber[owner[i]];
  out.owners = objects;
  add_void_band(objects, W, H);
  for (size_t i = 0; i < N; ++i) {
    const uint8_t o = objects[i];
    classes[i] = o == 0 || o == 255 ? o : static_cast<uint8_t>(ann.objects[o - 1].class_id + 1);
  }
  const std::array<uint8_t, 768> pal = voc_palette();
  out.objects =
      IndexedImage{W, H, std::move(objects), std::vector<uint8_t>(pal.begin(), pal.end())};
  out.classes =
      IndexedImage{W, H, std::move(classes), std::vector<uint8_t>(pal.begin(), pal.end())};
  return out;
}

namespace {

void write_lines(const fs::path& path, const std::vector<std::string>& lines) {
  std::ofstream f(path);
  PRM_CHECK(f.good(), path.string(), ": cannot create file");
  for (const std::string& l : lines) f << l << "\n";
  PRM_CHECK(f.good(), path.string(), ": write failed");
}

}  // namespace

std::vector<VocAnnotation> synthesize_voc(const SynthOptions& options) {
  PRM_CHECK(!options.out.empty(), "synth: --out is required");
  PRM_CHECK(options.train >= 0 && options.val >= 0 && options.train + options.val > 0,
            "synth: need at least one image (--train ", options.train, " --val ", options.val, ")");
  const fs::path root(options.out);
  for (const char* sub : {"JPEGImages", "Annotations", "SegmentationObject", "SegmentationClass",
                          "ImageSets/Main", "ImageSets/Segmentation"}) {
    std::error_code ec;
    fs::create_directories(root / sub, ec);
    PRM_CHECK(!ec, (root / sub).string(), ": cannot create folder (", ec.message(), ")");
  }
  const int total = options.train + options.val;
  std::vector<VocAnnotation> anns(total);
  std::vector<std::string> ids(total);
  std::vector<std::string> errors(total);  // an exception must not leave an OpenMP region
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < total; ++i) {
    try {
      SynthImage im = synth_image(options, i);
      save_jpeg((root / "JPEGImages" / (im.id + ".jpg")).string(), im.rgb, 92);
      write_lines(root / "Annotations" / (im.id + ".xml"), {format_voc_annotation(im.annotation)});
      write_indexed_png((root / "SegmentationObject" / (im.id + ".png")).string(), im.objects);
      write_indexed_png((root / "SegmentationClass" / (im.id + ".png")).string(), im.classes);
      anns[i] = std::move(im.annotation);
      ids[i] = im.id;
    } catch (const std::exception& e) {
      errors[i] = e.what();
    }
  }
  for (const std::string& e : errors) PRM_CHECK(e.empty(), e);
  const std::vector<std::string> train(ids.begin(), ids.begin() + options.train);
  const std::vector<std::string> val(ids.begin() + options.train, ids.end());
  const std::pair<const char*, std::vector<std::string>> splits[] = {
      {"train", train}, {"val", val}, {"trainval", ids}};
  for (const auto& [name, list] : splits) {
    write_lines(root / "ImageSets/Main" / (std::string(name) + ".txt"), list);
    write_lines(root / "ImageSets/Segmentation" / (std::string(name) + ".txt"), list);
    const int first = std::string(name) == "val" ? options.train : 0;
    for (int c = 0; c < options.classes; ++c) {
      std::vector<std::string> lines;
      for (size_t j = 0; j < list.size(); ++j) {
        const int label = voc_image_labels(anns[first + j].objects, options.classes)[c];
        char buf[64];
        std::snprintf(buf, sizeof buf, "%s %2d", list[j].c_str(), label);
        lines.push_back(buf);
      }
      write_lines(root / "ImageSets/Main" / (voc_class_names()[c] + "_" + name + ".txt"), lines);
    }
  }
  return anns;
}

}  // namespace prm
