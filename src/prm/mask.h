// A binary mask at image resolution: the common currency of segment proposals (ours or from
// files) and instance extraction. Row-major, one byte per pixel, 0 = off, 1 = on.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace prm {

struct Mask {
  int height = 0, width = 0;
  std::vector<uint8_t> data;  // height * width bytes, 0 or 1

  Mask() = default;
  Mask(int h, int w) : height(h), width(w), data(static_cast<size_t>(h) * w, 0) {}
  uint8_t& at(int y, int x) { return data[static_cast<size_t>(y) * width + x]; }
  uint8_t at(int y, int x) const { return data[static_cast<size_t>(y) * width + x]; }
  int64_t area() const {
    int64_t n = 0;
    for (uint8_t v : data) n += v != 0;
    return n;
  }
};

}  // namespace prm
