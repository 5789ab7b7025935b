// Peak stimulation kernels over class response maps crm [N, C, H, W] (one plane per image and
// class; kernels/dispatch.h), registered in cpu/peaks.cpp and cuda/peaks.cu.
//
//   PeakStimulationForward (a body per device): for each plane, the median m of its H * W values
//     (the lower middle one for an even count, as torch.median), then
//       peak_map[i] = 1 where i is a local peak (peaks_math.h) with crm[i] >= m, else 0
//       counts[p]   = number of kept peaks n (>= 1: the first global maximum is always kept)
//       scores[p]   = sum of crm over the kept peaks / n, NaN when the plane holds a NaN
//                     (as the official code's, so a diverging run is seen)  (all overwritten)
//     CPU: std::nth_element per plane. CUDA: one block per plane, a radix select of the median
//     over order-preserving integer keys, then a block reduction of the kept peaks.
//   PeakStimulationBackward (written once): dcrm[i] = peak_map[i] * dscores[p] (/ counts[p] when
//     mean_grad), p = i / (H * W)                                         (overwrites dcrm)
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/peaks_math.h"

namespace prm {

template <class Loop>
struct PeakStimulationForward {
  template <typename T>
  static void run(T* peak_map, T* scores, T* counts, const T* crm, int64_t planes, int64_t H,
                  int64_t W, int64_t window);
};

template <class Loop>
struct PeakStimulationBackward {
  template <typename T>
  static void run(T* dcrm, const T* dscores, const T* peak_map, const T* counts, bool mean_grad,
                  int64_t planes, int64_t HW) {
    Loop::for_each(planes * HW, PRM_LAMBDA(int64_t i) {
      const int64_t p = i / HW;
      dcrm[i] = peak_grad_at(peak_map[i], dscores[p], counts[p], mean_grad);
    });
  }
};

}  // namespace prm
