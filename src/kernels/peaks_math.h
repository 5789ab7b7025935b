// The per-element math of peak stimulation (PRM, docs/prm.md step 2), shared by the CPU and CUDA
// kernels: a location is a peak when it is the maximum of the w x w window centred on it, the
// window padded with -inf, ties going to the first maximum in the window's row-major scan order
// (max_pool2d's argmax rule, which the official code uses through F.max_pool2d's indices).
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace prm {

// Is (y, x) of the plane p [H, W] the first maximum of its window of half-width r = (w - 1) / 2?
template <typename T>
PRM_HD bool is_local_peak(const T* p, int64_t H, int64_t W, int64_t y, int64_t x, int64_t r) {
  const int64_t y0 = y - r < 0 ? 0 : y - r, y1 = y + r + 1 > H ? H : y + r + 1;
  const int64_t x0 = x - r < 0 ? 0 : x - r, x1 = x + r + 1 > W ? W : x + r + 1;
  int64_t best = y0 * W + x0;
  for (int64_t yy = y0; yy < y1; ++yy)
    for (int64_t xx = x0; xx < x1; ++xx)
      if (p[yy * W + xx] > p[best]) best = yy * W + xx;  // strict: the first maximum wins
  return best == y * W + x;
}

// The gradient of one CRM element: dscore of its (image, class) where it is a kept peak, divided
// by the number of kept peaks n for the true gradient of the mean (mean_grad), not divided for
// the official implementation's rule.
template <typename T>
PRM_HD T peak_grad_at(T peak, T dscore, T count, bool mean_grad) {
  return peak != T(0) ? (mean_grad ? dscore / count : dscore) : T(0);
}

}  // namespace prm
