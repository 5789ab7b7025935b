// Which vector instruction set the CPU kernels use, chosen at run time.
//
// The build does not assume the CPU it runs on (no -march=native by default): code for AVX-512
// and AVX2+FMA is compiled into every x86-64 binary with per-function target attributes, and the
// CPU's features (cpuid, through __builtin_cpu_supports) pick the widest path once, at the first
// GEMM. PRM_CPU_ISA=avx512|avx2|scalar forces a path (read once; a path this CPU lacks or an
// unknown name is refused with one line). Non-x86 builds have the portable scalar path only.
#pragma once
#include <string>

namespace prm {

enum class CpuIsa { scalar, avx2, avx512 };

const char* cpu_isa_name(CpuIsa isa);
// Whether this CPU (and this build) can run `isa`: avx512 needs AVX-512F, avx2 needs AVX2 and FMA.
bool cpu_isa_supported(CpuIsa isa);
// The widest path this CPU supports.
CpuIsa cpu_isa_best();
// The path the CPU GEMM uses: PRM_CPU_ISA when set (checked on the first call, throwing
// prm::Error with one line when it names an unknown or unsupported path), else cpu_isa_best().
CpuIsa cpu_isa_active();
// Makes `isa` the active path from now on (tests and benchmarks that compare paths); refuses
// a path the CPU lacks.
void set_cpu_isa(CpuIsa isa);
// "avx512f avx2 fma ..." : the vector features this CPU reports that matter here.
std::string cpu_features();

}  // namespace prm
