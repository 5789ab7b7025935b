// Test helpers shared by the suites.
#pragma once
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/error.h"
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

// ---- files and errors ----

// A fresh, empty folder under the temp dir, named for the test and this process.
inline std::filesystem::path fresh_temp_dir(const std::string& name) {
  const std::filesystem::path p = std::filesystem::temp_directory_path() /
                                  ("prm_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

// Writes bytes as they are (no atomic rename: test inputs, often deliberately broken).
inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// The message of the prm::Error that f throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const prm::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// ---- running the `prm` program (PRM_BIN, set by `make test`) and other commands ----

// In a test case that runs `prm`: without PRM_BIN the case reports itself skipped.
#define PRM_REQUIRE_BIN_OR_SKIP()                                        \
  do {                                                                   \
    if (!std::getenv("PRM_BIN")) {                                       \
      MESSAGE("skipped: PRM_BIN not set (make test sets it)");           \
      return;                                                            \
    }                                                                    \
  } while (0)

inline std::string prm_bin() { return std::filesystem::absolute(std::getenv("PRM_BIN")).string(); }

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out, err;
};

// Runs a shell command line, capturing its stdout and stderr (through files, so that neither
// can fill a pipe and block the other).
inline CommandResult run_command(const std::string& line) {
  static std::atomic<int> serial{0};
  const std::string base = (std::filesystem::temp_directory_path() /
                            ("prm_test_cmd_" + std::to_string(::getpid()) + "_" +
                             std::to_string(serial++)))
                               .string();
  const std::string out = base + ".out", err = base + ".err";
  const int status =
      std::system(("{ " + line + "\n} > '" + out + "' 2> '" + err + "'").c_str());
  auto slurp = [](const std::string& path) {
    std::stringstream ss;
    ss << std::ifstream(path).rdbuf();
    std::filesystem::remove(path);
    return ss.str();
  };
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// How many times `what` occurs in `text`.
inline size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}
