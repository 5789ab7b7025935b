#include "prm/checkpoint.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "data/json.h"

namespace prm {

namespace {

constexpr const char* kCheckpointFormat = "prm-checkpoint-1";

std::string momentum_key(size_t group, size_t index) {
  return "sgd." + std::to_string(group) + "." + std::to_string(index);
}

int64_t meta_int(const Metadata& meta, const char* key, const std::string& path) {
  auto it = meta.find(key);
  PRM_CHECK(it != meta.end(), path, ": damaged checkpoint (no '", key, "' in its metadata)");
  int64_t v = 0;
  PRM_CHECK(parse_json(it->second, path).get_int64(v) && v >= 0, path,
            ": damaged checkpoint ('", key, "' is '", it->second, "')");
  return v;
}

}  // namespace

std::string checkpoint_path(const std::string& run_dir) {
  return run_dir + "/checkpoint.safetensors";
}

void save_checkpoint(const std::string& run_dir, const Module& net, const SGD& sgd,
                     const TrainPosition& position, const TrainConfig& config,
                     const std::string& metrics, bool die_half_way) {
  TensorMap tensors;
  for (const auto& [name, t] : net.state_dict()) tensors["model." + name] = t.to(Device::cpu);
  const auto& groups = sgd.groups();
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t i = 0; i < groups[g].params.size(); ++i) {
      const Tensor& buf = sgd.momentum_buffer(g, i);
      if (buf.defined()) tensors[momentum_key(g, i)] = buf.to(Device::cpu);
    }
  Metadata meta;
  meta["format"] = kCheckpointFormat;
  meta["epoch"] = std::to_string(position.epoch);
  meta["batch"] = std::to_string(position.batch);
  meta["step"] = std::to_string(position.step);
  meta["config"] = write_json(config.to_json());
  meta["metrics"] = metrics;
  const std::string path = checkpoint_path(run_dir);
  if (die_half_way) {
    const std::string bytes = encode_safetensors(tensors, meta);
    if (FILE* f = std::fopen((path + ".partial-write").c_str(), "wb")) {
      std::fwrite(bytes.data(), 1, bytes.size() / 2, f);
      std::fflush(f);
    }
    std::_Exit(137);
  }
  save_safetensors(path, tensors, meta);  // atomic: temp file + rename
}

Checkpoint read_checkpoint(const std::string& run_dir) {
  Checkpoint ck;
  ck.path = checkpoint_path(run_dir);
  PRM_CHECK(std::filesystem::exists(ck.path), run_dir,
            ": no checkpoint.safetensors (not a training run folder?)");
  ck.contents = load_safetensors(ck.path);
  const Metadata& meta = ck.contents.metadata;
  auto format = meta.find("format");
  PRM_CHECK(format != meta.end() && format->second == kCheckpointFormat, ck.path,
            ": not a prm training checkpoint (format '",
            format == meta.end() ? "" : format->second, "')");
  auto config = meta.find("config");
  PRM_CHECK(config != meta.end(), ck.path, ": damaged checkpoint (no configuration)");
  ck.config = TrainConfig::from_json(parse_json(config->second, ck.path), ck.path);
  ck.position.epoch = meta_int(meta, "epoch", ck.path);
  ck.position.batch = meta_int(meta, "batch", ck.path);
  ck.position.step = meta_int(meta, "step", ck.path);
  if (auto m = meta.find("metrics"); m != meta.end()) {
    ck.has_metrics = true;
    ck.metrics = m->second;
  }
  return ck;
}

void restore_checkpoint(const Checkpoint& ck, Module& net, SGD& sgd) {
  TensorMap model;
  for (const auto& [name, t] : ck.contents.tensors)
    if (name.rfind("model.", 0) == 0) model[name.substr(6)] = t;
  LoadOptions strict;
  net.load_state_dict(model, strict, ck.path);
  const auto& groups = sgd.groups();
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t i = 0; i < groups[g].params.size(); ++i) {
      auto it = ck.contents.tensors.find(momentum_key(g, i));
      if (it != ck.contents.tensors.end()) sgd.set_momentum_buffer(g, i, it->second);
    }
}

}  // namespace prm
