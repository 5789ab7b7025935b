// CPU kernels of kernels/reduce.h: SumAll's own CPU algorithm (fixed chunks) and the
// registration of the rest.
#include <algorithm>
#include <vector>

#include "kernels/cpu/loop.h"
#include "kernels/reduce.h"
#include "kernels/register.h"

namespace prm {

namespace {
constexpr int64_t kChunk = 16384;  // elements per partial sum
}

template <>
template <typename T>
void SumAll<CpuLoop>::run(T* out, const T* inp, int64_t n) {
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

}  // namespace prm

PRM_REGISTER_KERNELS(CpuLoop, SumAll, SumDims)
