// Reduction kernels (both WRITE their output; kernels/dispatch.h), registered in cpu/reduce.cpp
// and cuda/reduce.cu; accumulation is in double.
//   SumAll:  out[0] = sum of inp[0 .. n). CPU: fixed-size chunks summed in parallel, then the
//             chunk sums in order (deterministic for any thread count). CUDA: a shared-memory
//             tree reduction per block into per-block partials, then one block over the
//             partials (two launches, deterministic).
//   SumDims: out[o] = sum over the reduced elements of output element o; `kept` walks the
//             input's kept dims (in output order), `reduced` the summed ones (see reduce_math.h).
//             One thread per output element on both devices.
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/reduce_math.h"

namespace prm {

// The GPU algorithm differs (a block tree): one body per device, in cpu/ and cuda/reduce.*.
template <class Loop>
struct SumAll {
  template <typename T>
  static void run(T* out, const T* inp, int64_t n);
};

template <class Loop>
struct SumDims {
  template <typename T>
  static void run(T* out, const T* inp, const Strides& kept, const Strides& reduced,
                  int64_t n_out, int64_t n_reduced) {
    const Strides ck = kept, cr = reduced;
    Loop::for_each(
        n_out, PRM_LAMBDA(int64_t o) { out[o] = sum_at(o, inp, ck, cr, n_reduced); }, n_reduced);
  }
};

}  // namespace prm
