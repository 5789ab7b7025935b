// prm bench --only gemm | peak (apps/bench_gemm.h).
#include "bench_gemm.h"

#include <omp.h>

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
      if (stride != 1 || in != expanded) convs.push_back({p + "downsample", in, expanded, 1, h2 * h2});
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

double measure_peak_gflops(int runs) {
  std::vector<double> rates;
  const CpuIsa isa = cpu_isa_active();
  for (int r = 0; r < runs; ++r) {
    double flops = 0;
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : flops)
    {
      const int64_t iters = 20'000'000;
#if defined(__x86_64__)
      if (isa == CpuIsa::avx512) flops += cpu::peak_loop_avx512(iters);
      else if (isa == CpuIsa::avx2) flops += cpu::peak_loop_avx2(iters);
      else flops += cpu::peak_loop_scalar(iters / 4);
#else
      flops += cpu::peak_loop_scalar(iters / 4);
#endif
    }
    rates.push_back(flops / seconds_since(t0) / 1e9);
  }
  return median_of(rates);
}

void bench_peak(int runs, const BenchEmit& emit) {
  const CpuIsa active = cpu_isa_active();
  for (CpuIsa isa : {CpuIsa::avx512, CpuIsa::avx2, CpuIsa::scalar}) {
    if (!cpu_isa_supported(isa)) continue;
    set_cpu_isa(isa);
    for (int threads : {1, omp_get_max_threads()}) {
      std::vector<double> times, rates;
      for (int r = 0; r < runs; ++r) {
        const int saved = omp_get_max_threads();
        omp_set_num_threads(threads);
        const auto t0 = std::chrono::steady_clock::now();
        const double gflops = measure_peak_gflops(1);
        times.push_back(seconds_since(t0));
        rates.push_back(gflops);
        omp_set_num_threads(saved);
      }
      std::sort(times.begin(), times.end());
      const double rate = median_of(rates);
      std::fprintf(stderr, "peak %s, %d thread(s): %.1f GFLOP/s float32\n", cpu_isa_name(isa),
                   threads, rate);
      emit("peak", median_of(times), times.front(), runs,
           Json::object({{"isa", Json(cpu_isa_name(isa))},
                         {"threads", Json(threads)},
                         {"dtype", Json("f32")},
                         {"gflops", Json(rate)}}));
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
  const double peak = measure_peak_gflops(3);
  std::fprintf(stderr, "gemm: %s path, peak %.1f GFLOP/s float32 on %d thread(s) (CPU: %s)\n",
               cpu_isa_name(cpu_isa_active()), peak, omp_get_max_threads(),
               cpu_features().c_str());
  struct Impl {
    const char* name;
    GemmFn fn;
  };
  std::vector<Impl> impls{{"prm", &cpu::gemm_blocked<float>}};
  if (openblas_gemm()) impls.push_back({"openblas", openblas_gemm()});
  std::map<std::string, std::pair<double, double>> totals;  // impl: flops, seconds
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
    std::vector<std::vector<double>> times(impls.size());
    for (int r = -warmup; r < runs; ++r)
      for (size_t i = 0; i < impls.size(); ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        impls[i].fn(g.ta, g.tb, g.M, g.N, g.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f,
                    C.data(), g.N);
        if (r >= 0) times[i].push_back(seconds_since(t0));
      }
    for (size_t i = 0; i < impls.size(); ++i) {
      std::vector<double> t = times[i];
      std::sort(t.begin(), t.end());
      const double median = median_of(t), gflops = flops / median / 1e9;
      const double count = static_cast<double>(g.layers.size());
      totals[impls[i].name].first += count * flops;
      totals[impls[i].name].second += count * median;
      std::string layers;
      for (const std::string& l : g.layers) layers += (layers.empty() ? "" : " ") + l;
      std::fprintf(stderr, "%-8s %-11s M %5lld N %5lld K %5lld  %7.1f GFLOP/s  %4.0f%% of peak  (%s)\n",
                   impls[i].name, g.product, static_cast<long long>(g.M),
                   static_cast<long long>(g.N), static_cast<long long>(g.K), gflops,
                   100 * gflops / peak, layers.c_str());
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
                         {"fraction_of_peak", Json(gflops / peak)}}));
    }
  }
  for (const Impl& impl : impls) {
    const auto [flops, seconds] = totals[impl.name];
    std::fprintf(stderr, "%-8s all GEMMs of a %s training step at %lld: %.3f s, %.1f GFLOP/s\n",
                 impl.name, arch.c_str(), static_cast<long long>(size), seconds,
                 flops / seconds / 1e9);
    emit("gemm_total", seconds, seconds, runs,
         Json::object({{"impl", Json(impl.name)},
                       {"isa", Json(cpu_isa_name(cpu_isa_active()))},
                       {"gflop", Json(flops / 1e9)},
                       {"gflops", Json(flops / seconds / 1e9)},
                       {"peak_gflops", Json(peak)},
                       {"fraction_of_peak", Json(flops / seconds / 1e9 / peak)}}));
  }
}

}  // namespace prm
