#include "prm/train.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "data/files.h"
#include "data/loader.h"
#include "data/metrics.h"
#include "data/safetensors.h"
#include "data/voc.h"
#include "layers/resnet.h"
#include "layers/sgd.h"
#include "prm/weights.h"
#include "tensor/ops.h"

namespace fs = std::filesystem;

namespace prm {

namespace {

constexpr const char* kCheckpointFormat = "prm-checkpoint-1";

std::string checkpoint_path(const std::string& dir) { return dir + "/checkpoint.safetensors"; }

std::string format_duration(double seconds) {
  const long s = seconds > 0 && std::isfinite(seconds) ? static_cast<long>(seconds + 0.5) : 0;
  char text[32];
  std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return text;
}

// Everything a run holds while it trains.
struct Run {
  TrainConfig config;
  Device device = Device::cpu;
  std::unique_ptr<VocDataset> train_set, val_set;
  std::unique_ptr<ResNet> net;
  std::unique_ptr<SGD> sgd;
  std::unique_ptr<Loader> loader;
  TrainPosition position;
};

VocOptions voc_options(const TrainConfig& c, const std::string& split) {
  VocOptions o;
  o.root = c.data;
  o.split = split;
  o.skip_bad = c.skip_bad;
  return o;
}

// Whether the dataset lists this split (validation is optional).
bool has_split(const std::string& data, const std::string& split) {
  if (split.empty()) return false;
  const std::string root = resolve_voc_root(data);
  return fs::exists(root + "/ImageSets/Main/" + split + ".txt");
}

void build(Run& run) {
  const TrainConfig& c = run.config;
  run.device = parse_device(c.device);
  run.train_set = std::make_unique<VocDataset>(voc_options(c, c.train_split));
  PRM_CHECK(run.train_set->size() > 0, c.data, ": split '", c.train_split, "' has no images");
  if (has_split(c.data, c.val_split))
    run.val_set = std::make_unique<VocDataset>(voc_options(c, c.val_split));
  ResNetOptions options;
  options.arch = c.arch;
  options.width = c.width;
  options.num_classes = static_cast<int64_t>(run.train_set->classes().size());
  options.seed = c.seed;
  run.net = std::make_unique<ResNet>(options);
  if (!c.pretrained.empty())
    load_resnet_weights(*run.net, c.pretrained, /*fresh_classifier=*/true, /*strict=*/true);
  run.net->to(run.device);
  SGDOptions sgd;
  sgd.lr = c.lr;
  sgd.momentum = c.momentum;
  sgd.weight_decay = c.weight_decay;
  run.sgd = std::make_unique<SGD>(run.net->param_groups(c.backbone_lr_mult), sgd);
  LoaderOptions lo;
  lo.batch_size = static_cast<int>(c.batch);
  lo.image_size = static_cast<int>(c.size);
  lo.workers = static_cast<int>(c.workers);
  lo.seed = c.seed;
  lo.device = run.device;
  lo.skip_bad = c.skip_bad;
  run.loader = std::make_unique<Loader>(*run.train_set, lo);
}

void save_checkpoint(const Run& run) {
  TensorMap tensors;
  for (const auto& [name, t] : run.net->state_dict()) tensors["model." + name] = t.to(Device::cpu);
  const auto& groups = run.sgd->groups();
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t i = 0; i < groups[g].params.size(); ++i) {
      const Tensor& buf = run.sgd->momentum_buffer(g, i);
      if (buf.defined())
        tensors["sgd." + std::to_string(g) + "." + std::to_string(i)] = buf.to(Device::cpu);
    }
  Metadata meta;
  meta["format"] = kCheckpointFormat;
  meta["epoch"] = std::to_string(run.position.epoch);
  meta["batch"] = std::to_string(run.position.batch);
  meta["step"] = std::to_string(run.position.step);
  meta["config"] = write_json(run.config.to_json());
  const std::string path = checkpoint_path(run.config.out);
  // Test hook: die like a killed process half-way through writing the new checkpoint (the temp
  // file is written partly, never renamed), to show that the previous one survives.
  if (const char* die = std::getenv("PRM_TEST_DIE_DURING_CHECKPOINT"); die && run.position.step > 0) {
    const std::string bytes = encode_safetensors(tensors, meta);
    if (FILE* f = std::fopen((path + ".partial-write").c_str(), "wb")) {
      std::fwrite(bytes.data(), 1, bytes.size() / 2, f);
      std::fflush(f);
    }
    std::_Exit(137);
  }
  save_safetensors(path, tensors, meta);  // atomic: temp file + rename
}

int64_t meta_int(const Metadata& meta, const char* key, const std::string& path) {
  auto it = meta.find(key);
  PRM_CHECK(it != meta.end(), path, ": damaged checkpoint (no '", key, "' in its metadata)");
  int64_t v = 0;
  PRM_CHECK(parse_json(it->second, path).get_int64(v) && v >= 0, path,
            ": damaged checkpoint ('", key, "' is '", it->second, "')");
  return v;
}

SafetensorsContents read_checkpoint(const std::string& dir) {
  const std::string path = checkpoint_path(dir);
  PRM_CHECK(fs::exists(path), dir, ": no checkpoint.safetensors (not a training run folder?)");
  SafetensorsContents ck = load_safetensors(path);
  auto format = ck.metadata.find("format");
  PRM_CHECK(format != ck.metadata.end() && format->second == kCheckpointFormat, path,
            ": not a prm training checkpoint (format '",
            format == ck.metadata.end() ? "" : format->second, "')");
  PRM_CHECK(ck.metadata.count("config"), path, ": damaged checkpoint (no configuration)");
  return ck;
}

void restore(Run& run, const SafetensorsContents& ck, const std::string& path) {
  TensorMap model;
  for (const auto& [name, t] : ck.tensors)
    if (name.rfind("model.", 0) == 0) model[name.substr(6)] = t;
  LoadOptions strict;
  run.net->load_state_dict(model, strict, path);
  const auto& groups = run.sgd->groups();
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t i = 0; i < groups[g].params.size(); ++i) {
      auto it = ck.tensors.find("sgd." + std::to_string(g) + "." + std::to_string(i));
      if (it != ck.tensors.end()) run.sgd->set_momentum_buffer(g, i, it->second);
    }
  run.position.epoch = meta_int(ck.metadata, "epoch", path);
  run.position.batch = meta_int(ck.metadata, "batch", path);
  run.position.step = meta_int(ck.metadata, "step", path);
}

// Classification mAP on the validation split: eval mode, class scores by peak stimulation.
double validation_map(Run& run) {
  const VocDataset& val = *run.val_set;
  LoaderOptions lo = run.loader->options();
  lo.shuffle = false;
  lo.random_flip = false;
  lo.workers = std::min<int>(lo.workers, 2);
  Loader loader(val, lo);
  loader.start_epoch(0);
  run.net->eval();
  NoGradGuard no_grad;
  const int64_t C = static_cast<int64_t>(val.classes().size());
  std::vector<std::vector<double>> scores;
  std::vector<std::vector<int>> labels;
  Batch batch;
  while (loader.next(batch)) {
    Tensor s = peak_stimulation_forward(upsample_bilinear_scale(run.net->forward(batch.images), 8.0,
                                                                true),
                                        3, nullptr);
    const std::vector<double> v = s.to_vector();
    for (size_t b = 0; b < batch.indices.size(); ++b) {
      scores.emplace_back(v.begin() + b * C, v.begin() + (b + 1) * C);
      std::vector<int> label(C, -1);
      for (const VocObject& o : val.sample(batch.indices[b]).annotation.objects)
        if (o.class_id >= 0 && o.class_id < C)
          label[o.class_id] = o.difficult && label[o.class_id] != 1 ? 0 : 1;
      labels.push_back(label);
    }
  }
  run.net->train();
  return classification_map(scores, labels, static_cast<int>(C)).mean;
}

void append_metrics(const std::string& dir, const Json& line) {
  const std::string path = dir + "/metrics.jsonl";
  std::string text = fs::exists(path) ? read_file_bytes(path) : "";
  text += write_json(line) + "\n";
  write_file_atomic(path, text);
}

TrainResult run_epochs(Run& run, const std::atomic<bool>* stop) {
  const TrainConfig& c = run.config;
  TrainResult result;
  const int64_t per_epoch = run.loader->batches_per_epoch();
  const int64_t total_steps = per_epoch * c.epochs;
  const auto started = std::chrono::steady_clock::now();
  const int64_t first_step = run.position.step;
  int64_t images_seen = 0;
  run.net->train();
  while (run.position.epoch < c.epochs) {
    // The step schedule: a function of the epoch alone, so a resumed run follows it exactly.
    double lr = c.lr;
    for (int64_t drop : c.lr_drops)
      if (run.position.epoch + 1 >= drop) lr *= 0.1;
    run.sgd->set_lr(lr);
    run.loader->start_epoch(run.position.epoch, run.position.batch);
    double loss_sum = 0;
    int64_t loss_count = 0;
    Batch batch;
    while (run.loader->next(batch)) {
      run.sgd->zero_grad();
      Tensor crm = run.net->forward(batch.images);
      Tensor scores = peak_stimulation(upsample_bilinear_scale(crm, 8.0, true), c.peak_grad);
      Tensor loss = multilabel_soft_margin(scores, batch.targets);
      const double value = loss.item();
      PRM_CHECK(std::isfinite(value), "the loss became ", value, " at epoch ",
                run.position.epoch + 1, " batch ", run.position.batch + 1,
                "; stopped, the last good checkpoint is kept in ", checkpoint_path(c.out));
      loss.backward();
      run.sgd->step();
      ++run.position.batch;
      ++run.position.step;
      images_seen += static_cast<int64_t>(batch.indices.size());
      loss_sum += value;
      ++loss_count;
      result.last_loss = value;
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      const double steps_per_s = (run.position.step - first_step) / std::max(elapsed, 1e-9);
      std::fprintf(stderr,
                   "\repoch %lld/%lld  step %lld/%lld  %.2f img/s  loss %.4f  ETA %s   ",
                   static_cast<long long>(run.position.epoch + 1),
                   static_cast<long long>(c.epochs), static_cast<long long>(run.position.batch),
                   static_cast<long long>(per_epoch), images_seen / std::max(elapsed, 1e-9), value,
                   format_duration((total_steps - run.position.step) / steps_per_s).c_str());
      if (stop && stop->load()) {
        save_checkpoint(run);
        std::fprintf(stderr, "\ninterrupted: checkpoint written to %s (resume with --resume %s)\n",
                     checkpoint_path(c.out).c_str(), c.out.c_str());
        result.position = run.position;
        result.interrupted = true;
        return result;
      }
    }
    std::fprintf(stderr, "\n");
    ++run.position.epoch;
    run.position.batch = 0;
    Json line = Json::object();
    line.set("epoch", Json(run.position.epoch));
    line.set("step", Json(run.position.step));
    line.set("loss", loss_count ? Json(loss_sum / loss_count) : Json());
    line.set("lr", Json(run.sgd->lr()));
    line.set("images_per_s",
             Json(images_seen / std::max(1e-9, std::chrono::duration<double>(
                                                    std::chrono::steady_clock::now() - started)
                                                    .count())));
    if (run.val_set && run.val_set->size() > 0) line.set("val_map", Json(validation_map(run)));
    if (run.loader->skipped() > 0) line.set("skipped_images", Json(run.loader->skipped()));
    std::printf("%s\n", write_json(line).c_str());
    std::fflush(stdout);
    save_checkpoint(run);
    append_metrics(c.out, line);
  }
  save_weights(*run.net, c.out + "/weights.safetensors");
  std::fprintf(stderr, "weights: %s\n", (c.out + "/weights.safetensors").c_str());
  result.position = run.position;
  return result;
}

}  // namespace

Json TrainConfig::to_json() const {
  Json j = Json::object();
  j.set("data", data);
  j.set("train_split", train_split);
  j.set("val_split", val_split);
  j.set("arch", arch);
  j.set("width", Json(width));
  j.set("pretrained", pretrained);
  j.set("size", Json(size));
  j.set("batch", Json(batch));
  j.set("epochs", Json(epochs));
  j.set("lr", Json(lr));
  Json drops = Json::array();
  for (int64_t e : lr_drops) drops.push_back(Json(e));
  j.set("lr_drops", drops);
  j.set("backbone_lr_mult", Json(backbone_lr_mult));
  j.set("momentum", Json(momentum));
  j.set("weight_decay", Json(weight_decay));
  j.set("device", device);
  j.set("seed", Json(seed));
  j.set("workers", Json(workers));
  j.set("peak_grad", peak_grad_name(peak_grad));
  j.set("skip_bad", skip_bad);
  j.set("out", out);
  return j;
}

TrainConfig TrainConfig::from_json(const Json& j, const std::string& source) {
  TrainConfig c;
  try {
    c.data = j.at("data").as_string();
    c.train_split = j.at("train_split").as_string();
    c.val_split = j.at("val_split").as_string();
    c.arch = j.at("arch").as_string();
    c.width = j.at("width").as_int64();
    c.pretrained = j.at("pretrained").as_string();
    c.size = j.at("size").as_int64();
    c.batch = j.at("batch").as_int64();
    c.epochs = j.at("epochs").as_int64();
    c.lr = j.at("lr").as_double();
    if (const Json* drops = j.find("lr_drops"))
      for (const Json& e : drops->items()) c.lr_drops.push_back(e.as_int64());
    c.backbone_lr_mult = j.at("backbone_lr_mult").as_double();
    c.momentum = j.at("momentum").as_double();
    c.weight_decay = j.at("weight_decay").as_double();
    c.device = j.at("device").as_string();
    PRM_CHECK(j.at("seed").get_uint64(c.seed), "seed is not an unsigned integer");
    c.workers = j.at("workers").as_int64();
    c.peak_grad = parse_peak_grad(j.at("peak_grad").as_string());
    c.skip_bad = j.at("skip_bad").as_bool();
    c.out = j.at("out").as_string();
  } catch (const Error& e) {
    throw Error(str_cat(source, ": damaged training configuration: ", e.what()));
  }
  return c;
}

TrainResult train(const TrainConfig& config, const std::atomic<bool>* stop) {
  PRM_CHECK(!config.out.empty(), "train: no output folder given");
  PRM_CHECK(config.epochs >= 1 && config.batch >= 1 && config.size >= 32 && config.workers >= 0,
            "train: need epochs >= 1, batch >= 1, size >= 32, workers >= 0");
  PRM_CHECK(!fs::exists(checkpoint_path(config.out)), config.out,
            ": already holds a training run (continue it with --resume ", config.out, ")");
  std::error_code ec;
  fs::create_directories(config.out, ec);
  PRM_CHECK(!ec && fs::is_directory(config.out), config.out,
            ": cannot create the output folder (", ec.message(), ")");
  Run run;
  run.config = config;
  run.config.out = fs::path(config.out).string();
  build(run);
  write_file_atomic(config.out + "/config.json", write_json(run.config.to_json()) + "\n");
  save_checkpoint(run);  // epoch 0: the folder is a run from the start
  return run_epochs(run, stop);
}

TrainConfig read_run_config(const std::string& run_dir) {
  const SafetensorsContents ck = read_checkpoint(run_dir);
  return TrainConfig::from_json(parse_json(ck.metadata.at("config"), checkpoint_path(run_dir)),
                                checkpoint_path(run_dir));
}

TrainResult resume_training(const std::string& run_dir, int64_t epochs,
                            const std::atomic<bool>* stop) {
  const SafetensorsContents ck = read_checkpoint(run_dir);
  Run run;
  run.config = TrainConfig::from_json(parse_json(ck.metadata.at("config"), checkpoint_path(run_dir)),
                                      checkpoint_path(run_dir));
  run.config.out = run_dir;
  if (epochs > 0) run.config.epochs = epochs;
  build(run);
  restore(run, ck, checkpoint_path(run_dir));
  PRM_CHECK(run.position.epoch <= run.config.epochs, run_dir, ": the run has ",
            run.position.epoch, " epochs already, more than the ", run.config.epochs, " asked for");
  std::fprintf(stderr, "resuming %s at epoch %lld, batch %lld (step %lld)\n", run_dir.c_str(),
               static_cast<long long>(run.position.epoch + 1),
               static_cast<long long>(run.position.batch),
               static_cast<long long>(run.position.step));
  return run_epochs(run, stop);
}

}  // namespace prm
