// Run-time choice of the CPU kernels' instruction set (kernels/cpu_isa.h).
#include "kernels/cpu_isa.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>

#include "tensor/error.h"

namespace prm {

namespace {

// The AVX kernels are built for x86-64 only (kernels/cpu/gemm_avx512.cpp, gemm_avx2.cpp).
#if defined(__x86_64__)
constexpr bool kX86 = true;
#else
constexpr bool kX86 = false;
#endif

bool has(const char* feature) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  // __builtin_cpu_supports wants a string literal, hence the list.
  const std::string f = feature;
  if (f == "avx512f") return __builtin_cpu_supports("avx512f");
  if (f == "avx512bw") return __builtin_cpu_supports("avx512bw");
  if (f == "avx512vl") return __builtin_cpu_supports("avx512vl");
  if (f == "avx2") return __builtin_cpu_supports("avx2");
  if (f == "fma") return __builtin_cpu_supports("fma");
  if (f == "avx") return __builtin_cpu_supports("avx");
  if (f == "sse4.2") return __builtin_cpu_supports("sse4.2");
#endif
  (void)feature;
  return false;
}

std::atomic<int> g_active{-1};  // a CpuIsa once chosen
std::mutex g_choose;

CpuIsa parse_env(const char* value) {
  const std::string name = value;
  for (CpuIsa isa : {CpuIsa::avx512, CpuIsa::avx2, CpuIsa::scalar}) {
    if (name != cpu_isa_name(isa)) continue;
    PRM_CHECK(cpu_isa_supported(isa), "PRM_CPU_ISA=", name,
              ": this CPU does not support it (it has: ", cpu_features(), "; best path ",
              cpu_isa_name(cpu_isa_best()), ")");
    return isa;
  }
  PRM_CHECK(false, "PRM_CPU_ISA=", name, " is not one of avx512, avx2, scalar");
  return CpuIsa::scalar;
}

}  // namespace

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::avx512: return "avx512";
    case CpuIsa::avx2: return "avx2";
    case CpuIsa::scalar: break;
  }
  return "scalar";
}

bool cpu_isa_supported(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::avx512:  // F for the GEMM, BW and VL for packing, epilogues and tails
      return kX86 && has("avx512f") && has("avx512bw") && has("avx512vl") && has("fma");
    case CpuIsa::avx2: return kX86 && has("avx2") && has("fma");
    case CpuIsa::scalar: break;
  }
  return true;
}

CpuIsa cpu_isa_best() {
  for (CpuIsa isa : {CpuIsa::avx512, CpuIsa::avx2})
    if (cpu_isa_supported(isa)) return isa;
  return CpuIsa::scalar;
}

CpuIsa cpu_isa_active() {
  const int chosen = g_active.load(std::memory_order_acquire);
  if (chosen >= 0) return static_cast<CpuIsa>(chosen);
  std::lock_guard<std::mutex> lock(g_choose);
  if (g_active.load() < 0) {
    const char* env = std::getenv("PRM_CPU_ISA");
    const CpuIsa isa = env && *env ? parse_env(env) : cpu_isa_best();
    g_active.store(static_cast<int>(isa), std::memory_order_release);
  }
  return static_cast<CpuIsa>(g_active.load());
}

void set_cpu_isa(CpuIsa isa) {
  PRM_CHECK(cpu_isa_supported(isa), "CPU path ", cpu_isa_name(isa),
            " is not supported by this CPU (it has: ", cpu_features(), ")");
  g_active.store(static_cast<int>(isa), std::memory_order_release);
}

std::string cpu_features() {
  std::string out;
  for (const char* f : {"sse4.2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl"})
    if (has(f)) out += (out.empty() ? "" : " ") + std::string(f);
  return out.empty() ? std::string(kX86 ? "none beyond x86-64" : "not x86") : out;
}

}  // namespace prm
