// Image operations on float maps and binary masks (image_ops.h).
#include "prm/image_ops.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"

namespace prm {

namespace {

// Keys' cubic convolution kernel with a = -0.75 (torch's choice), split at |x| = 1.
constexpr double kCubicA = -0.75;
double cubic_near(double x) { return ((kCubicA + 2) * x - (kCubicA + 3)) * x * x + 1; }  // |x|<=1
double cubic_far(double x) {  // 1 < |x| < 2
  return ((kCubicA * x - 5 * kCubicA) * x + 8 * kCubicA) * x - 4 * kCubicA;
}

struct CubicTaps {
  int index[4];
  double weight[4];
};

// The 4 source taps of output index `dst` when `in` samples are resized to `out`.
CubicTaps cubic_taps(int dst, int in, int out) {
  const double scale = static_cast<double>(in) / out;
  const double src = (dst + 0.5) * scale - 0.5;
  const double base = std::floor(src);
  const double t = src - base;
  CubicTaps taps;
  taps.weight[0] = cubic_far(t + 1);
  taps.weight[1] = cubic_near(t);
  taps.weight[2] = cubic_near(1 - t);
  taps.weight[3] = cubic_far(2 - t);
  for (int k = 0; k < 4; ++k) {
    taps.index[k] = std::clamp(static_cast<int>(base) - 1 + k, 0, in - 1);
  }
  return taps;
}

// Inclusive bounds of the on pixels of a mask; false when it has none.
bool bounding_box(const Mask& m, int* y0, int* y1, int* x0, int* x1) {
  *y0 = m.height;
  *y1 = -1;
  *x0 = m.width;
  *x1 = -1;
  for (int y = 0; y < m.height; ++y) {
    for (int x = 0; x < m.width; ++x) {
      if (!m.at(y, x)) continue;
      *y0 = std::min(*y0, y);
      *y1 = std::max(*y1, y);
      *x0 = std::min(*x0, x);
      *x1 = std::max(*x1, x);
    }
  }
  return *y1 >= 0;
}

// The morphological gradient of `mask` with a (2r+1)-square, calling emit(y, x) for each pixel on
// it, column by column.
template <typename Emit>
void gradient_pixels(const Mask& mask, int r, int y0, int y1, int x0, int x1, Emit emit) {
  // On 0/1 values a square dilation is "some on pixel in the window" and the erosion "every
  // in-image pixel of the window on", so both come from one count of on pixels per window, row
  // pass then column pass (separable). Only the bounding box (y0..y1, x0..x1) of the on pixels
  // grown by r can be on the contour.
  const int H = mask.height, W = mask.width;
  const int ry0 = std::max(0, y0 - r), ry1 = std::min(H - 1, y1 + r);
  const int rx0 = std::max(0, x0 - r), rx1 = std::min(W - 1, x1 + r);
  const int RH = ry1 - ry0 + 1, RW = rx1 - rx0 + 1;
  // Row pass: dilated / eroded along x, for the rows and columns of the region.
  std::vector<uint8_t> row_dil(static_cast<size_t>(RH) * RW), row_ero(row_dil.size());
  std::vector<int> prefix(RW + 1);
  for (int y = ry0; y <= ry1; ++y) {
    for (int x = rx0; x <= rx1; ++x) prefix[x - rx0 + 1] = prefix[x - rx0] + (mask.at(y, x) != 0);
    for (int x = rx0; x <= rx1; ++x) {
      const int lo = std::max(0, x - r), hi = std::min(W - 1, x + r);  // in-image window
      const int on = prefix[std::min(hi, rx1) - rx0 + 1] - prefix[std::max(lo, rx0) - rx0];
      const size_t i = static_cast<size_t>(y - ry0) * RW + (x - rx0);
      row_dil[i] = on > 0;
      row_ero[i] = on == hi - lo + 1;  // pixels outside the region are off
    }
  }
  // Column pass over the row results; rows outside the region hold 0 for both.
  std::vector<int> dil_prefix(RH + 1), ero_prefix(RH + 1);
  for (int x = rx0; x <= rx1; ++x) {
    for (int y = ry0; y <= ry1; ++y) {
      const size_t i = static_cast<size_t>(y - ry0) * RW + (x - rx0);
      dil_prefix[y - ry0 + 1] = dil_prefix[y - ry0] + row_dil[i];
      ero_prefix[y - ry0 + 1] = ero_prefix[y - ry0] + row_ero[i];
    }
    for (int y = ry0; y <= ry1; ++y) {
      const int lo = std::max(0, y - r), hi = std::min(H - 1, y + r);
      const int a = std::max(lo, ry0) - ry0, b = std::min(hi, ry1) - ry0 + 1;
      const bool dilated = dil_prefix[b] - dil_prefix[a] > 0;
      const bool eroded = ero_prefix[b] - ero_prefix[a] == hi - lo + 1;
      if (dilated && !eroded) emit(y, x);
    }
  }
}

}  // namespace

void bicubic_upsample(float* out, const float* in, int h, int w, int H, int W) {
  PRM_CHECK(h > 0 && w > 0 && H > 0 && W > 0, "bicubic_upsample: sizes must be positive, got ",
            h, "x", w, " -> ", H, "x", W);
  // Along x for every input row, then along y: the same sum as torch's 4x4 taps per output.
  std::vector<double> rows(static_cast<size_t>(h) * W);
  for (int x = 0; x < W; ++x) {
    const CubicTaps t = cubic_taps(x, w, W);
    for (int y = 0; y < h; ++y) {
      const float* r = in + static_cast<size_t>(y) * w;
      double v = 0;
      for (int k = 0; k < 4; ++k) v += t.weight[k] * r[t.index[k]];
      rows[static_cast<size_t>(y) * W + x] = v;
    }
  }
  for (int y = 0; y < H; ++y) {
    const CubicTaps t = cubic_taps(y, h, H);
    for (int x = 0; x < W; ++x) {
      double v = 0;
      for (int k = 0; k < 4; ++k) v += t.weight[k] * rows[static_cast<size_t>(t.index[k]) * W + x];
      out[static_cast<size_t>(y) * W + x] = static_cast<float>(v);
    }
  }
}

std::vector<float> bicubic_upsample(const float* in, int h, int w, int H, int W) {
  std::vector<float> out(static_cast<size_t>(std::max(H, 0)) * std::max(W, 0));
  bicubic_upsample(out.data(), in, h, w, H, W);
  return out;
}

Mask morphological_gradient(const Mask& mask, int size) {
  PRM_CHECK(size >= 1 && size % 2 == 1, "morphological_gradient: size must be odd and >= 1, got ",
            size);
  PRM_CHECK(mask.height >= 0 && mask.width >= 0 &&
                mask.data.size() == static_cast<size_t>(mask.height) * mask.width,
            "morphological_gradient: mask data holds ", mask.data.size(), " bytes for ",
            mask.height, "x", mask.width);
  Mask out(mask.height, mask.width);
  int y0, y1, x0, x1;
  if (!bounding_box(mask, &y0, &y1, &x0, &x1)) return out;
  gradient_pixels(mask, size / 2, y0, y1, x0, x1, [&](int y, int x) { out.at(y, x) = 1; });
  return out;
}

Mask resize_mask_nearest(const Mask& mask, int height, int width) {
  PRM_CHECK(mask.height > 0 && mask.width > 0 && height > 0 && width > 0,
            "resize_mask_nearest: sizes must be positive, got ", mask.height, "x", mask.width,
            " -> ", height, "x", width);
  Mask out(height, width);
  for (int y = 0; y < height; ++y) {
    const int sy = std::min(mask.height - 1, static_cast<int>((y + 0.5) * mask.height / height));
    for (int x = 0; x < width; ++x) {
      const int sx = std::min(mask.width - 1, static_cast<int>((x + 0.5) * mask.width / width));
      out.at(y, x) = mask.at(sy, sx) != 0;
    }
  }
  return out;
}

double mask_iou(const Mask& a, const Mask& b) {
  PRM_CHECK(a.height == b.height && a.width == b.width && a.data.size() == b.data.size(),
            "mask_iou: masks are ", a.height, "x", a.width, " and ", b.height, "x", b.width);
  int64_t inter = 0, uni = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    const bool x = a.data[i] != 0, y = b.data[i] != 0;
    inter += x && y;
    uni += x || y;
  }
  return uni == 0 ? 0.0 : static_cast<double>(inter) / static_cast<double>(uni);
}

std::vector<int32_t> contour_pixels(const Mask& mask, const std::vector<int32_t>& inside,
                                    int size) {
  std::vector<int32_t> out;
  if (inside.empty()) return out;
  const int W = mask.width;
  int x0 = W, x1 = -1;
  for (int32_t i : inside) {
    x0 = std::min(x0, i % W);
    x1 = std::max(x1, i % W);
  }
  gradient_pixels(mask, size / 2, inside.front() / W, inside.back() / W, x0, x1,
                  [&](int y, int x) { out.push_back(y * W + x); });
  std::sort(out.begin(), out.end());
  return out;
}


}  // namespace prm
