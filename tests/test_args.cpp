// The command-line parser (apps/args.{h,cpp}) as users meet it, through the `prm` program
// (PRM_BIN, set by `make test`): a flag where a value is expected is an error (a value that
// starts with "--" is given as --flag=value), --flag=value works, errors carry the command's
// prefix once, and choices are checked by the parser with one line naming the flag.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "helpers.h"

namespace fs = std::filesystem;

namespace {

using Run = CommandResult;

// Runs `prm <args>` with `dir` as the working directory.
Run run_prm(const std::string& args, const fs::path& dir) {
  return run_command("cd '" + dir.string() + "' && '" + prm_bin() + "' " + args);
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("prm_args_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// One error line: "prm <command>: error: <message>", the prefix once, a non-zero exit.
void check_one_error(const Run& r, const std::string& command, const std::string& message) {
  CHECK(r.exit_code == 1);
  CHECK(r.err == "prm " + command + ": error: " + message + "\n");
  CHECK(count_of(r.err, "prm " + command + ":") == 1);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

}  // namespace

TEST_CASE("args: a flag where a value is expected is an error, not the value") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh_dir("flag_as_value");
  // Before: a synthetic dataset was written into a folder named "--help".
  Run r = run_prm("synth --out --help", dir);
  check_one_error(r, "synth",
                  "--out needs a value, got the flag '--help' (write --out=--help if that is the "
                  "value)");
  CHECK_FALSE(fs::exists(dir / "--help"));
  r = run_prm("synth --out --train 1", dir);
  check_one_error(r, "synth",
                  "--out needs a value, got the flag '--train' (write --out=--train if that is "
                  "the value)");
  CHECK_FALSE(fs::exists(dir / "--train"));
  // The last flag without its value.
  check_one_error(run_prm("synth --train 1 --out", dir), "synth", "--out needs a value");
  // An empty value.
  check_one_error(run_prm("synth --out=", dir), "synth", "--out needs a value, got an empty one");
  check_one_error(run_prm("synth --out ''", dir), "synth", "--out needs a value, got an empty one");
}

TEST_CASE("args: --flag=value, including a value that starts with --, and negative numbers") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh_dir("inline");
  Run r = run_prm("synth --out=--odd-name --train=1 --val=1 --size=32 --classes=2", dir);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(fs::is_directory(dir / "--odd-name" / "ImageSets" / "Main"));
  CHECK(r.out.find("(1 train, 1 val)") != std::string::npos);
  // A value that starts with a single '-' is a value: the number is read (and refused by synth's
  // own check, which proves it got there), not taken for a flag.
  r = run_prm("synth --out d --train -3", dir);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("needs a value") == std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  // A switch takes no value.
  check_one_error(run_prm("eval --data x --pred y --skip-bad=1", dir), "eval",
                  "--skip-bad is a switch and takes no value");
}

TEST_CASE("args: errors carry the command's prefix once") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh_dir("prefix");
  check_one_error(run_prm("synth --bogus 1", dir), "synth",
                  "unknown flag --bogus (see prm synth --help)");
  check_one_error(run_prm("synth", dir), "synth",
                  "missing required flag --out (see prm synth --help)");
  check_one_error(run_prm("synth stray", dir), "synth",
                  "unexpected argument 'stray' (flags are --long-names; see prm synth --help)");
  check_one_error(run_prm("synth --out d --train many", dir), "synth",
                  "--train expects an integer, got 'many'");
  check_one_error(run_prm("synth --out d --train 99999999999999999999999", dir), "synth",
                  "--train expects an integer, got '99999999999999999999999'");
  check_one_error(run_prm("eval --data x --pred y --tolerance wide", dir), "eval",
                  "--tolerance expects a number, got 'wide'");
}

TEST_CASE("args: choices are checked by the parser, before any work") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh_dir("choices");
  const std::string archs = "resnet18, resnet34, resnet50, resnet101";
  check_one_error(run_prm("bench --only backward", dir), "bench",
                  "--only must be one of forward, train, prm, allreduce, gemm, peak; got 'backward'");
  check_one_error(run_prm("bench --peak-grad max", dir), "bench",
                  "--peak-grad must be one of official, mean; got 'max'");
  check_one_error(run_prm("bench --conv-engine winograd", dir), "bench",
                  "--conv-engine must be one of native, cudnn; got 'winograd'");
  check_one_error(run_prm("bench --arch resnet7", dir), "bench",
                  "--arch must be one of " + archs + "; got 'resnet7'");
  check_one_error(run_prm("bench --device tpu", dir), "bench",
                  "--device must be one of cpu, cuda; got 'tpu'");
  // int64 is a dtype, but not one forward computes in. The choice is checked while parsing, so
  // the missing --weights is not reached.
  check_one_error(run_prm("forward --arch resnet18 --dtype int64", dir), "forward",
                  "--dtype must be one of float32, float64; got 'int64'");
  check_one_error(run_prm("forward --arch vgg16", dir), "forward",
                  "--arch must be one of " + archs + "; got 'vgg16'");
  check_one_error(run_prm("graph --arch resnet152", dir), "graph",
                  "--arch must be one of " + archs + "; got 'resnet152'");
  check_one_error(run_prm("train --data d --out o --peak-grad sum", dir), "train",
                  "--peak-grad must be one of official, mean; got 'sum'");
  check_one_error(run_prm("train --data d --out o --device gpu", dir), "train",
                  "--device must be one of cpu, cuda; got 'gpu'");
  check_one_error(run_prm("infer --arch alexnet", dir), "infer",
                  "--arch must be one of " + archs + "; got 'alexnet'");
  check_one_error(run_prm("gradcheck --device metal", dir), "gradcheck",
                  "--device must be one of cpu, cuda; got 'metal'");
  // Nothing was started: no run folder.
  CHECK_FALSE(fs::exists(dir / "o"));
  // The help lists the choices and the defaults.
  const Run help = run_prm("bench --help", dir);
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("--only forward|train|prm") != std::string::npos);
  CHECK(help.out.find("--peak-grad official|mean") != std::string::npos);
  CHECK(help.out.find("(default: official)") != std::string::npos);
  CHECK(help.out.find("--arch resnet18|resnet34|resnet50|resnet101") != std::string::npos);
}
