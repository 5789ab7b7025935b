// CPU body of PeakStimulationForward (kernels/peaks.h): the specification the CUDA kernel is
// tested against. One plane per OpenMP iteration.
#include <algorithm>
#include <vector>

#include "kernels/cpu/loop.h"
#include "kernels/peaks.h"
#include "kernels/register.h"

namespace prm {

template <>
template <typename T>
void PeakStimulationForward<CpuLoop>::run(T* peak_map, T* scores, T* counts, const T* crm,
                                          int64_t planes, int64_t H, int64_t W, int64_t window) {
  const int64_t HW = H * W, r = (window - 1) / 2;
#pragma omp parallel for schedule(static) if (planes > 1 && planes * HW > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    const T* x = crm + p * HW;
    std::vector<T> sorted(x, x + HW);
    const auto middle = sorted.begin() + (HW - 1) / 2;  // the lower middle, as torch.median
    std::nth_element(sorted.begin(), middle, sorted.end());
    const T median = *middle;
    double sum = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < HW; ++i) {
      const bool kept = x[i] >= median && is_local_peak(x, H, W, i / W, i % W, r);
      peak_map[p * HW + i] = kept ? T(1) : T(0);
      if (kept) {
        sum += x[i];
        ++n;
      } else if (x[i] != x[i]) {
        sum += x[i];  // a NaN anywhere in the plane makes its score NaN
      }
    }
    counts[p] = static_cast<T>(n);
    scores[p] = static_cast<T>(sum / static_cast<double>(n));  // n = 0 only with NaNs: NaN
  }
}

}  // namespace prm

PRM_REGISTER_KERNELS(CpuLoop, PeakStimulationForward, PeakStimulationBackward)
