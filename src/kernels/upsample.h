// Bilinear upsampling (torch's F.interpolate(mode='bilinear')) over [N, C, H, W] ->
// [N, C, OH, OW]. CPU twin in cpu/upsample.cpp, CUDA twin in cuda/upsample.cu, same signatures;
// both use the coefficient function bilinear_tap of upsample_math.h.
//
// scale_h / scale_w map output to input coordinates (bilinear_coordinate_scale computes them,
// torch's rule): align_corners src = scale * o, else src = max(scale * (o + 0.5) - 0.5, 0).
//
//   upsample_bilinear_forward:  out[o] = sum of the 4 taps' weight * inp       (overwrites)
//   upsample_bilinear_backward: dinp = sum over outputs of weight * dout, a scatter: serial per
//                               plane on the CPU, atomicAdd on CUDA            (overwrites)
#pragma once
#include <cstdint>

namespace prm::cpu {
template <typename T>
void upsample_bilinear_forward(T* out, const T* inp, int64_t N, int64_t C, int64_t H, int64_t W,
                               int64_t OH, int64_t OW, T scale_h, T scale_w, bool align_corners);
template <typename T>
void upsample_bilinear_backward(T* dinp, const T* dout, int64_t N, int64_t C, int64_t H, int64_t W,
                                int64_t OH, int64_t OW, T scale_h, T scale_w, bool align_corners);
}  // namespace prm::cpu

namespace prm::cuda {
template <typename T>
void upsample_bilinear_forward(T* out, const T* inp, int64_t N, int64_t C, int64_t H, int64_t W,
                               int64_t OH, int64_t OW, T scale_h, T scale_w, bool align_corners);
template <typename T>
void upsample_bilinear_backward(T* dinp, const T* dout, int64_t N, int64_t C, int64_t H, int64_t W,
                                int64_t OH, int64_t OW, T scale_h, T scale_w, bool align_corners);
}  // namespace prm::cuda
