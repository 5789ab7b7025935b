#include "kernels/basic.h"

#include "kernels/cuda/launch.cuh"

namespace prm::cuda {

template <typename T>
void fill(T* out, T value, int64_t n) {
  parallel_for(n, [=] __device__(int64_t i) { out[i] = value; });
}

template <typename To, typename From>
void convert(To* out, const From* inp, int64_t n) {
  parallel_for(n, [=] __device__(int64_t i) { out[i] = static_cast<To>(inp[i]); });
}

template <typename T>
void axpy(T* out, T alpha, const T* inp, int64_t n) {
  parallel_for(n, [=] __device__(int64_t i) { out[i] += alpha * inp[i]; });
}

template void fill<float>(float*, float, int64_t);
template void fill<double>(double*, double, int64_t);
template void fill<int64_t>(int64_t*, int64_t, int64_t);
template void convert<float, double>(float*, const double*, int64_t);
template void convert<double, float>(double*, const float*, int64_t);
template void convert<float, int64_t>(float*, const int64_t*, int64_t);
template void convert<double, int64_t>(double*, const int64_t*, int64_t);
template void convert<int64_t, float>(int64_t*, const float*, int64_t);
template void convert<int64_t, double>(int64_t*, const double*, int64_t);
template void axpy<float>(float*, float, const float*, int64_t);
template void axpy<double>(double*, double, const double*, int64_t);

}  // namespace prm::cuda
