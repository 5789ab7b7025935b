// libFuzzer target for the training checkpoint reader, prm::read_run_config (prm/train.h), which
// `prm train --resume` and `prm infer --run` use: it loads RUN/checkpoint.safetensors, checks its
// "format" metadata and parses the "config" metadata (JSON) into a TrainConfig. The first input
// byte picks what is fuzzed: even, the rest of the input is the whole checkpoint file; odd, the
// rest is the "config" string of an otherwise valid checkpoint (format prm-checkpoint-1, one small
// model tensor, epoch/batch/step). Any input must either load or throw prm::Error; a loaded
// configuration must write and read back to the same JSON. Crashes, hangs, leaks, sanitizer
// reports and a failed round trip are bugs. Build with build.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "data/json.h"
#include "data/safetensors.h"
#include "fuzz_util.h"
#include "prm/train.h"
#include "tensor/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const std::string run = prm_fuzz::scratch_dir();
  static const std::string path = run + "/checkpoint.safetensors";
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    prm_fuzz::write_bytes(path, rest);
  } else {
    prm::TensorMap tensors;
    tensors["model.classifier.bias"] = prm::Tensor::zeros({2});
    const prm::Metadata meta = {{"format", "prm-checkpoint-1"}, {"config", rest},
                                {"epoch", "1"}, {"batch", "0"}, {"step", "3"}};
    prm_fuzz::write_bytes(path, prm::encode_safetensors(tensors, meta));
  }
  prm::TrainConfig config;
  try {
    config = prm::read_run_config(run);
  } catch (const prm::Error&) {
    return 0;
  }
  const std::string json = prm::write_json(config.to_json());
  const prm::TrainConfig back =
      prm::TrainConfig::from_json(prm::parse_json(json, "round trip"), "round trip");
  if (prm::write_json(back.to_json()) != json) std::abort();
  return 0;
}
