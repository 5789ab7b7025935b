#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/error.h"

namespace prm {

namespace {

// Source taps of output coordinate o for an in -> out resize: index lo, lo + 1 and weight of hi.
struct Tap {
  int lo, hi;
  float w;
};

std::vector<Tap> taps(int in, int out) {
  std::vector<Tap> t(out);
  const double scale = static_cast<double>(in) / out;
  for (int o = 0; o < out; ++o) {
    double s = (o + 0.5) * scale - 0.5;
    if (s < 0) s = 0;
    int lo = static_cast<int>(s);
    if (lo > in - 1) lo = in - 1;
    const int hi = std::min(lo + 1, in - 1);
    t[o] = {lo, hi, static_cast<float>(s - lo)};
  }
  return t;
}

}  // namespace

Image resize_bilinear(const Image& src, int out_w, int out_h) {
  PRM_CHECK(src.width > 0 && src.height > 0 && out_w > 0 && out_h > 0,
            "resize_bilinear: ", src.width, "x", src.height, " -> ", out_w, "x", out_h);
  const std::vector<Tap> tx = taps(src.width, out_w), ty = taps(src.height, out_h);
  Image dst;
  dst.width = out_w;
  dst.height = out_h;
  dst.channels = src.channels;
  dst.pixels.resize(static_cast<size_t>(out_w) * out_h * src.channels);
  for (int y = 0; y < out_h; ++y)
    for (int x = 0; x < out_w; ++x)
      for (int c = 0; c < src.channels; ++c) {
        const float a = src.at(ty[y].lo, tx[x].lo)[c], b = src.at(ty[y].lo, tx[x].hi)[c];
        const float d = src.at(ty[y].hi, tx[x].lo)[c], e = src.at(ty[y].hi, tx[x].hi)[c];
        const float top = a + (b - a) * tx[x].w, bot = d + (e - d) * tx[x].w;
        dst.at(y, x)[c] = static_cast<uint8_t>(std::lround(top + (bot - top) * ty[y].w));
      }
  return dst;
}

void resize_flip_normalize(const Image& src, int size, bool flip, float* out) {
  PRM_CHECK(src.channels == 3, "resize_flip_normalize: expected an RGB image, got ", src.channels,
            " channels");
  PRM_CHECK(src.width > 0 && src.height > 0 && size > 0, "resize_flip_normalize: ", src.width, "x",
            src.height, " -> ", size);
  const std::vector<Tap> tx = taps(src.width, size), ty = taps(src.height, size);
  float scale[3], shift[3];  // (v / 255 - mean) / std = v * scale + shift
  for (int c = 0; c < 3; ++c) {
    scale[c] = 1.0f / (255.0f * kImageNetStd[c]);
    shift[c] = -kImageNetMean[c] / kImageNetStd[c];
  }
  const size_t plane = static_cast<size_t>(size) * size;
  for (int y = 0; y < size; ++y) {
    const Tap& v = ty[y];
    for (int x = 0; x < size; ++x) {
      const Tap& u = tx[flip ? size - 1 - x : x];
      const uint8_t* p00 = src.at(v.lo, u.lo);
      const uint8_t* p01 = src.at(v.lo, u.hi);
      const uint8_t* p10 = src.at(v.hi, u.lo);
      const uint8_t* p11 = src.at(v.hi, u.hi);
      for (int c = 0; c < 3; ++c) {
        const float top = p00[c] + (p01[c] - p00[c]) * u.w;
        const float bot = p10[c] + (p11[c] - p10[c]) * u.w;
        out[c * plane + static_cast<size_t>(y) * size + x] =
            (top + (bot - top) * v.w) * scale[c] + shift[c];
      }
    }
  }
}

bool flip_for(uint64_t seed, int64_t epoch, int64_t sample) {
  // splitmix64 of the three values: independent of thread scheduling.
  uint64_t z = seed * 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(epoch) << 32) ^
               static_cast<uint64_t>(sample);
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (z >> 63) != 0;
}

}  // namespace prm
