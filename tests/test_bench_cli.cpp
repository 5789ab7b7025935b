// `prm bench` keeps the JSON-lines contract of docs/formats.md: one object per measurement on stdout, each
// with bench, arch, size, batch, device, median_s, min_s, runs, peak_mem_mb; PRM rows with peaks;
// --precision recorded in every row (bf16 too: it runs, with bf16 GEMM inputs), an unknown
// precision refused with one line and a non-zero exit.
#include <algorithm>
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "data/json.h"
#include "helpers.h"

using namespace prm;

namespace {

std::vector<Json> json_lines(const std::string& text) {
  std::vector<Json> rows;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    const size_t brace = line.find("{\"bench\"");
    if (brace != std::string::npos) rows.push_back(parse_json(line.substr(brace), "bench output"));
    start = end + 1;
  }
  return rows;
}

}  // namespace

TEST_CASE("prm bench prints the JSON lines of docs/formats.md for every measurement, with the precision") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const CommandResult c = run_command(prm_bin() +
                                      " bench --arch resnet18 --width 8 --size 64 --batch 2 "
                                      "--runs 2 --warmup 0 --peaks 3 --precision tf32");
  REQUIRE_MESSAGE(c.exit_code == 0, c.err);
  const std::vector<Json> rows = json_lines(c.out);
  std::map<std::string, const Json*> by_name;
  for (const Json& r : rows) by_name[r.at("bench").as_string()] = &r;
  for (const char* name :
       {"forward", "train_step", "prm_forward", "prm_batched", "prm_per_peak", "allreduce"}) {
    CAPTURE(name);
    REQUIRE(by_name.count(name));
    const Json& r = *by_name[name];
    CHECK(r.at("arch").as_string() == "resnet18");
    CHECK(r.at("size").as_int64() == 64);
    CHECK(r.at("device").as_string() == "cpu");
    CHECK(r.at("runs").as_int64() == 2);
    CHECK(r.at("median_s").as_double() >= r.at("min_s").as_double());
    CHECK(r.at("min_s").as_double() > 0);
    CHECK(r.at("peak_mem_mb").as_double() > 0);
    CHECK(r.find("batch") != nullptr);
    CHECK(r.at("precision").as_string() == "tf32");
  }
  CHECK(by_name["forward"]->at("batch").as_int64() == 2);
  CHECK(by_name["prm_batched"]->at("peaks").as_int64() == 3);
  CHECK(by_name["prm_per_peak"]->at("peaks").as_int64() == 3);
  CHECK(by_name["allreduce"]->at("ranks").as_int64() == 1);
  CHECK(by_name["allreduce"]->at("bytes").as_double() > 0);

  // bf16 runs a training step (GEMM inputs rounded to bf16 on the CPU too) and says so.
  const CommandResult bf16 = run_command(prm_bin() +
                                         " bench --arch resnet18 --width 8 --size 64 --batch 1 "
                                         "--runs 1 --warmup 0 --only train --precision bf16");
  REQUIRE_MESSAGE(bf16.exit_code == 0, bf16.err);
  const std::vector<Json> bf16_rows = json_lines(bf16.out);
  REQUIRE(!bf16_rows.empty());
  for (const Json& r : bf16_rows) CHECK(r.at("precision").as_string() == "bf16");

  const CommandResult fp16 =
      run_command(prm_bin() + " bench --arch resnet18 --width 8 --size 64 --precision fp16");
  CHECK(fp16.exit_code != 0);
  CHECK_MESSAGE(fp16.err.find("fp16") != std::string::npos, fp16.err);
  CHECK(json_lines(fp16.out).empty());
}

// --only gemm: one row per distinct convolution GEMM (forward, input and weight gradients) with
// its shape, GFLOP/s and the fraction of the peak measured in the same run, then gemm_total;
// --only peak: a row per supported instruction set, one thread and all. The contract's fields
// are in every row, and the path forced by PRM_CPU_ISA is the one reported.
TEST_CASE("prm bench --only gemm and --only peak print GFLOP/s rows with the instruction set") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const CommandResult c = run_command("PRM_CPU_ISA=scalar " + prm_bin() +
                                      " bench --arch resnet18 --width 8 --size 64 --runs 1 "
                                      "--warmup 0 --only gemm");
  REQUIRE_MESSAGE(c.exit_code == 0, c.err);
  const std::vector<Json> rows = json_lines(c.out);
  // resnet18: conv1, 8 blocks x 2 convs, 3 downsamples, the classifier = 21 convolutions; three
  // products each, fewer distinct ones, then one total.
  REQUIRE(rows.size() >= 10);
  std::map<std::string, int> products;
  for (const Json& r : rows) {
    for (const char* field : {"arch", "size", "batch", "device", "median_s", "min_s", "runs",
                              "peak_mem_mb", "cpu_features", "isa", "gflops", "fraction_of_peak"})
      CHECK_MESSAGE(r.find(field) != nullptr, field);
    CHECK(r.at("isa").as_string() == "scalar");
    CHECK(r.at("gflops").as_double() > 0);
    if (r.at("bench").as_string() == "gemm") {
      ++products[r.at("product").as_string()];
      CHECK(r.at("M").as_int64() * r.at("N").as_int64() * r.at("K").as_int64() > 0);
    }
  }
  CHECK(products["forward"] > 0);
  CHECK(products["input_grad"] > 0);
  CHECK(products["weight_grad"] > 0);
  CHECK(rows.back().at("bench").as_string() == "gemm_total");

  // The large shapes' total (M, N, K all >= large_min_dim): its GFLOP recomputed from the rows
  // (2 M N K per layer), on a network whose layers 3 and 4 have such shapes at 256 x 256.
  const CommandResult big = run_command(prm_bin() +
                                        " bench --arch resnet18 --size 256 --runs 1 --warmup 0 "
                                        "--only gemm");
  REQUIRE_MESSAGE(big.exit_code == 0, big.err);
  const std::vector<Json> big_rows = json_lines(big.out);
  REQUIRE(!big_rows.empty());
  const Json& total = big_rows.back();
  REQUIRE(total.at("bench").as_string() == "gemm_total");
  const int64_t min_dim = total.at("large_min_dim").as_int64();
  CHECK(min_dim == 256);
  double large = 0, all = 0, large_seconds = 0;
  for (const Json& r : big_rows) {
    if (r.at("bench").as_string() != "gemm") continue;
    // A thread cannot do more per CPU second than the peak loop does (a margin for the clocks):
    // the process clock, read before, undercounted the other threads' time on short GEMMs.
    CHECK(r.at("cpu_fraction_of_peak").as_double() < 1.1);
    const double layers = static_cast<double>(r.at("layers").as_int64());
    const int64_t M = r.at("M").as_int64(), N = r.at("N").as_int64(), K = r.at("K").as_int64();
    const double gflop = 2.0 * M * N * K * layers / 1e9;
    all += gflop;
    if (std::min({M, N, K}) >= min_dim) {
      large += gflop;
      large_seconds += r.at("median_s").as_double() * layers;
    }
  }
  CHECK(large > 0);
  CHECK(large < all);
  CHECK(total.at("large_gflop").as_double() == doctest::Approx(large).epsilon(1e-9));
  CHECK(total.at("gflop").as_double() == doctest::Approx(all).epsilon(1e-9));
  CHECK(total.at("large_gflops").as_double() ==
        doctest::Approx(large / large_seconds).epsilon(1e-6));
  CHECK(total.at("large_fraction_of_peak").as_double() ==
        doctest::Approx(total.at("large_gflops").as_double() /
                        total.at("peak_gflops").as_double())
            .epsilon(1e-9));

  const CommandResult peak = run_command(prm_bin() + " bench --only peak --runs 1");
  REQUIRE_MESSAGE(peak.exit_code == 0, peak.err);
  std::map<std::string, int> isas;
  for (const Json& r : json_lines(peak.out)) {
    CHECK(r.at("bench").as_string() == "peak");
    CHECK(r.at("gflops").as_double() > 0);
    ++isas[r.at("isa").as_string()];
  }
  CHECK(isas["scalar"] >= 1);
  CHECK(isas.size() >= 1);
}
