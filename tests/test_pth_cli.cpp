// .pth files through the `prm` program, as a user gives them: `prm forward --weights X.pth` gives
// the CRMs of the same weights as .safetensors bit for bit, `prm train --pretrained X.pth` trains
// to the same weights, `prm convert` writes them as .safetensors, and a malicious file is one line
// on stderr, a non-zero exit, and nothing run. `make test` sets PRM_BIN.
#include <cstring>
#include <filesystem>
#include <string>

#include "data/files.h"
#include "data/safetensors.h"
#include "helpers.h"

using namespace prm;
namespace fs = std::filesystem;

namespace {

const std::string kDir = "tests/fixtures/pth/";

CommandResult run_prm(const std::string& args) { return run_command(prm_bin() + " " + args); }

void check_same_tensors(const TensorMap& got, const TensorMap& want) {
  REQUIRE(got.size() == want.size());
  for (const auto& [name, w] : want) {
    CAPTURE(name);
    REQUIRE(got.count(name) == 1);
    const Tensor& g = got.at(name);
    REQUIRE(g.shape() == w.shape());
    REQUIRE(g.dtype() == w.dtype());
    CHECK(std::memcmp(g.raw_data(), w.raw_data(), w.numel() * dtype_size(w.dtype())) == 0);
  }
}

}  // namespace

TEST_CASE("pth cli: prm forward --weights X.pth gives the CRMs of the .safetensors bit for bit") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh_temp_dir("pth_forward");
  auto forward = [&](const std::string& weights, const std::string& out) {
    const CommandResult r = run_prm("forward --weights " + kDir + weights +
                                    " --input tests/fixtures/resnet/input.npy --output " +
                                    (dir / out).string());
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return read_file_bytes((dir / out).string());
  };
  const std::string want = forward("resnet18w2.safetensors", "twin.npy");
  REQUIRE(want.size() > 128);
  for (const char* pth : {"resnet18w2.pth", "resnet18w2_legacy.pth", "resnet18w2_wrapped.pth",
                          "resnet18w2_tar.pth"}) {
    CAPTURE(pth);
    CHECK(forward(pth, std::string(pth) + ".npy") == want);
  }
}

TEST_CASE("pth cli: prm train --pretrained X.pth trains to the weights of the .safetensors") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh_temp_dir("pth_train");
  const std::string data = (dir / "data").string();
  REQUIRE(run_prm("synth --out " + data + " --train 8 --val 2 --size 48 --classes 2 --seed 4")
              .exit_code == 0);
  auto train = [&](const std::string& pretrained, const std::string& run) {
    const CommandResult r =
        run_prm("train --data " + data + " --out " + (dir / run).string() + " --pretrained " +
                kDir + pretrained + " --arch resnet18 --width 2 --size 32 --batch 4 --epochs 1" +
                " --workers 1 --val-split none --seed 9");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return load_safetensors((dir / run / "weights.safetensors").string()).tensors;
  };
  const TensorMap want = train("resnet18w2.safetensors", "twin");
  check_same_tensors(train("resnet18w2.pth", "zip"), want);
  check_same_tensors(train("resnet18w2_legacy.pth", "legacy"), want);
  check_same_tensors(train("resnet18w2_tar.pth", "tar"), want);
  // (and the pretrained weights did matter: from scratch, training ends elsewhere)
  const CommandResult scratch = run_prm("train --data " + data + " --out " +
                                        (dir / "scratch").string() + " --arch resnet18 --width 2" +
                                        " --size 32 --batch 4 --epochs 1 --workers 1" +
                                        " --val-split none --seed 9");
  REQUIRE(scratch.exit_code == 0);
  const TensorMap alone = load_safetensors((dir / "scratch/weights.safetensors").string()).tensors;
  CHECK(alone.at("conv1.weight").to_vector() != want.at("conv1.weight").to_vector());
}

TEST_CASE("pth cli: prm convert writes any weights file as .safetensors, names kept") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh_temp_dir("pth_convert");
  const std::string out = (dir / "out.safetensors").string();
  const TensorMap twin = load_safetensors(kDir + "resnet18w2.safetensors").tensors;
  const std::string count = "prm convert: " + std::to_string(twin.size()) + " tensors";
  for (const char* in : {"resnet18w2.pth", "resnet18w2_legacy.pth", "resnet18w2_wrapped.pth",
                         "resnet18w2_tar.pth", "resnet18w2.safetensors"}) {
    CAPTURE(in);
    const CommandResult r = run_prm("convert " + kDir + in + " " + out);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find(count) != std::string::npos);
    // float16 and bfloat16 are float32 now: compare with the twin as the reader gives it.
    check_same_tensors(load_safetensors(out).tensors, twin);
  }
  CHECK(run_prm("convert --help").out.find("usage: prm convert IN OUT.safetensors") == 0);
  for (const std::string& bad :
       {"convert " + kDir + "resnet18w2.pth", "convert " + kDir + "resnet18w2.pth " + out + " x",
        "convert " + kDir + "resnet18w2.pth " + (dir / "out.pth").string(),
        "convert --force " + kDir + "resnet18w2.pth " + out}) {
    CAPTURE(bad);
    const CommandResult r = run_prm(bad);
    CHECK(r.exit_code == 1);
    CHECK(count_of(r.err, "\n") == 1);
  }
  CHECK(!fs::exists(dir / "out.pth"));
}

TEST_CASE("pth cli: a .pth that calls os.system is one line on stderr and runs nothing") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh_temp_dir("pth_evil_cli");
  const std::string evil = fs::absolute(kDir + "evil_system.pth").string();
  const std::string input = fs::absolute("tests/fixtures/resnet/input.npy").string();
  for (const std::string& args :
       {"forward --weights " + evil + " --input " + input + " --output crm.npy",
        "convert " + evil + " out.safetensors",
        "infer --weights " + evil + " --input " + input + " --out inf"}) {
    CAPTURE(args);
    const CommandResult r = run_command("cd " + dir.string() + " && " + prm_bin() + " " + args);
    CHECK(r.exit_code == 1);
    CHECK(count_of(r.err, "\n") == 1);
    CHECK(r.err.find("evil_system.pth") != std::string::npos);
    CHECK(r.err.find("'posix.system'") != std::string::npos);
    CHECK(fs::is_empty(dir));  // no marker, no output
  }
}
