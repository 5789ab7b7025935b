// CPU body of MaxPool2dBackward (kernels/pooling.h), and the registration of the pooling kernels.
#include <algorithm>

#include "kernels/cpu/loop.h"
#include "kernels/pooling.h"
#include "kernels/register.h"

namespace prm {

// A scatter per (n, c) plane: the plane's dinp zeroed, then each window adds its gradient at its
// argmax, windows in row-major order (the order of the CUDA gather's sum). One thread owns a
// plane, so no element is added to by two threads. The window geometry is in argmax already.
template <>
template <typename T>
void MaxPool2dBackward<CpuLoop>::run(T* dinp, const T* dout, const int64_t* argmax, int64_t N,
                                     int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                     int64_t /*kernel*/, int64_t /*stride*/,
                                     int64_t /*padding*/) {
  const int64_t in_plane = H * W, out_plane = OH * OW;
#pragma omp parallel for schedule(static) if (N * C > 1 && N * C * (in_plane + out_plane) > 32768)
  for (int64_t p = 0; p < N * C; ++p) {
    T* d = dinp + p * in_plane;
    std::fill(d, d + in_plane, T(0));
    const T* g = dout + p * out_plane;
    const int64_t* picked = argmax + p * out_plane;
    for (int64_t o = 0; o < out_plane; ++o) d[picked[o]] += g[o];
  }
}

}  // namespace prm

PRM_REGISTER_KERNELS(CpuLoop, MaxPool2dForward, MaxPool2dBackward, AdaptiveAvgPool2dForward,
                     AdaptiveAvgPool2dBackward)
