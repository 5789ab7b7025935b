// For the tests of the CPU kernels that have a build per instruction set: scopes that select a
// path or a thread count for one check and restore the one before, and a loop over the paths
// this CPU supports (the others reported as skipped).
#pragma once
#include <omp.h>

#include "helpers.h"
#include "kernels/cpu_isa.h"

struct IsaScope {
  prm::CpuIsa saved = prm::cpu_isa_active();
  explicit IsaScope(prm::CpuIsa isa) { prm::set_cpu_isa(isa); }
  ~IsaScope() { prm::set_cpu_isa(saved); }
};

struct ThreadScope {
  int saved = omp_get_max_threads();
  explicit ThreadScope(int n) { omp_set_num_threads(n); }
  ~ThreadScope() { omp_set_num_threads(saved); }
};

// check() once on each instruction-set path this CPU supports, that path active.
template <class F>
void for_each_cpu_isa(F&& check) {
  for (prm::CpuIsa isa : {prm::CpuIsa::avx512, prm::CpuIsa::avx2, prm::CpuIsa::scalar}) {
    if (!prm::cpu_isa_supported(isa)) {
      MESSAGE("skipped: this CPU lacks ", prm::cpu_isa_name(isa));
      continue;
    }
    CAPTURE(prm::cpu_isa_name(isa));
    const IsaScope scope(isa);
    check();
  }
}
