// CPU twins of the reduction kernels (kernels/reduce.h).
#include "kernels/reduce.h"

#include <algorithm>
#include <vector>

#include "kernels/reduce_math.h"

namespace prm::cpu {

namespace {
constexpr int64_t kChunk = 16384;  // elements per partial sum
}

template <typename T>
void sum_all(T* out, const T* inp, int64_t n) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks, 0.0);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk, end = std::min(n, begin + kChunk);
    partial[c] = sum_run(inp + begin, end - begin, 1);
  }
  double total = 0.0;
  for (double p : partial) total += p;
  out[0] = static_cast<T>(total);
}

template <typename T>
void sum_dims(T* out, const T* inp, const Strides& kept, const Strides& reduced, int64_t n_out,
              int64_t n_reduced) {
#pragma omp parallel for schedule(static) if (n_out > 1 && n_out * n_reduced > 32768)
  for (int64_t o = 0; o < n_out; ++o) out[o] = sum_at(o, inp, kept, reduced, n_reduced);
}

template void sum_all<float>(float*, const float*, int64_t);
template void sum_all<double>(double*, const double*, int64_t);
template void sum_dims<float>(float*, const float*, const Strides&, const Strides&, int64_t,
                              int64_t);
template void sum_dims<double>(double*, const double*, const Strides&, const Strides&, int64_t,
                               int64_t);

}  // namespace prm::cpu
