// CPU twin of cuda::parallel_for: one call of f(i) for every i in [0, n), spread over OpenMP
// threads when there is enough work to pay for them.
#pragma once
#include <cstdint>

namespace prm::cpu {

template <typename F>
void parallel_for(int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace prm::cpu
