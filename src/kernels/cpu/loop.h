// The CPU loop policy of kernels/dispatch.h: plain loops spread over OpenMP threads when there
// is enough work to pay for them.
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"

namespace prm {

struct CpuLoop {
  // f(i) for every i in [0, n); `cost` is the work of one call in elements (threads start
  // when n * cost is large, so a few heavy items still spread over cores).
  template <typename F>
  static void for_each(int64_t n, F f, int64_t cost = 1) {
#pragma omp parallel for schedule(static) if (n > 1 && n * cost > 32768)
    for (int64_t i = 0; i < n; ++i) f(i);
  }

  // f(row, begin, end) covering rows x [0, len). Here one call per whole row: its inner loop
  // over [begin, end) is a plain run that the compiler vectorises, and one thread owns a row.
  template <typename F>
  static void for_each_run(int64_t rows, int64_t len, F f) {
    if (len <= 0) return;  // as on CUDA: empty rows are not visited
#pragma omp parallel for schedule(static) if (rows > 1 && rows * len > 32768)
    for (int64_t r = 0; r < rows; ++r) f(r, int64_t(0), len);
  }
};

}  // namespace prm
