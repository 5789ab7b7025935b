// `mpirun -np R prm train` as users run it (needs PRM_BIN, a build with MPI and mpirun on the
// PATH; each case says when it skipped). The references are the one-process runs of the same
// command: with --sync-bn R ranks must give the one-process weights up to rounding, without it the
// weights of one process that splits each batch like the ranks (--micro-batches R), exactly.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "data/safetensors.h"
#include "helpers.h"

using namespace prm;
namespace fs = std::filesystem;

namespace {

using Outcome = CommandResult;

// Runs a shell command line in `dir` with a time limit (a hang fails the test, exit code 124).
Outcome shell(const std::string& line, const fs::path& dir) {
  return run_command("cd " + dir.string() + " && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 " +
                     "timeout 180 " + line);
}

// Under `make asan` the ranks run without LeakSanitizer: OpenMPI's components (dlopen'ed, closed
// at exit) leave allocations LSan reports but cannot attribute. Our own code's leaks are checked
// by the one-process runs of the same tests.
std::string mpirun(int ranks, const std::string& extra = "") {
  return "env ASAN_OPTIONS=\"$ASAN_OPTIONS:detect_leaks=0\" mpirun --allow-run-as-root "
         "--oversubscribe -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS -x ASAN_OPTIONS " +
         extra + " -np " + std::to_string(ranks) + " ";
}

bool mpi_ready() {
  if (!std::getenv("PRM_BIN")) {
    MESSAGE("skipped: PRM_BIN not set (make test sets it)");
    return false;
  }
#if !PRM_USE_MPI
  MESSAGE("skipped: built without MPI (USE_MPI=0)");
  return false;
#else
  if (std::getenv("PRM_TEST_NO_MPIRUN")) {
    MESSAGE("skipped: PRM_TEST_NO_MPIRUN is set (tools/mutate.py: no catch may need mpirun)");
    return false;
  }
  if (std::system("command -v mpirun > /dev/null 2>&1") != 0) {
    MESSAGE("skipped: no mpirun on the PATH (make deps installs OpenMPI)");
    return false;
  }
  return true;
#endif
}

// A synthetic VOC set, 20 training images, made once per test binary.
const fs::path& dist_data() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("prm_test_dist_cli_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    const Outcome o = shell(prm_bin() +
                                " synth --out data --train 20 --val 4 --size 64 "
                                "--classes 3 --seed 7",
                            d);
    REQUIRE_MESSAGE(o.exit_code == 0, o.err);
    return d;
  }();
  return dir;
}

const char* kFlags =
    " train --data data --arch resnet18 --width 8 --size 64 --batch 5 --lr 0.05 --workers 1 "
    "--seed 3 --val-split none --backbone-lr-mult 0.01";

// Largest per-tensor max |a - b| / max |a| over the tensors (parameters only when asked).
double weights_difference(const fs::path& a, const fs::path& b, bool params_only) {
  const SafetensorsContents x = load_safetensors(a.string()), y = load_safetensors(b.string());
  REQUIRE(x.tensors.size() == y.tensors.size());
  double worst = 0;
  for (const auto& [name, t] : x.tensors) {
    if (params_only && (name.find("running_") != std::string::npos ||
                        name.find("num_batches") != std::string::npos))
      continue;
    REQUIRE(y.tensors.count(name));
    const std::vector<double> u = t.to_vector(), v = y.tensors.at(name).to_vector();
    REQUIRE(u.size() == v.size());
    double scale = 1e-30, diff = 0;
    for (size_t i = 0; i < u.size(); ++i) {
      scale = std::max(scale, std::abs(u[i]));
      diff = std::max(diff, std::abs(u[i] - v[i]));
    }
    worst = std::max(worst, diff / scale);
  }
  return worst;
}


}  // namespace

TEST_CASE(
    "mpirun: 2 ranks with --sync-bn train the one-process weights; without it, the "
    "weights of one process with 2 micro-batches") {
  if (!mpi_ready()) return;
  const fs::path& d = dist_data();
  const std::string p = prm_bin();
  // 20 images in batches of 5: 4 steps an epoch, the ranks' parts are 3 and 2.
  for (const char* run : {"one", "two_sync", "two", "micro"}) fs::remove_all(d / run);
  Outcome o = shell(p + kFlags + " --epochs 2 --sync-bn --out one", d);
  REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  o = shell(mpirun(2) + p + kFlags + " --epochs 2 --sync-bn --out two_sync", d);
  REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  o = shell(mpirun(2) + p + kFlags + " --epochs 2 --out two", d);
  REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  o = shell(p + kFlags + " --epochs 2 --micro-batches 2 --out micro", d);
  REQUIRE_MESSAGE(o.exit_code == 0, o.err);

  const double sync =
      weights_difference(d / "one/weights.safetensors", d / "two_sync/weights.safetensors", false);
  CHECK(sync < 1e-5);  // running buffers included: the statistics are the global batch's
  // Without --sync-bn each rank normalises with its own part: the same as one process that
  // splits the batch the same way, to the bit (same sums in the same order) ...
  CHECK(weights_difference(d / "micro/weights.safetensors", d / "two/weights.safetensors", true) ==
        0.0);
  // ... and visibly not the global-statistics run: the comparison above can fail.
  CHECK(weights_difference(d / "one/weights.safetensors", d / "two/weights.safetensors", true) >
        100 * std::max(sync, 1e-9));
}

TEST_CASE("mpirun: a run resumes with another number of ranks") {
  if (!mpi_ready()) return;
  const fs::path& d = dist_data();
  const std::string p = prm_bin();
  for (const char* run : {"whole2", "split"}) fs::remove_all(d / run);
  Outcome o = shell(mpirun(2) + p + kFlags + " --epochs 2 --sync-bn --out whole2", d);
  REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  o = shell(mpirun(2) + p + kFlags + " --epochs 1 --sync-bn --out split", d);
  REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  o = shell(p + " train --resume split --epochs 2", d);  // one process finishes it
  REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  CHECK(weights_difference(d / "whole2/weights.safetensors", d / "split/weights.safetensors",
                           false) < 1e-5);
  o = shell(mpirun(3) + p + " train --resume split --epochs 3", d);  // and three ranks go on
  CHECK_MESSAGE(o.exit_code == 0, o.err);
}

TEST_CASE("mpirun: bad input stops every rank with a clear error, never a hang") {
  if (!mpi_ready()) return;
  const fs::path& d = dist_data();
  const std::string p = prm_bin();
  for (const char* run : {"many", "differ", "killed", "badimg", "bad"}) fs::remove_all(d / run);

  SUBCASE("more ranks than images in a batch: every rank says so") {
    const Outcome o = shell(mpirun(3) + p + kFlags + " --batch 2 --epochs 1 --out many", d);
    CHECK(o.exit_code != 0);
    CHECK_MESSAGE(count_of(o.err, "started with 3 ranks but --batch is 2") == 3, o.err);
  }
  SUBCASE("ranks that disagree on the configuration") {
    const std::string a = p + kFlags + " --epochs 1 --out differ";
    const Outcome o = shell(mpirun(1) + a + " : -np 1 " + a + " --lr 0.1", d);
    CHECK(o.exit_code != 0);
    CHECK_MESSAGE(o.err.find("rank 1: the configuration differs from rank 0's: lr (0.1 here, "
                             "0.05 on rank 0)") != std::string::npos,
                  o.err);
    CHECK_MESSAGE(o.err.find("rank 0: stopping because rank(s) 1 failed") != std::string::npos,
                  o.err);
    CHECK_FALSE(fs::exists(d / "differ/checkpoint.safetensors"));
  }
  SUBCASE("a rank that dies: the others stop, the last checkpoint stays intact") {
    // Rank 1 dies like a killed process at step 6 (epoch 2): the epoch-1 checkpoint stays.
    const Outcome o = shell(mpirun(2) + p + kFlags + " --epochs 3 --out killed --test-kill-rank 1:6",
                            d);
    CHECK(o.exit_code != 0);
    CHECK(o.exit_code != 124);  // not the time limit
    CHECK_MESSAGE(
        o.err.find("prm train (rank 0): stopped: another rank failed") != std::string::npos, o.err);
    const SafetensorsContents ck = load_safetensors((d / "killed/checkpoint.safetensors").string());
    CHECK(ck.metadata.at("epoch") == "1");
    const Outcome r = shell(p + " train --resume killed --epochs 2", d);
    CHECK_MESSAGE(r.exit_code == 0, r.err);
  }
  SUBCASE("an image that cannot be decoded on one rank") {
    fs::remove_all(d / "bad");
    fs::copy(d / "data", d / "bad", fs::copy_options::recursive);
    std::ifstream list(d / "bad/ImageSets/Main/train.txt");
    std::string id;
    std::getline(list, id);
    std::ofstream(d / "bad/JPEGImages" / (id + ".jpg"), std::ios::trunc) << "not a jpeg";
    const Outcome o = shell(mpirun(2) + p +
                                " train --data bad --arch resnet18 --width 8 --size 64 --batch 5 "
                                "--workers 1 --val-split none --epochs 1 --out badimg",
                            d);
    CHECK(o.exit_code != 0);
    CHECK_MESSAGE(count_of(o.err, id + ".jpg: not an image format prm reads") == 1, o.err);
    CHECK_MESSAGE(o.err.find("stopping because rank(s)") != std::string::npos, o.err);
  }
}

TEST_CASE("mpirun: one rank goes through the all-reduce path and trains the one-process weights") {
  if (!mpi_ready()) return;
  const fs::path& d = dist_data();
  const std::string p = prm_bin();
  for (const char* run : {"plain1", "mpi1"}) fs::remove_all(d / run);
  Outcome o = shell(p + kFlags + " --epochs 1 --out plain1", d);
  REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  o = shell(mpirun(1) + p + kFlags + " --epochs 1 --out mpi1", d);
  REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  // Buckets in and out, a one-rank all-reduce, the loss seeded with 5/5: no change to any bit.
  CHECK(weights_difference(d / "plain1/weights.safetensors", d / "mpi1/weights.safetensors",
                           false) == 0.0);
}

TEST_CASE("mpirun: SIGUSR1 stops every rank after the same step with a checkpoint (exit 130)") {
  if (!mpi_ready()) return;
  const fs::path& d = dist_data();
  const std::string p = prm_bin();
  fs::remove_all(d / "usr1");
  // mpirun in the background; once the first epoch's metrics line is written, SIGUSR1 to mpirun
  // (which forwards it to every rank); then mpirun's exit status.
  const std::string script = "( " + mpirun(2) + p + kFlags +
                             " --epochs 500 --out usr1 & echo $! > usr1.pid; wait $!; "
                             "echo $? > usr1.rc ) ; true";
  const std::string driver = "bash -c '(" + script +
                             ") & for i in $(seq 1 900); do [ -s usr1/metrics.jsonl ] && break; "
                             "sleep 0.1; done; kill -USR1 $(cat usr1.pid); wait'";
  const Outcome o = shell(driver, d);
  std::ifstream rc_file(d / "usr1.rc");
  int rc = -1;
  rc_file >> rc;
  CHECK_MESSAGE(rc == 130, o.err);
  CHECK_MESSAGE(o.err.find("interrupted: checkpoint written to usr1/checkpoint.safetensors") !=
                    std::string::npos,
                o.err);
  const SafetensorsContents ck = load_safetensors((d / "usr1/checkpoint.safetensors").string());
  CHECK(std::stoi(ck.metadata.at("epoch")) >= 1);
  CHECK(std::stoi(ck.metadata.at("epoch")) < 500);
  const Outcome r = shell(
      p + " train --resume usr1 --epochs " + std::to_string(std::stoi(ck.metadata.at("epoch")) + 1),
      d);
  CHECK_MESSAGE(r.exit_code == 0, r.err);
}
