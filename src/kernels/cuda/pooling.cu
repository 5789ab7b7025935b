#include "kernels/cuda/launch.cuh"
#include "kernels/pooling.h"
#include "kernels/pooling_math.h"

namespace prm::cuda {

template <typename T>
void max_pool2d_forward(T* out, int64_t* argmax, const T* inp, int64_t N, int64_t C, int64_t H,
                        int64_t W, int64_t OH, int64_t OW, int64_t kernel, int64_t stride,
                        int64_t padding) {
  parallel_for(N * C * OH * OW, [=] __device__(int64_t i) {
    max_pool2d_forward_one(i, out, argmax, inp, H, W, OH, OW, kernel, stride, padding);
  });
}

template <typename T>
void max_pool2d_backward(T* dinp, const T* dout, const int64_t* argmax, int64_t N, int64_t C,
                         int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t kernel,
                         int64_t stride, int64_t padding) {
  parallel_for(N * C * H * W, [=] __device__(int64_t i) {
    dinp[i] = max_pool2d_backward_one(i, dout, argmax, H, W, OH, OW, kernel, stride, padding);
  });
}

template <typename T>
void adaptive_avg_pool2d_forward(T* out, const T* inp, int64_t N, int64_t C, int64_t H, int64_t W,
                                 int64_t OH, int64_t OW) {
  parallel_for(N * C * OH * OW, [=] __device__(int64_t i) {
    out[i] = adaptive_avg_pool2d_forward_one(i, inp, H, W, OH, OW);
  });
}

template <typename T>
void adaptive_avg_pool2d_backward(T* dinp, const T* dout, int64_t N, int64_t C, int64_t H,
                                  int64_t W, int64_t OH, int64_t OW) {
  parallel_for(N * C * H * W, [=] __device__(int64_t i) {
    dinp[i] = adaptive_avg_pool2d_backward_one(i, dout, H, W, OH, OW);
  });
}

#define PRM_INSTANTIATE_POOLING(T)                                                                \
  template void max_pool2d_forward<T>(T*, int64_t*, const T*, int64_t, int64_t, int64_t, int64_t, \
                                      int64_t, int64_t, int64_t, int64_t, int64_t);               \
  template void max_pool2d_backward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t,   \
                                       int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);     \
  template void adaptive_avg_pool2d_forward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t,  \
                                               int64_t, int64_t);                                 \
  template void adaptive_avg_pool2d_backward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, \
                                                int64_t, int64_t);
PRM_INSTANTIATE_POOLING(float)
PRM_INSTANTIATE_POOLING(double)

}  // namespace prm::cuda
