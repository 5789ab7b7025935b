// prm bench --only gemm | peak (apps/bench_gemm.h).
#include "bench_gemm.h"

#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/cpu/gemm_kernels.h"
#include "kernels/cpu/loop.h"
#include "kernels/cpu_isa.h"
#include "kernels/gemm.h"
#include "layers/resnet.h"
#include "tensor/error.h"

namespace prm {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds of the OpenMP team's threads so far, summed. On a machine shared with other
// work, flops per CPU second per thread is what a thread does while it has a core: the figure
// that stays put when the wall-clock rate does not. Each thread reads its own clock
// (CLOCK_THREAD_CPUTIME_ID, exact for the calling thread), in a parallel region of the same team
// the GEMM runs on. The process clock (CLOCK_PROCESS_CPUTIME_ID), read before, is exact only for
// the calling thread: Linux adds the others' time at their scheduler ticks and switches, so over
// a GEMM of a few milliseconds it missed part of the second thread's work, and the rate per CPU
// second came out above the peak (up to 1.5 times it). A waiting thread counts while it spins
// (libgomp spins a while before it sleeps).
double team_cpu_seconds() {
  double seconds = 0;
#pragma omp parallel reduction(+ : seconds)
  {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    seconds += static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
  }
  return seconds;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// A convolution as the native engine runs it at batch 1 (tensor/ops/conv2d.cpp):
// forward y [O, P] = W [O, CKK] col [CKK, P]; input gradient dcol [CKK, P] = Wᵀ dy [O, P];
// weight gradient dW [O, CKK] = dy [O, P] colᵀ [P, CKK].
struct ConvShape {
  std::string name;
  int64_t cin, cout, k, pixels;
};

std::vector<ConvShape> resnet_convs(const std::string& arch, int64_t size, int64_t width,
                                    int64_t classes) {
  const ResNetLayout layout = resnet_layout(arch);
  auto out = [](int64_t h, int64_t k, int64_t stride, int64_t pad) {
    return (h + 2 * pad - k) / stride + 1;
  };
  std::vector<ConvShape> convs;
  int64_t h = out(size, 7, 2, 3);
  convs.push_back({"conv1", 3, width, 7, h * h});
  h = out(h, 3, 2, 1);  // max pool
  int64_t in = width;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = width << stage;
    for (int64_t b = 0; b < layout.blocks[stage]; ++b) {
      const int64_t stride = stage > 0 && b == 0 ? 2 : 1;
      const int64_t h2 = out(h, 3, stride, 1);
      const std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(b) + ".";
      const int64_t expanded = layout.bottleneck ? 4 * planes : planes;
      if (layout.bottleneck) {
        convs.push_back({p + "conv1", in, planes, 1, h * h});
        convs.push_back({p + "conv2", planes, planes, 3, h2 * h2});
        convs.push_back({p + "conv3", planes, expanded, 1, h2 * h2});
      } else {
        convs.push_back({p + "conv1", in, planes, 3, h2 * h2});
        convs.push_back({p + "conv2", planes, planes, 3, h2 * h2});
      }
      if (stride != 1 || in != expanded)
        convs.push_back({p + "downsample", in, expanded, 1, h2 * h2});
      in = expanded;
      h = h2;
    }
  }
  convs.push_back({"classifier", in, classes, 1, h * h});
  return convs;
}

struct GemmCase {
  const char* product;  // forward | input_grad | weight_grad
  bool ta, tb;
  int64_t M, N, K;
  std::vector<std::string> layers;
};

using GemmFn = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                        const float*, int64_t, float, float*, int64_t);

// OpenBLAS when the build has it (Gemm<CpuLoop> then calls it), for the comparison.
GemmFn openblas_gemm() {
#if PRM_USE_OPENBLAS
  return kernel_entry<Gemm, CpuLoop, float>();
#else
  return nullptr;
#endif
}

}  // namespace

// The machine's float32 FMA rate on this path: the best of `runs` timed rounds after an
// untimed one (which wakes the threads and brings the cores to their vector clock). The best,
// not the median: it is the limit every other figure is read against, and a round that lost
// its core to another process for a moment says nothing about the limit (a median of three
// once came out at 270 GFLOP/s against 428 in the rounds around it).
PeakRate measure_peak(int runs) {
  std::vector<double> rates, cpu_rates;
  const CpuIsa isa = cpu_isa_active();
  for (int r = -1; r < runs; ++r) {
    double flops = 0;
    const double cpu0 = team_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : flops)
    {
      const int64_t iters = 20'000'000;
#if defined(__x86_64__)
      if (isa == CpuIsa::avx512) flops += cpu::peak_loop_avx512(iters);
      else if (isa == CpuIsa::avx2) flops += cpu::peak_loop_avx2(iters);
      else flops += cpu::peak_loop_scalar(iters / 4);
#else
      (void)isa;  // the portable path only
      flops += cpu::peak_loop_scalar(iters / 4);
#endif
    }
    if (r < 0) continue;  // the untimed round
    rates.push_back(flops / seconds_since(t0) / 1e9);
    cpu_rates.push_back(flops / (team_cpu_seconds() - cpu0) / 1e9);
  }
  return {*std::max_element(rates.begin(), rates.end()),
          *std::max_element(cpu_rates.begin(), cpu_rates.end())};
}

void bench_peak(int runs, const BenchEmit& emit) {
  const CpuIsa active = cpu_isa_active();
  for (CpuIsa isa : {CpuIsa::avx512, CpuIsa::avx2, CpuIsa::scalar}) {
    if (!cpu_isa_supported(isa)) continue;
    set_cpu_isa(isa);
    for (int threads : {1, omp_get_max_threads()}) {
      std::vector<double> times, rates, cpu_rates;
      for (int r = 0; r < runs; ++r) {
        const int saved = omp_get_max_threads();
        omp_set_num_threads(threads);
        const auto t0 = std::chrono::steady_clock::now();
        const PeakRate peak = measure_peak(1);
        times.push_back(seconds_since(t0));
        rates.push_back(peak.gflops);
        cpu_rates.push_back(peak.cpu_gflops_per_thread);
        omp_set_num_threads(saved);
      }
      std::sort(times.begin(), times.end());
      const double rate = median_of(rates);
      const double cpu_rate = median_of(cpu_rates);
      std::fprintf(stderr,
                   "peak %s, %d thread(s): %.1f GFLOP/s float32 (%.1f per thread per CPU second)\n",
                   cpu_isa_name(isa), threads, rate, cpu_rate);
      emit("peak", median_of(times), times.front(), runs,
           Json::object({{"isa", Json(cpu_isa_name(isa))},
                         {"threads", Json(threads)},
                         {"dtype", Json("f32")},
                         {"gflops", Json(rate)},
                         {"cpu_gflops_per_thread", Json(cpu_rate)}}));
      if (threads == omp_get_max_threads()) break;
    }
  }
  set_cpu_isa(active);
}

void bench_gemm(const std::string& arch, int64_t size, int64_t width, int64_t classes, int warmup,
                int runs, const BenchEmit& emit) {
  // The distinct GEMMs, in network order, each with the layers that use it.
  std::vector<GemmCase> cases;
  std::map<std::tuple<std::string, int64_t, int64_t, int64_t>, size_t> index;
  auto add = [&](const char* product, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                 const std::string& layer) {
    const auto key = std::make_tuple(std::string(product), M, N, K);
    auto it = index.find(key);
    if (it == index.end()) {
      it = index.emplace(key, cases.size()).first;
      cases.push_back({product, ta, tb, M, N, K, {}});
    }
    cases[it->second].layers.push_back(layer);
  };
  for (const ConvShape& c : resnet_convs(arch, size, width, classes)) {
    const int64_t ckk = c.cin * c.k * c.k;
    add("forward", false, false, c.cout, c.pixels, ckk, c.name);
    add("input_grad", true, false, ckk, c.pixels, c.cout, c.name);
    add("weight_grad", false, true, c.cout, ckk, c.pixels, c.name);
  }
  const PeakRate peak_rate = measure_peak(5);
  const double peak = peak_rate.gflops, peak_cpu = peak_rate.cpu_gflops_per_thread;
  std::fprintf(stderr,
               "gemm: %s path, peak %.1f GFLOP/s float32 on %d thread(s), %.1f per thread per CPU "
               "second (CPU: %s)\n",
               cpu_isa_name(cpu_isa_active()), peak, omp_get_max_threads(), peak_cpu,
               cpu_features().c_str());
  struct Impl {
    const char* name;
    GemmFn fn;
  };
  std::vector<Impl> impls{{"prm", &cpu::gemm_blocked<float>}};
  if (openblas_gemm()) impls.push_back({"openblas", openblas_gemm()});
  // The large shapes: M, N and K all at least kLarge (ResNet-50's layers 2 to 4 at 448 x 448,
  // 40 of a training step's 98 GFLOP), where the small dimensions of layer 1, the stem and the
  // classifier do not set the rate.
  constexpr int64_t kLarge = 256;
  struct Total {
    double flops = 0, seconds = 0, cpu_seconds = 0;
    double large_flops = 0, large_seconds = 0;
  };
  std::map<std::string, Total> totals;
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (const GemmCase& g : cases) {
    const int64_t a_size = g.M * g.K, b_size = g.K * g.N;
    std::vector<float> A(a_size), B(b_size), C(g.M * g.N);
    for (float& v : A) v = dist(rng);
    for (float& v : B) v = dist(rng);
    const int64_t lda = g.ta ? g.M : g.K, ldb = g.tb ? g.K : g.N;
    const double flops = 2.0 * g.M * g.N * g.K;
    // Alternating the implementations run by run, so that both see the same machine load.
    std::vector<std::vector<double>> times(impls.size()), cpu_times(impls.size());
    for (int r = -warmup; r < runs; ++r)
      for (size_t i = 0; i < impls.size(); ++i) {
        const double cpu0 = team_cpu_seconds();
        const auto t0 = std::chrono::steady_clock::now();
        impls[i].fn(g.ta, g.tb, g.M, g.N, g.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f,
                    C.data(), g.N);
        if (r < 0) continue;
        times[i].push_back(seconds_since(t0));
        cpu_times[i].push_back(team_cpu_seconds() - cpu0);
      }
    for (size_t i = 0; i < impls.size(); ++i) {
      std::vector<double> t = times[i];
      std::sort(t.begin(), t.end());
      const double median = median_of(t), gflops = flops / median / 1e9;
      // Per thread per CPU second: the team's CPU seconds count each thread's busy time.
      const double cpu_seconds = median_of(cpu_times[i]);
      const double cpu_gflops = flops / cpu_seconds / 1e9;
      const double count = static_cast<double>(g.layers.size());
      Total& total = totals[impls[i].name];
      total.flops += count * flops;
      total.seconds += count * median;
      total.cpu_seconds += count * cpu_seconds;
      if (std::min({g.M, g.N, g.K}) >= kLarge) {
        total.large_flops += count * flops;
        total.large_seconds += count * median;
      }
      std::string layers;
      for (const std::string& l : g.layers) layers += (layers.empty() ? "" : " ") + l;
      std::fprintf(stderr,
                   "%-8s %-11s M %5lld N %5lld K %5lld  %6.1f GFLOP/s %4.0f%% of peak | per "
                   "thread-CPU-s %6.1f %4.0f%%  (%s)\n",
                   impls[i].name, g.product, static_cast<long long>(g.M),
                   static_cast<long long>(g.N), static_cast<long long>(g.K), gflops,
                   100 * gflops / peak, cpu_gflops, 100 * cpu_gflops / peak_cpu, layers.c_str());
      emit("gemm", median, t.front(), runs,
           Json::object({{"impl", Json(impls[i].name)},
                         {"isa", Json(cpu_isa_name(cpu_isa_active()))},
                         {"product", Json(g.product)},
                         {"trans_a", Json(g.ta)},
                         {"trans_b", Json(g.tb)},
                         {"M", Json(g.M)},
                         {"N", Json(g.N)},
                         {"K", Json(g.K)},
                         {"layers", Json(static_cast<int64_t>(g.layers.size()))},
                         {"first_layer", Json(g.layers.front())},
                         {"gflops", Json(gflops)},
                         {"peak_gflops", Json(peak)},
                         {"fraction_of_peak", Json(gflops / peak)},
                         {"cpu_gflops_per_thread", Json(cpu_gflops)},
                         {"peak_cpu_gflops_per_thread", Json(peak_cpu)},
                         {"cpu_fraction_of_peak", Json(cpu_gflops / peak_cpu)}}));
    }
  }
  for (const Impl& impl : impls) {
    const Total& t = totals[impl.name];
    const double flops = t.flops, seconds = t.seconds, cpu_gflops = flops / t.cpu_seconds / 1e9;
    std::fprintf(stderr,
                 "%-8s all GEMMs of a %s training step at %lld: %.3f s, %.1f GFLOP/s, %.0f%% of "
                 "peak | per thread-CPU-s %.1f, %.0f%%\n",
                 impl.name, arch.c_str(), static_cast<long long>(size), seconds,
                 flops / seconds / 1e9, 100 * flops / seconds / 1e9 / peak, cpu_gflops,
                 100 * cpu_gflops / peak_cpu);
    const double large_gflops = t.large_seconds > 0 ? t.large_flops / t.large_seconds / 1e9 : 0;
    if (t.large_seconds > 0)
      std::fprintf(stderr,
                   "%-8s the large ones (M, N, K >= %lld; %.1f of %.1f GFLOP): %.3f s, %.1f "
                   "GFLOP/s, %.0f%% of peak\n",
                   impl.name, static_cast<long long>(kLarge), t.large_flops / 1e9, flops / 1e9,
                   t.large_seconds, large_gflops, 100 * large_gflops / peak);
    emit("gemm_total", seconds, seconds, runs,
         Json::object({{"impl", Json(impl.name)},
                       {"isa", Json(cpu_isa_name(cpu_isa_active()))},
                       {"gflop", Json(flops / 1e9)},
                       {"large_min_dim", Json(kLarge)},
                       {"large_gflop", Json(t.large_flops / 1e9)},
                       {"large_gflops", Json(large_gflops)},
                       {"large_fraction_of_peak", Json(large_gflops / peak)},
                       {"gflops", Json(flops / seconds / 1e9)},
                       {"peak_gflops", Json(peak)},
                       {"fraction_of_peak", Json(flops / seconds / 1e9 / peak)},
                       {"cpu_gflops_per_thread", Json(cpu_gflops)},
                       {"peak_cpu_gflops_per_thread", Json(peak_cpu)},
                       {"cpu_fraction_of_peak", Json(cpu_gflops / peak_cpu)}}));
  }
}

}  // namespace prm
