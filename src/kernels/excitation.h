// Kernels of the excitation-backprop rule of peak back-propagation (docs/excitation_backprop.md),
// written once for both devices (kernels/dispatch.h); registered in cpu/ and cuda/excitation.*.
//   MinStride:         out[i] = min of inp[j] over j = i, i + parts, i + 2 parts, ... < n, for
//                      i < parts (adjacent i read adjacent j, so the CUDA loads coalesce);
//                      applied with parts = 65536, 256, 1 it gives min(inp) on the device
//                      without a host round trip                          (overwrites out)
//   ExcitationInverse: out[i] = 0 where z[i] < 1e-10, else 1 / (|z[i]| + 1e-10)  (overwrites)
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"

namespace prm {

template <typename T>
PRM_HD T excitation_inverse(T z) {
  const T tiny = T(1e-10);
  return z < tiny ? T(0) : T(1) / ((z < T(0) ? -z : z) + tiny);
}

template <class Loop>
struct MinStride {
  template <typename T>
  static void run(T* out, const T* inp, int64_t n, int64_t parts) {
    Loop::for_each(parts, PRM_LAMBDA(int64_t i) {
      T m = inp[i];
      for (int64_t j = i + parts; j < n; j += parts) m = inp[j] < m ? inp[j] : m;
      out[i] = m;
    }, (n + parts - 1) / parts);
  }
};

template <class Loop>
struct ExcitationInverse {
  template <typename T>
  static void run(T* out, const T* z, int64_t n) {
    Loop::for_each(n, PRM_LAMBDA(int64_t i) { out[i] = excitation_inverse(z[i]); });
  }
};

}  // namespace prm
