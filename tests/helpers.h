// Test helpers shared by the suites.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/tensor.h"

// At the top of every CUDA test case: without a GPU the case reports itself skipped under
// `make test`, and fails under `make test-gpu` (which sets PRM_REQUIRE_GPU=1).
#define PRM_REQUIRE_CUDA_OR_SKIP()                                                   \
  do {                                                                               \
    if (!::prm::cuda_available()) {                                                  \
      if (std::getenv("PRM_REQUIRE_GPU")) FAIL("no CUDA device visible (test-gpu)"); \
      MESSAGE("skipped: no CUDA device visible");                                    \
      return;                                                                        \
    }                                                                                \
  } while (0)

// Element-wise closeness: |a - e| <= atol + rtol * |e|, reporting the first mismatch.
inline void check_close(const std::vector<double>& actual, const std::vector<double>& expected,
                        double rtol, double atol) {
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    if (!(std::abs(actual[i] - expected[i]) <= atol + rtol * std::abs(expected[i]))) {
      FAIL_CHECK("element " << i << ": got " << actual[i] << ", expected " << expected[i]);
      return;
    }
  }
}

inline void check_close(const prm::Tensor& actual, const std::vector<double>& expected,
                        double rtol = 1e-6, double atol = 1e-9) {
  check_close(actual.to_vector(), expected, rtol, atol);
}

// The bytes of the values as they lie in memory (little-endian here), to build files by hand.
template <typename T>
std::string raw_bytes(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) out.append(reinterpret_cast<const char*>(&v), sizeof(T));
  return out;
}
