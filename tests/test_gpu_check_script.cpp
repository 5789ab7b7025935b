// tools/gpu_check.sh is run once per lent GPU session, with no second chance: these cases check
// here, without a GPU, the parts of it that can go wrong before the GPU is even reached.
//  * its build command on a machine without OpenMPI and without a package registry
//    (tests/gpu_check_build_test.sh: a PATH without mpicc and with an apt-get that fails);
//  * its e2e step with the CPU as the second device, and tools/compare_runs.py's verdicts on
//    planted differences (tests/compare_runs_test.sh, needs PRM_BIN and python3);
//  * tools/ncu_summary.py, which reads the profile step's capture (tests/ncu_summary_test.sh),
//    and tools/bench_table.py, which makes its tables of ratios (tests/bench_table_test.sh).
// Both are shell scripts run from the repository root, like the suite (make test). A missing tool
// makes a case skip itself with a "skipped:" message. About 2 s and 10-20 s on two cores;
// tools/mutate.py can leave them out with --doctest-args=-tce='gpu_check*' (no mutant in src/
// changes what they compare: both sides of the e2e step run the same binary).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "helpers.h"

namespace {

bool have(const std::string& program) {
  return std::system(("command -v " + program + " > /dev/null 2>&1").c_str()) == 0;
}

// Skips (with the reason) unless every program is on the PATH and every file is present.
bool ready(std::initializer_list<const char*> programs, std::initializer_list<const char*> files) {
  for (const char* p : programs) {
    if (!have(p)) {
      MESSAGE("skipped: no " << p << " on the PATH");
      return false;
    }
  }
  for (const char* f : files) {
    if (!std::filesystem::exists(f)) {
      MESSAGE("skipped: " << f << " not found (run the tests from the repository root)");
      return false;
    }
  }
  return true;
}

// Runs a test script (its command line), which must exit 0; its output is shown when it does not.
void check_script_passes(const std::string& command) {
  const CommandResult r = run_command(command);
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code == 0);
}

}  // namespace

TEST_CASE("gpu_check: without mpicc the build passes USE_MPI=0, and make deps installs nothing") {
  if (!ready({"bash", "make", "timeout"},
             {"tests/gpu_check_build_test.sh", "tools/gpu_check.sh", "Makefile"}))
    return;
  check_script_passes("timeout 60 bash tests/gpu_check_build_test.sh");
}

TEST_CASE("gpu_check: the e2e step matches on two CPU runs; compare_runs.py catches planted "
          "differences") {
  const char* bin = std::getenv("PRM_BIN");
  if (!bin) {
    MESSAGE("skipped: PRM_BIN not set (make test sets it)");
    return;
  }
  if (!ready({"bash", "python3", "timeout"},
             {"tests/compare_runs_test.sh", "tools/compare_runs.py", "tools/gpu_check.sh"}))
    return;
  check_script_passes("PRM_BIN='" + std::string(bin) +
                      "' timeout 180 bash tests/compare_runs_test.sh");
}

TEST_CASE("gpu_check: ncu_summary.py sums a made-up ncu capture per kernel as worked out by hand") {
  if (!ready({"bash", "python3", "timeout"}, {"tests/ncu_summary_test.sh", "tools/ncu_summary.py"}))
    return;
  check_script_passes("timeout 60 bash tests/ncu_summary_test.sh");
}

TEST_CASE("gpu_check: bench_table.py's medians and ratios on made-up rows, worked out by hand") {
  if (!ready({"bash", "python3", "timeout"}, {"tests/bench_table_test.sh", "tools/bench_table.py"}))
    return;
  check_script_passes("timeout 60 bash tests/bench_table_test.sh");
}
