#include "kernels/cuda/launch.cuh"
#include "kernels/upsample.h"
#include "kernels/upsample_math.h"

namespace prm::cuda {

namespace {
// Outputs of one plane share input taps, so their scatters race: add atomically.
struct AtomicAdd {
  template <typename T>
  __device__ void operator()(T* p, T v) const {
    atomicAdd(p, v);
  }
};
}  // namespace

template <typename T>
void upsample_bilinear_forward(T* out, const T* inp, int64_t N, int64_t C, int64_t H, int64_t W,
                               int64_t OH, int64_t OW, T scale_h, T scale_w, bool align_corners) {
  parallel_for(N * C * OH * OW, [=] __device__(int64_t i) {
    out[i] = upsample_bilinear_forward_one(i, inp, H, W, OH, OW, scale_h, scale_w, align_corners);
  });
}

template <typename T>
void upsample_bilinear_backward(T* dinp, const T* dout, int64_t N, int64_t C, int64_t H, int64_t W,
                                int64_t OH, int64_t OW, T scale_h, T scale_w, bool align_corners) {
  CUDA_CHECK(cudaMemsetAsync(dinp, 0, sizeof(T) * N * C * H * W));
  parallel_for(N * C * OH * OW, [=] __device__(int64_t i) {
    upsample_bilinear_backward_one(i, dinp, dout, H, W, OH, OW, scale_h, scale_w, align_corners,
                                   AtomicAdd{});
  });
}

#define PRM_INSTANTIATE_UPSAMPLE(T)                                                             \
  template void upsample_bilinear_forward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t,  \
                                             int64_t, int64_t, T, T, bool);                     \
  template void upsample_bilinear_backward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, \
                                              int64_t, int64_t, T, T, bool);
PRM_INSTANTIATE_UPSAMPLE(float)
PRM_INSTANTIATE_UPSAMPLE(double)

}  // namespace prm::cuda
