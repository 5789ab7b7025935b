// Naive reference implementations and hand-built inputs shared by the suites: written from the
// definitions, independent of the code under test.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "data/image.h"

// Keys' cubic convolution kernel in its textbook form of the distance |s|, a = -0.75 (torch's).
inline double keys_cubic(double s) {
  const double a = -0.75, d = std::fabs(s);
  if (d <= 1) return (a + 2) * d * d * d - (a + 3) * d * d + 1;
  if (d < 2) return a * d * d * d - 5 * a * d * d + 8 * a * d - 4 * a;
  return 0;
}

// torch's bicubic resize (align_corners=False) of in [h, w] to [H, W]: 16 taps per output pixel,
// each weighted by its distance to the source coordinate, tap indices clamped to the border.
inline std::vector<double> naive_bicubic(const std::vector<float>& in, int h, int w, int H,
                                         int W) {
  std::vector<double> out(static_cast<size_t>(H) * W);
  for (int oy = 0; oy < H; ++oy)
    for (int ox = 0; ox < W; ++ox) {
      const double sy = (oy + 0.5) * h / H - 0.5, sx = (ox + 0.5) * w / W - 0.5;
      const int fy = static_cast<int>(std::floor(sy)), fx = static_cast<int>(std::floor(sx));
      double v = 0;
      for (int m = fy - 1; m <= fy + 2; ++m)
        for (int n = fx - 1; n <= fx + 2; ++n) {
          const int cy = std::min(std::max(m, 0), h - 1), cx = std::min(std::max(n, 0), w - 1);
          v += keys_cubic(sy - m) * keys_cubic(sx - n) * in[static_cast<size_t>(cy) * w + cx];
        }
      out[static_cast<size_t>(oy) * W + ox] = v;
    }
  return out;
}

// A black H x W RGB image.
inline prm::Image black_rgb(int H, int W) {
  prm::Image im;
  im.height = H;
  im.width = W;
  im.channels = 3;
  im.pixels.assign(static_cast<size_t>(H) * W * 3, 0);
  return im;
}

// A .npy file built byte by byte: magic, version major.0, little-endian header length (2 bytes
// for 1.0, 4 for 2.0 and 3.0), the header (a '\n' is appended), then the data.
inline std::string npy_bytes(int major, std::string header, const std::string& data) {
  header.push_back('\n');
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  const size_t n = header.size();
  const int len_bytes = major == 1 ? 2 : 4;
  for (int i = 0; i < len_bytes; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}
