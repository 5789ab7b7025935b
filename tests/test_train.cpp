// prm train end to end on a tiny synthetic VOC set (CPU, seconds): the loss goes down, resuming
// continues bitwise identically (after whole epochs and after an interrupt mid-epoch), a run
// killed while writing a checkpoint keeps the previous one, and bad runs fail with one clear line.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "data/files.h"
#include "data/safetensors.h"
#include "data/synth.h"
#include "helpers.h"
#include "layers/resnet.h"
#include "prm/train.h"
#include "prm/weights.h"

using namespace prm;
namespace fs = std::filesystem;

namespace {

const std::string& tiny_dataset() {
  static const std::string root = [] {
    const fs::path dir = fs::temp_directory_path() / ("prm_train_test_data_" + std::to_string(getpid()));
    fs::remove_all(dir);
    SynthOptions o;
    o.out = dir.string();
    o.train = 12;
    o.val = 4;
    o.size = 72;
    o.classes = 3;
    o.seed = 5;
    synthesize_voc(o);
    return o.out;
  }();
  return root;
}

TrainConfig tiny_config(const std::string& name, int64_t epochs) {
  TrainConfig c;
  c.data = tiny_dataset();
  c.arch = "resnet18";
  c.width = 4;
  c.size = 48;
  c.batch = 4;
  c.epochs = epochs;
  c.lr = 0.05;
  c.backbone_lr_mult = 1.0;
  c.workers = 1;
  c.seed = 3;
  const fs::path out =
      fs::temp_directory_path() / ("prm_train_test_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(out);
  c.out = out.string();
  return c;
}

std::vector<double> epoch_losses(const std::string& run) {
  std::ifstream in(run + "/metrics.jsonl");
  std::vector<double> losses;
  for (std::string line; std::getline(in, line);)
    losses.push_back(parse_json(line, "metrics.jsonl").at("loss").as_double());
  return losses;
}

}  // namespace

TEST_CASE("train: the loss goes down and the final weights load as a ResNet's") {
  const TrainConfig c = tiny_config("loss", 3);
  const TrainResult r = train(c);
  CHECK_FALSE(r.interrupted);
  CHECK(r.position.epoch == 3);
  CHECK(r.position.step == 9);  // 12 images / batch 4 = 3 steps per epoch
  const std::vector<double> losses = epoch_losses(c.out);
  REQUIRE(losses.size() == 3);
  CHECK(losses[2] < losses[0]);
  const SafetensorsContents w = load_safetensors(c.out + "/weights.safetensors");
  CHECK(w.tensors.count("conv1.weight"));
  CHECK(w.tensors.at("classifier.weight").shape() == Shape{20, 32, 1, 1});
  CHECK(w.tensors.count("layer4.1.bn2.running_var"));
  CHECK_THROWS_WITH_AS(train(c), doctest::Contains("already holds a training run"), Error);
}

TEST_CASE("train: 2 epochs in one go equal 1 + resume + 1, bitwise (with a rate drop at 2)") {
  TrainConfig whole = tiny_config("whole", 2);
  whole.lr_drops = {2};
  train(whole);
  TrainConfig part = tiny_config("part", 1);
  part.lr_drops = {2};
  train(part);
  CHECK(fs::exists(part.out + "/weights.safetensors"));  // 1 epoch: a finished run
  const TrainResult r = resume_training(part.out, 2);
  CHECK(r.position.epoch == 2);
  CHECK(read_file_bytes(whole.out + "/weights.safetensors") ==
        read_file_bytes(part.out + "/weights.safetensors"));
  CHECK(epoch_losses(whole.out) == epoch_losses(part.out));
  CHECK(read_run_config(part.out).epochs == 2);
  CHECK(read_run_config(part.out).lr_drops == std::vector<int64_t>{2});
  std::ifstream in(part.out + "/metrics.jsonl");
  std::vector<double> rates;
  for (std::string line; std::getline(in, line);)
    rates.push_back(parse_json(line, "metrics.jsonl").at("lr").as_double());
  REQUIRE(rates.size() == 2);
  CHECK(rates[0] == doctest::Approx(0.05));
  CHECK(rates[1] == doctest::Approx(0.005));
}

TEST_CASE("train: an interrupt mid-epoch checkpoints; resuming continues identically") {
  const TrainConfig whole = tiny_config("uninterrupted", 2);
  train(whole);
  const TrainConfig cut = tiny_config("interrupted", 2);
  std::atomic<bool> stop{true};  // as if Ctrl-C came during the first step
  TrainControls controls;
  controls.stop = &stop;
  const TrainResult first = train(cut, controls);
  CHECK(first.interrupted);
  CHECK(first.position.epoch == 0);
  CHECK(first.position.batch == 1);
  const TrainResult rest = resume_training(cut.out, 0);
  CHECK_FALSE(rest.interrupted);
  CHECK(rest.position.step == 6);
  CHECK(read_file_bytes(whole.out + "/weights.safetensors") ==
        read_file_bytes(cut.out + "/weights.safetensors"));
}

TEST_CASE("train: a run killed while writing a checkpoint keeps the previous one") {
  if (!std::getenv("PRM_BIN")) {
    MESSAGE("skipped: PRM_BIN unset");
    return;
  }
  const TrainConfig c = tiny_config("killed", 1);
  train(c);
  const std::string before = read_file_bytes(c.out + "/checkpoint.safetensors");
  const std::string cmd = std::string(std::getenv("PRM_BIN")) + " train --resume " + c.out +
                          " --epochs 2 --test-die-during-checkpoint 2>/dev/null >/dev/null";
  const int status = std::system(cmd.c_str());
  CHECK(WEXITSTATUS(status) == 137);  // died in the middle of the write
  CHECK(fs::exists(c.out + "/checkpoint.safetensors.partial-write"));
  CHECK(read_file_bytes(c.out + "/checkpoint.safetensors") == before);
  const TrainResult r = resume_training(c.out, 2);  // and the run goes on from it
  CHECK(r.position.epoch == 2);
}

TEST_CASE("train: bad runs fail with one clear line") {
  TrainConfig c = tiny_config("bad", 1);
  c.data = "/nonexistent/VOC";
  CHECK_THROWS_AS(train(c), Error);
  CHECK_THROWS_WITH_AS(resume_training(fs::temp_directory_path().string() + "/prm_no_run_here", 2),
                       doctest::Contains("no checkpoint.safetensors"), Error);
  // A damaged checkpoint: its bytes cut short.
  const TrainConfig d = tiny_config("damaged", 1);
  train(d);
  const std::string bytes = read_file_bytes(d.out + "/checkpoint.safetensors");
  write_file_atomic(d.out + "/checkpoint.safetensors", bytes.substr(0, bytes.size() / 3));
  CHECK_THROWS_WITH_AS(resume_training(d.out, 2), doctest::Contains("checkpoint.safetensors"),
                       Error);
  // A diverging run stops at the first non-finite loss and keeps its last checkpoint: here
  // "pretrained" weights whose stem overflows float32.
  TrainConfig n = tiny_config("nan", 2);
  {
    ResNetOptions o;
    o.arch = "resnet18";
    o.width = 4;
    ResNet net(o);
    net.state_dict().at("conv1.weight").fill_(3e38);
    n.pretrained = (fs::temp_directory_path() /
                    ("prm_train_test_overflow_" + std::to_string(getpid()) + ".safetensors"))
                       .string();
    save_weights(net, n.pretrained);
  }
  CHECK_THROWS_WITH_AS(train(n), doctest::Contains("the last good checkpoint is kept"), Error);
  CHECK(fs::exists(n.out + "/checkpoint.safetensors"));
  CHECK_NOTHROW(read_run_config(n.out));
}
