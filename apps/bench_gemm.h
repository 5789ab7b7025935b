// `prm bench --only gemm` and `--only peak` (apps/bench_gemm.cpp): our CPU GEMM on the im2col
// shapes of a ResNet's convolutions, and the machine's peak float32 FMA rate per instruction set,
// so that every GEMM figure reads as a fraction of the peak. Rows go out through `emit`.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "data/json.h"

namespace prm {

// bench name, median and min seconds, runs, the row's own fields.
using BenchEmit = std::function<void(const char*, double, double, int, const Json&)>;

// One row per distinct GEMM of the network's convolutions at size x size, batch 1 (forward,
// input gradient, weight gradient), then one `gemm_total` row for the whole network.
void bench_gemm(const std::string& arch, int64_t size, int64_t width, int64_t classes, int warmup,
                int runs, const BenchEmit& emit);
// The peak rows: every instruction set this CPU supports, one thread and all threads.
void bench_peak(int runs, const BenchEmit& emit);
// The peak float32 rate of the active instruction set on all threads, measured briefly (the
// best of `runs` rounds after an untimed one): by the wall clock (GFLOP/s of the team), and per
// thread per CPU second (what a thread does while it holds a core, steady on a machine shared
// with other work).
struct PeakRate {
  double gflops = 0, cpu_gflops_per_thread = 0;
};
PeakRate measure_peak(int runs);

}  // namespace prm
