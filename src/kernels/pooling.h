// 2-d pooling kernels over [N, C, H, W] -> [N, C, OH, OW]. CPU twins in cpu/pooling.cpp, CUDA
// twins in cuda/pooling.cu, same signatures; both loop over the PRM_HD functions of
// pooling_math.h, one output (forward) or one input element (backward) per call.
//
//   max_pool2d_forward:   out = max over the k x k window at (oh * s - p, ow * s - p), padding
//                         counting as -inf; argmax = h * W + w of the first maximum in scan order
//                         (row by row), as torch                         (overwrites out, argmax)
//   max_pool2d_backward:  dinp[h, w] = sum of dout over the windows whose argmax is (h, w)
//                         (a gather over the windows containing (h, w); overwrites)
//   adaptive_avg_pool2d_forward:  out[oh, ow] = mean of inp over rows [start(oh), end(oh)) and
//                         columns [start(ow), end(ow)), start(o) = floor(o * H / OH),
//                         end(o) = ceil((o + 1) * H / OH) (torch's rule)  (overwrites)
//   adaptive_avg_pool2d_backward: dinp[h, w] = sum over the windows containing (h, w) of
//                         dout / window area (gather; overwrites)
#pragma once
#include <cstdint>

namespace prm::cpu {
template <typename T>
void max_pool2d_forward(T* out, int64_t* argmax, const T* inp, int64_t N, int64_t C, int64_t H,
                        int64_t W, int64_t OH, int64_t OW, int64_t kernel, int64_t stride,
                        int64_t padding);
template <typename T>
void max_pool2d_backward(T* dinp, const T* dout, const int64_t* argmax, int64_t N, int64_t C,
                         int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t kernel,
                         int64_t stride, int64_t padding);
template <typename T>
void adaptive_avg_pool2d_forward(T* out, const T* inp, int64_t N, int64_t C, int64_t H, int64_t W,
                                 int64_t OH, int64_t OW);
template <typename T>
void adaptive_avg_pool2d_backward(T* dinp, const T* dout, int64_t N, int64_t C, int64_t H,
                                  int64_t W, int64_t OH, int64_t OW);
}  // namespace prm::cpu

namespace prm::cuda {
template <typename T>
void max_pool2d_forward(T* out, int64_t* argmax, const T* inp, int64_t N, int64_t C, int64_t H,
                        int64_t W, int64_t OH, int64_t OW, int64_t kernel, int64_t stride,
                        int64_t padding);
template <typename T>
void max_pool2d_backward(T* dinp, const T* dout, const int64_t* argmax, int64_t N, int64_t C,
                         int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t kernel,
                         int64_t stride, int64_t padding);
template <typename T>
void adaptive_avg_pool2d_forward(T* out, const T* inp, int64_t N, int64_t C, int64_t H, int64_t W,
                                 int64_t OH, int64_t OW);
template <typename T>
void adaptive_avg_pool2d_backward(T* dinp, const T* dout, int64_t N, int64_t C, int64_t H,
                                  int64_t W, int64_t OH, int64_t OW);
}  // namespace prm::cuda
