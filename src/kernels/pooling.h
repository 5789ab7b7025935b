// 2-d pooling kernels over [N, C, H, W] -> [N, C, OH, OW], written once for both devices
// (kernels/dispatch.h) over the PRM_HD functions of pooling_math.h, one output (forward) or one
// input element (backward) per index; registered in cpu/pooling.cpp and cuda/pooling.cu.
//
//   MaxPool2dForward:  out = max over the k x k window at (oh * s - p, ow * s - p), padding
//                      counting as -inf; argmax = h * W + w of the first maximum in scan order
//                      (row by row), as torch                         (overwrites out, argmax)
//                      One body per device: CUDA a thread per output (max_pool2d_window); the
//                      CPU a row of outputs per thread, its windows inside the image taken tap
//                      by tap over blocks of outputs (independent compare chains instead of one
//                      per window), each window scanning in the same order: the same numbers.
//   MaxPool2dBackward: dinp[h, w] = sum of dout over the windows whose argmax is (h, w), in
//                      the windows' row-major order (overwrites). One body per device: CUDA
//                      gathers over the windows containing (h, w), a thread per input; the CPU
//                      scatters each window's gradient to its argmax, a plane per thread (no
//                      divisions per element). Both add in the same order: the same numbers.
//   AdaptiveAvgPool2dForward: out[oh, ow] = mean of inp over rows [start(oh), end(oh)) and
//                      columns [start(ow), end(ow)), start(o) = floor(o * H / OH),
//                      end(o) = ceil((o + 1) * H / OH) (torch's rule)  (overwrites)
//   AdaptiveAvgPool2dBackward: dinp[h, w] = sum over the windows containing (h, w) of
//                      dout / window area (gather; overwrites)
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/pooling_math.h"

namespace prm {

template <class Loop>
struct MaxPool2dForward {  // one body per device
  template <typename T>
  static void run(T* out, int64_t* argmax, const T* inp, int64_t N, int64_t C, int64_t H,
                  int64_t W, int64_t OH, int64_t OW, int64_t kernel, int64_t stride,
                  int64_t padding);
};

template <class Loop>
struct MaxPool2dBackward {  // one body per device
  template <typename T>
  static void run(T* dinp, const T* dout, const int64_t* argmax, int64_t N, int64_t C, int64_t H,
                  int64_t W, int64_t OH, int64_t OW, int64_t kernel, int64_t stride,
                  int64_t padding);
};

template <class Loop>
struct AdaptiveAvgPool2dForward {
  template <typename T>
  static void run(T* out, const T* inp, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                  int64_t OW) {
    Loop::for_each(N * C * OH * OW, PRM_LAMBDA(int64_t i) {
      out[i] = adaptive_avg_pool2d_forward_one(i, inp, H, W, OH, OW);
    });
  }
};

template <class Loop>
struct AdaptiveAvgPool2dBackward {
  template <typename T>
  static void run(T* dinp, const T* dout, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                  int64_t OW) {
    Loop::for_each(N * C * H * W, PRM_LAMBDA(int64_t i) {
      dinp[i] = adaptive_avg_pool2d_backward_one(i, dout, H, W, OH, OW);
    });
  }
};

}  // namespace prm
