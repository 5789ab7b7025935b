// The `prm` program itself, run as a user runs it: `prm forward` on the PyTorch ResNet fixtures
// (tests/fixtures/resnet, made by tools/fixtures/make_resnet_fixtures.py), and bad input giving
// one clear line on stderr and a non-zero exit. `make test` sets PRM_BIN to the built program.
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <set>
#include <string>
#include <vector>

#include "data/files.h"
#include "data/npy.h"
#include "helpers.h"

using namespace prm;
namespace fs = std::filesystem;

namespace {

const char* kFixtures = "tests/fixtures/resnet/";

using RunResult = CommandResult;

// Runs `prm <args>` from the repository root (where the fixtures are).
RunResult run_prm(const std::string& args) { return run_command(prm_bin() + " " + args); }

fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("prm_cli_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Max |a - e| / max(max |e|, tiny): the per-tensor relative error the fixture tests use.
double relative_error(const Tensor& actual, const Tensor& expected) {
  REQUIRE(actual.shape() == expected.shape());
  std::vector<double> a = actual.to_vector(), e = expected.to_vector();
  double scale = 1e-30, worst = 0;
  for (double v : e) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - e[i]));
  return worst / scale;
}

}  // namespace

namespace {

void check_forward_against_fixtures(const std::string& device) {
  for (const char* net : {"resnet18", "resnet50"}) {
    for (const char* dtype : {"float32", "float64"}) {
      CAPTURE(net);
      CAPTURE(dtype);
      const fs::path dir = fresh_dir(std::string(net) + dtype);
      const std::string prefix = std::string(kFixtures) + net + "w4_";
      RunResult r = run_prm(std::string("forward --arch ") + net + " --weights " + prefix +
                                "weights.safetensors --input " + kFixtures + "input.npy" +
                                " --output " + (dir / "crm.npy").string() + " --grad-output " +
                                kFixtures + "grad_output.npy --input-grad " +
                                (dir / "gx.npy").string() + " --dtype " + dtype +
                                " --device " + device);
      INFO(r.err);
      REQUIRE(r.exit_code == 0);
      const double tol = std::string(dtype) == "float64" ? 1e-5 : 1e-4;
      CHECK(relative_error(load_npy((dir / "crm.npy").string()), load_npy(prefix + "crm.npy")) <
            tol);
      CHECK(relative_error(load_npy((dir / "gx.npy").string()),
                           load_npy(prefix + "input_grad.npy")) < tol);
    }
  }
}

}  // namespace

TEST_CASE("prm forward matches the PyTorch fixtures (CRMs and input gradient)") {
  PRM_REQUIRE_BIN_OR_SKIP();
  check_forward_against_fixtures("cpu");
}

TEST_SUITE("cuda") {
  TEST_CASE("prm forward --device cuda matches the PyTorch fixtures") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    PRM_REQUIRE_BIN_OR_SKIP();
    check_forward_against_fixtures("cuda");
  }
}

TEST_CASE("prm forward: bad input is one clear line and a non-zero exit") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh_dir("bad");
  const std::string weights = std::string(kFixtures) + "resnet18w4_weights.safetensors";
  // A weights file cut in half.
  {
    std::ifstream in(weights, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(dir / "cut.safetensors", std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  // An input of the wrong shape: [1, 4, 8, 8].
  save_npy((dir / "bad_input.npy").string(), Tensor::zeros({1, 4, 8, 8}));

  struct Case {
    std::string args, must_name;
  };
  const std::string out = " --output " + (dir / "crm.npy").string();
  const Case cases[] = {
      {"forward --arch resnet18 --weights " + (dir / "cut.safetensors").string() + " --input " +
           kFixtures + "input.npy" + out,
       "cut.safetensors"},
      {"forward --arch resnet18 --weights " + weights + " --input " +
           (dir / "bad_input.npy").string() + out,
       "bad_input.npy"},
      {"forward --arch resnet50 --weights " + weights + " --input " + kFixtures + "input.npy" +
           out,
       "resnet18w4_weights.safetensors"},  // a ResNet-18 file loaded as ResNet-50
      {"forward --arch resnet18 --weights " + weights + " --input " + kFixtures +
           "no_such_file.npy" + out,
       "no_such_file.npy"},
      {"forward --arch resnet18 --weights " + weights, "--input"},
      {"forward --arch resnet18 --bogus 1", "--bogus"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.args);
    RunResult r = run_prm(c.args);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find(c.must_name) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);  // one line, no crash trace
  }
  CHECK_FALSE(fs::exists(dir / "crm.npy"));
}

// `prm graph`: a tiny ResNet-18 (width 4, 3 classes, 32x32). Counted by hand from the network:
// stem conv, bn + relu (one fused node), max-pool (3) + 8 basic blocks of conv, bn + relu, conv,
// bn + add + relu (32) + 3 downsample conv, bn pairs (6) + classifier conv (1) + the class
// scores' sum and mul_scalar (2) + the loss (1) = 45 nodes; 21 of them conv2d, 20 batch norms
// (9 fused with a ReLU, 8 with the residual add and a ReLU, 3 plain), no separate add or relu.
TEST_CASE("prm graph prints every node of a training step with its named backward function") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh_dir("graph");
  const fs::path out = dir / "graph.txt", dot = dir / "graph.dot";
  const std::string cmd = std::string(std::getenv("PRM_BIN")) +
                          " graph --arch resnet18 --size 32 --batch 2 --width 4 --classes 3 --dot " +
                          dot.string() + " > " + out.string() + " 2>/dev/null";
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::ifstream in(out);
  std::vector<std::string> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#' && line.find("node") == std::string::npos)
      rows.push_back(line);
  REQUIRE(rows.size() == 45);
  auto count = [&](const std::string& what) {
    return std::count_if(rows.begin(), rows.end(),
                         [&](const std::string& r) { return r.find(what) != std::string::npos; });
  };
  CHECK(rows.front().find("multilabel_soft_margin_backward") != std::string::npos);
  CHECK(rows.back().find("conv2d_backward_input/weight/bias") != std::string::npos);
  CHECK(count(" conv2d ") == 21);
  CHECK(count("batch_norm_backward") == 20);
  CHECK(count("max_pool2d_backward") == 1);
  CHECK(count(" batch_norm_relu ") == 9);
  CHECK(count(" batch_norm_add_relu ") == 8);
  CHECK(count(" batch_norm ") == 3);
  CHECK(count("add_backward") == 0);
  CHECK(count("relu_backward") == 0);
  std::ifstream dot_in(dot);
  std::stringstream dot_text;
  dot_text << dot_in.rdbuf();
  CHECK(dot_text.str().rfind("digraph backward {", 0) == 0);
  CHECK(dot_text.str().find("classifier.weight") != std::string::npos);
  const RunResult bad = run_prm("graph --arch resnet7");
  CHECK(bad.exit_code != 0);
}

// `prm forward --prm-dir`: the docs/formats.md contract on the PRM fixture (tests/fixtures/prm, made by
// tools/fixtures/make_prm_fixtures.py from a PyTorch re-implementation of the official method).
TEST_CASE("prm forward --prm-dir writes peaks, scores and PRMs as the PyTorch fixture") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh_dir("prm_dir");
  const std::string fx = "tests/fixtures/prm/";
  const double threshold = load_npy(fx + "threshold.npy").item();
  const RunResult r = run_prm("forward --arch resnet18 --weights " + fx +
                                  "weights.safetensors --input " + fx + "input.npy --output " +
                                  (dir / "crm.npy").string() + " --dtype float64 --prm-dir " +
                                  (dir / "prm").string() + " --peak-threshold " +
                                  std::to_string(threshold));
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const Tensor peaks = load_npy((dir / "prm" / "peaks.npy").string());
  CHECK(peaks.dtype() == DType::i64);
  check_close(peaks.to_vector(), load_npy(fx + "peaks.npy").to_vector(), 0, 0);
  const Tensor prms = load_npy((dir / "prm" / "prms.npy").string());
  CHECK(prms.dtype() == DType::f32);
  check_close(prms.to_vector(), load_npy(fx + "prms.npy").to_vector(), 1e-5, 1e-9);
  check_close(load_npy((dir / "prm" / "scores.npy").string()).to_vector(),
              load_npy(fx + "scores.npy").to_vector(), 1e-6, 1e-6);
  const RunResult none = run_prm("forward --arch resnet18 --weights " + fx +
                                     "weights.safetensors --input " + fx + "input.npy --output " +
                                     (dir / "crm.npy").string() + " --prm-dir " +
                                     (dir / "none").string() + " --peak-threshold 1e9");
  REQUIRE(none.exit_code == 0);
  CHECK(load_npy((dir / "none" / "prms.npy").string()).shape() == Shape{0, 96, 96});
}

// The main job end to end through the program, on a tiny synthetic set (seconds): prm synth,
// prm train, prm infer and prm eval --weights produce well-formed outputs.
TEST_CASE("prm synth, train, infer and eval --weights work together") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh_dir("end_to_end");
  const std::string data = (dir / "data").string(), run = (dir / "run").string();
  REQUIRE(run_prm("synth --out " + data + " --train 8 --val 4 --size 64 --classes 2")
              .exit_code == 0);
  const RunResult t = run_prm("train --data " + data + " --out " + run +
                                  " --arch resnet18 --width 4 --size 48 --batch 4 --epochs 1"
                                  " --workers 1");
  REQUIRE_MESSAGE(t.exit_code == 0, t.err);
  CHECK(t.err.find("img/s") != std::string::npos);  // the progress line
  const std::string net = " --arch resnet18 --size 48 --peak-threshold -1e9 --class-threshold -1e9";
  const RunResult inf = run_prm("infer --weights " + run + "/weights.safetensors --input " + data +
                                    "/JPEGImages/2012_000009.jpg --out " + (dir / "inf").string() +
                                    net);
  REQUIRE_MESSAGE(inf.exit_code == 0, inf.err);
  const std::string json = read_file_bytes((dir / "inf" / "2012_000009.json").string());
  CHECK(json.find("\"class_scores\"") != std::string::npos);
  CHECK(json.find("\"instances\"") != std::string::npos);
  CHECK(fs::exists(dir / "inf" / "2012_000009_instances.png"));
  const RunResult ev = run_prm("eval --weights " + run + "/weights.safetensors --data " + data +
                                   " --split val --out " + (dir / "eval").string() + net);
  REQUIRE_MESSAGE(ev.exit_code == 0, ev.err);
  for (const char* f : {"eval.json", "eval.md", "predictions/classification.txt",
                        "predictions/points.txt", "predictions/instances.txt"})
    CHECK_MESSAGE(fs::exists(dir / "eval" / f), f);
  const std::string report = read_file_bytes((dir / "eval" / "eval.json").string());
  CHECK(report.find("\"classification\"") != std::string::npos);
  // Both --pred and --weights, or neither: one clear line.
  CHECK(run_prm("eval --data " + data + " --split val").exit_code != 0);
  const RunResult wrong = run_prm("infer --weights " + run + "/weights.safetensors --input " +
                                      (dir / "nothing.jpg").string() + " --out " +
                                      (dir / "x").string() + net);
  CHECK(wrong.exit_code != 0);
  CHECK(wrong.err.find("nothing.jpg") != std::string::npos);
}

// tools/gpu_check.sh --prepare copies the stb headers the code includes (read from the sources),
// so a GPU machine without Debian's stb still builds: its list must match every stb include.
TEST_CASE("gpu_check.sh lists every stb header the sources include") {
  std::set<std::string> included;
  for (const char* root : {"src", "apps", "tests"})
    for (const auto& e : fs::recursive_directory_iterator(root)) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path());
      for (std::string line; std::getline(in, line);) {
        const size_t at = line.find("#include");
        const size_t stb = line.find("stb_", at == std::string::npos ? 0 : at);
        if (at != 0 || stb == std::string::npos) continue;
        const size_t end = line.find(".h", stb);
        if (end != std::string::npos) included.insert(line.substr(stb, end + 2 - stb));
      }
    }
  REQUIRE(included.count("stb_image.h"));
  FILE* p = popen("tools/gpu_check.sh --list-stb", "r");
  REQUIRE(p != nullptr);
  std::set<std::string> listed;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) {
    std::string s(buf);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    if (!s.empty()) listed.insert(s);
  }
  pclose(p);
  CHECK(listed == included);
}

TEST_CASE("PRM_DENORMALS: keep and flush are taken, anything else is one line and exit 2") {
  PRM_REQUIRE_BIN_OR_SKIP();
  CHECK(run_command("PRM_DENORMALS=keep " + prm_bin() + " --version").exit_code == 0);
  CHECK(run_command("PRM_DENORMALS=flush " + prm_bin() + " --version").exit_code == 0);
  const RunResult bad = run_command("PRM_DENORMALS=fast " + prm_bin() + " --version");
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("PRM_DENORMALS is 'fast'; use keep or flush") != std::string::npos);
}
