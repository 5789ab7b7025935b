// CUDA twin of the SGD update kernel (kernels/sgd.h); the math is sgd_math.h.
#include "kernels/cuda/launch.cuh"
#include "kernels/sgd.h"

namespace prm::cuda {

template <typename T>
void sgd_step(T* param, T* momentum_buf, const T* dparam, int64_t n, SgdHyper<T> h) {
  parallel_for(n, [=] __device__(int64_t i) {
    sgd_update_element(param[i], momentum_buf ? momentum_buf + i : nullptr, dparam[i], h);
  });
}

template void sgd_step<float>(float*, float*, const float*, int64_t, SgdHyper<float>);
template void sgd_step<double>(double*, double*, const double*, int64_t, SgdHyper<double>);

}  // namespace prm::cuda
