// CUDA bodies of MaxPool2dForward and MaxPool2dBackward (kernels/pooling.h), and the
// registration of the pooling kernels.
#include "kernels/cuda/loop.cuh"
#include "kernels/pooling.h"
#include "kernels/register.h"

namespace prm {

// A run per output row: the plane and the row are known without dividing per element.
template <>
template <typename T>
void MaxPool2dForward<CudaLoop>::run(T* out, int64_t* argmax, const T* inp, int64_t N, int64_t C,
                                     int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t kernel,
                                     int64_t stride, int64_t padding) {
  CudaLoop::for_each_run(N * C * OH, OW, [=] __device__(int64_t row, int64_t begin, int64_t end) {
    const T* x = inp + (row / OH) * H * W;
    for (int64_t ow = begin; ow < end; ++ow)
      max_pool2d_window(row % OH, ow, out + row * OW + ow, argmax + row * OW + ow, x, H, W,
                        kernel, stride, padding);
  });
}

// A gather, a thread per input element: no atomics, and the sum runs over the windows
// containing the element in row-major order, as the CPU's scatter adds them.
template <>
template <typename T>
void MaxPool2dBackward<CudaLoop>::run(T* dinp, const T* dout, const int64_t* argmax, int64_t N,
                                      int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                      int64_t kernel, int64_t stride, int64_t padding) {
  CudaLoop::for_each(N * C * H * W, [=] __device__(int64_t i) {
    dinp[i] = max_pool2d_backward_one(i, dout, argmax, H, W, OH, OW, kernel, stride, padding);
  });
}

}  // namespace prm

PRM_REGISTER_KERNELS(CudaLoop, MaxPool2dForward, MaxPool2dBackward, AdaptiveAvgPool2dForward,
                     AdaptiveAvgPool2dBackward)
