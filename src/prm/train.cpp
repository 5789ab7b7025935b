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
#include "dist/comm.h"
#include "dist/grad_reducer.h"
#include "dist/sync_batch_norm.h"
#include "layers/resnet.h"
#include "layers/sgd.h"
#include "prm/weights.h"
#include "tensor/allocator.h"
#include "tensor/autograd.h"
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
  // Data-parallel: the process group (a single rank for a plain run), the gradient all-reduce and
  // the synchronised batch-norm group (R > 1 only).
  Comm* comm = nullptr;
  std::unique_ptr<GradReducer> reducer;
  std::unique_ptr<CommBatchNormGroup> bn_group;
  bool lead() const { return comm->rank() == 0; }
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

// The ranks must train the same thing: rank 0's configuration against each rank's own.
void check_same_config(Comm& comm, const TrainConfig& c) {
  if (comm.size() == 1) return;
  const Json mine = c.to_json();
  std::string lead = write_json(mine);
  comm.broadcast(lead, 0);
  agree(comm, [&] {
    const Json theirs = parse_json(lead, "rank 0's configuration");
    std::string differ;
    for (const auto& [key, value] : mine.fields()) {
      const Json* other = theirs.find(key);
      if (!other || write_json(*other) != write_json(value))
        differ += str_cat(differ.empty() ? "" : ", ", key, " (", write_json(value), " here, ",
                          other ? write_json(*other) : "none", " on rank 0)");
    }
    PRM_CHECK(differ.empty(), "the configuration differs from rank 0's: ", differ,
              "; start every rank with the same flags");
  });
}

void build(Run& run) {
  const TrainConfig& c = run.config;
  run.device = parse_device(c.device);
  set_matmul_precision(parse_precision(c.precision));
  run.comm = &world(run.device);  // before any CUDA allocation: it picks this rank's GPU
  Comm& comm = *run.comm;
  const int R = comm.size();
  if (R > c.batch)  // every rank sees this alike
    throw CollectiveError(str_cat("started with ", R, " ranks but --batch is ", c.batch,
                                  ": every rank needs at least one image of each batch (the "
                                  "batch is the global batch); start at most ", c.batch,
                                  " ranks"));
  check_same_config(comm, c);
  agree(comm, [&] { run.train_set = std::make_unique<VocDataset>(voc_options(c, c.train_split)); });
  agree(comm, [&] {
  PRM_CHECK(run.train_set->size() > 0, c.data, ": split '", c.train_split, "' has no images");
  if (has_split(c.data, c.val_split) && run.lead())  // only rank 0 validates
    run.val_set = std::make_unique<VocDataset>(voc_options(c, c.val_split));
  });
  ResNetOptions options;
  options.arch = c.arch;
  options.width = c.width;
  options.num_classes = static_cast<int64_t>(run.train_set->classes().size());
  options.seed = c.seed;
  run.net = std::make_unique<ResNet>(options);
  if (!c.pretrained.empty())
    agree(comm, [&] {
      load_resnet_weights(*run.net, c.pretrained, /*fresh_classifier=*/true, /*strict=*/true);
    });
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
  lo.shard_rank = comm.rank();
  lo.shard_count = R;
  run.loader = std::make_unique<Loader>(*run.train_set, lo);
  if (comm.backend() != "single") {  // also one rank under mpirun: the same path as R ranks
    // Tuning knobs that do not change the result (docs/scaling.md): bucket size and overlap.
    GradReducerOptions ro;
    if (const char* mb = std::getenv("PRM_BUCKET_MB"))
      ro.bucket_bytes = static_cast<size_t>(std::max(1.0, std::atof(mb)) * 1048576.0);
    if (const char* ov = std::getenv("PRM_GRAD_OVERLAP")) ro.overlap = std::atoi(ov) != 0;
    run.reducer = std::make_unique<GradReducer>(comm, run.net->parameters(), ro);
    if (c.sync_bn) {
      run.bn_group = std::make_unique<CommBatchNormGroup>(comm);
      set_batch_norm_group(*run.net, run.bn_group.get());
    }
  }
}

// Every rank starts from rank 0's weights and buffers (and momentum buffers on resume), as
// DistributedDataParallel does: the same seed gives the same network anyway, this makes sure.
void broadcast_state(Run& run) {
  Comm& comm = *run.comm;
  if (comm.size() == 1) return;
  for (auto& [name, t] : run.net->state_dict()) {
    Tensor v = t;
    comm.broadcast(v, 0);
  }
  const auto& groups = run.sgd->groups();
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t i = 0; i < groups[g].params.size(); ++i) {
      double has = run.sgd->momentum_buffer(g, i).defined() ? 1 : 0, all = has;
      comm.all_reduce(&has, 1, ReduceOp::min);
      comm.all_reduce(&all, 1, ReduceOp::max);
      PRM_CHECK(has == all, "the ranks' checkpoints disagree on SGD's momentum buffers");
      if (has != 0) {
        Tensor buf = run.sgd->momentum_buffer(g, i);
        comm.broadcast(buf, 0);
      }
    }
}

// The ranks' weights must stay bitwise equal (they apply the same summed gradient); a cheap
// fingerprint checked at every epoch's end catches a rank that drifted.
void check_ranks_agree(Run& run) {
  Comm& comm = *run.comm;
  if (comm.size() == 1) return;
  double fp[2] = {0, 0};
  for (const Tensor& p : run.net->parameters()) {
    const std::vector<double> v = p.to_vector();
    for (size_t i = 0; i < v.size(); ++i) {
      fp[0] += v[i];
      fp[1] += v[i] * static_cast<double>((i % 7) + 1);
    }
  }
  double lo[2] = {fp[0], fp[1]}, hi[2] = {fp[0], fp[1]};
  comm.all_reduce(lo, 2, ReduceOp::min);
  comm.all_reduce(hi, 2, ReduceOp::max);
  if (lo[0] != hi[0] || lo[1] != hi[1])
    throw CollectiveError("the ranks' weights differ after an epoch (they must apply the same "
                          "summed gradient): stopped, the last checkpoint is kept");
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

// Test hook: PRM_TEST_KILL_RANK=r:s makes rank r die like a killed process at step s.
bool test_kill_now(const Run& run) {
  const char* spec = std::getenv("PRM_TEST_KILL_RANK");
  if (!spec) return false;
  int rank = -1;
  long long step = -1;
  return std::sscanf(spec, "%d:%lld", &rank, &step) == 2 && rank == run.comm->rank() &&
         step == run.position.step;
}

// Rows [begin, end) of a batch tensor, as a new tensor (inputs need no graph).
Tensor batch_rows(const Tensor& t, int64_t begin, int64_t end) {
  Shape shape = t.shape();
  const size_t row = static_cast<size_t>(t.numel() / shape[0]) * dtype_size(t.dtype());
  shape[0] = end - begin;
  Tensor out = Tensor::empty(shape, t.dtype(), t.device());
  device_copy(out.raw_data(), t.device(), static_cast<const char*>(t.raw_data()) + begin * row,
              t.device(), row * static_cast<size_t>(end - begin));
  return out;
}

// One step of the global batch of n images. Each rank takes its part of the batch (a single
// process: all of it) in micro_batches pieces; each piece's loss is scaled by its share of n, so
// the gradients, accumulated over the pieces and summed over the ranks, are those of the global
// batch's mean loss. One process with one piece is the plain step (loss.backward(), unscaled).
// A rank with no images still takes part in synchronised batch norm's collectives, with a
// placeholder image that weighs nothing in the statistics and gets a zero loss gradient.
struct StepOutcome {
  bool stepped = false;  // false when no rank had an image (every sample skipped)
  double loss = 0;       // the global batch's mean loss
  int64_t images = 0;    // in the global batch
};

StepOutcome train_step(Run& run, const Batch& batch) {
  const TrainConfig& c = run.config;
  Comm& comm = *run.comm;
  StepOutcome out;
  const int64_t local = static_cast<int64_t>(batch.indices.size());
  double count = static_cast<double>(local);
  comm.all_reduce(&count, 1, ReduceOp::sum);
  out.images = static_cast<int64_t>(count);
  if (out.images == 0) return out;
  run.sgd->zero_grad();
  const bool distributed = run.reducer != nullptr;  // under mpirun, even with one rank
  const bool placeholder = local == 0 && c.sync_bn && distributed;
  std::vector<std::pair<int64_t, int64_t>> pieces;
  for (int p = 0; p < c.micro_batches; ++p) {
    const auto [b, e] =
        shard_range(static_cast<size_t>(local), p, static_cast<int>(c.micro_batches));
    if (e > b) pieces.emplace_back(static_cast<int64_t>(b), static_cast<int64_t>(e));
  }
  if (placeholder) pieces.emplace_back(0, 0);
  if (run.bn_group) run.bn_group->set_samples(local, out.images);
  const int64_t S = c.size, C = static_cast<int64_t>(run.train_set->classes().size());
  double weighted[2] = {0, 0};  // sum of piece losses x piece sizes; non-finite flag
  // The loss of one piece (its images, or the placeholder), counted into `weighted`.
  auto forward = [&](int64_t b, int64_t e) {
    const bool whole = b == 0 && e == local && local > 0;
    const Tensor images = placeholder ? Tensor::zeros({1, 3, S, S}, DType::f32, run.device)
                          : whole     ? batch.images
                                      : batch_rows(batch.images, b, e);
    const Tensor targets = placeholder ? Tensor::zeros({1, C}, DType::f32, run.device)
                           : whole     ? batch.targets
                                       : batch_rows(batch.targets, b, e);
    Tensor crm = run.net->forward(images);
    Tensor scores = peak_stimulation(upsample_bilinear_scale(crm, 8.0, true), c.peak_grad);
    Tensor loss = multilabel_soft_margin(scores, targets);
    if (e > b) {
      const double value = loss.item();
      weighted[0] += value * static_cast<double>(e - b);
      if (!std::isfinite(value)) weighted[1] = 1;
    }
    return loss;
  };
  // Back-propagates a piece's loss scaled by its share of the global batch (a share of 1 is the
  // default seed exactly, so one process with one piece is the plain step).
  auto backward = [&](const Tensor& loss, int64_t n, const LeafReadyFn& on_leaf_ready) {
    run_backward(loss,
                 Tensor::full(loss.shape(), static_cast<double>(n) / count, loss.dtype(),
                              loss.device()),
                 false, nullptr, on_leaf_ready);
  };
  // Every piece but the last: forward and backward at once (their gradients accumulate).
  for (size_t k = 0; k + 1 < pieces.size(); ++k)
    backward(forward(pieces[k].first, pieces[k].second), pieces[k].second - pieces[k].first,
             nullptr);
  const Tensor last =
      pieces.empty() ? Tensor() : forward(pieces.back().first, pieces.back().second);
  // The ranks agree on the loss (and on stopping for a NaN) before the gradients meet; the loss
  // of a float32 network times a piece size and divided again is exact, so one piece reports
  // its own loss.
  if (distributed) comm.all_reduce(weighted, 2, ReduceOp::sum);
  out.loss = weighted[1] != 0 ? std::nan("") : weighted[0] / count;
  if (!std::isfinite(out.loss)) {
    const std::string text = str_cat("the loss became ", out.loss, " at epoch ",
                                     run.position.epoch + 1, " batch ", run.position.batch + 1,
                                     "; stopped, the last good checkpoint is kept in ",
                                     checkpoint_path(c.out));
    if (distributed) throw CollectiveError(text);
    throw Error(text);
  }
  if (run.reducer) {
    GradReducer* reducer = run.reducer.get();
    reducer->begin();
    if (last.defined())
      backward(last, pieces.back().second - pieces.back().first,
               [reducer](const Tensor& leaf) { reducer->on_grad_ready(leaf); });
    reducer->finish();
  } else {
    backward(last, pieces.back().second - pieces.back().first, nullptr);
  }
  run.sgd->step();
  out.stepped = true;
  return out;
}

TrainResult run_epochs(Run& run, const std::atomic<bool>* stop) {
  const TrainConfig& c = run.config;
  Comm& comm = *run.comm;
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
    for (;;) {
      Batch batch;
      bool more = false;
      agree(comm, [&] { more = run.loader->next(batch); });  // a bad image stops every rank
      if (!more) break;
      if (test_kill_now(run)) std::_Exit(137);
      // Ctrl-C reaches the ranks at different moments: they agree on it before the step.
      double stopping = stop && stop->load() ? 1 : 0;
      comm.all_reduce(&stopping, 1, ReduceOp::max);
      const StepOutcome step = train_step(run, batch);
      run.position.batch = batch.index + 1;
      if (step.stepped) {
        ++run.position.step;
        images_seen += step.images;
        loss_sum += step.loss;
        ++loss_count;
        result.last_loss = step.loss;
      }
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      const double steps_per_s = (run.position.step - first_step) / std::max(elapsed, 1e-9);
      if (run.lead())
        std::fprintf(stderr,
                     "\repoch %lld/%lld  step %lld/%lld  %.2f img/s  loss %.4f  ETA %s   ",
                     static_cast<long long>(run.position.epoch + 1),
                     static_cast<long long>(c.epochs), static_cast<long long>(run.position.batch),
                     static_cast<long long>(per_epoch), images_seen / std::max(elapsed, 1e-9),
                     result.last_loss,
                     format_duration((total_steps - run.position.step) / steps_per_s).c_str());
      if (stopping != 0) {
        if (run.lead()) {
          save_checkpoint(run);
          std::fprintf(stderr,
                       "\ninterrupted: checkpoint written to %s (resume with --resume %s)\n",
                       checkpoint_path(c.out).c_str(), c.out.c_str());
        }
        comm.barrier();  // the checkpoint is on disk before any rank exits
        result.position = run.position;
        result.interrupted = true;
        return result;
      }
    }
    if (run.lead()) std::fprintf(stderr, "\n");
    ++run.position.epoch;
    run.position.batch = 0;
    check_ranks_agree(run);
    double skipped = run.loader->skipped();
    comm.all_reduce(&skipped, 1, ReduceOp::sum);
    if (run.lead()) {
      Json line = Json::object();
      line.set("epoch", Json(run.position.epoch));
      line.set("step", Json(run.position.step));
      line.set("loss", loss_count ? Json(loss_sum / loss_count) : Json());
      line.set("lr", Json(run.sgd->lr()));
      line.set("images_per_s",
               Json(images_seen / std::max(1e-9, std::chrono::duration<double>(
                                                      std::chrono::steady_clock::now() - started)
                                                      .count())));
      if (comm.size() > 1) line.set("ranks", Json(static_cast<int64_t>(comm.size())));
      if (run.val_set && run.val_set->size() > 0) line.set("val_map", Json(validation_map(run)));
      if (skipped > 0) line.set("skipped_images", Json(static_cast<int64_t>(skipped)));
      std::printf("%s\n", write_json(line).c_str());
      std::fflush(stdout);
      save_checkpoint(run);
      append_metrics(c.out, line);
    }
  }
  if (run.lead()) {
    save_weights(*run.net, c.out + "/weights.safetensors");
    std::fprintf(stderr, "weights: %s\n", (c.out + "/weights.safetensors").c_str());
  }
  comm.barrier();
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
  j.set("precision", precision);
  j.set("seed", Json(seed));
  j.set("workers", Json(workers));
  j.set("peak_grad", peak_grad_name(peak_grad));
  j.set("skip_bad", skip_bad);
  j.set("sync_bn", sync_bn);
  j.set("micro_batches", Json(micro_batches));
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
    if (const Json* p = j.find("precision")) c.precision = p->as_string();  // older runs: fp32
    PRM_CHECK(j.at("seed").get_uint64(c.seed), "seed is not an unsigned integer");
    c.workers = j.at("workers").as_int64();
    c.peak_grad = parse_peak_grad(j.at("peak_grad").as_string());
    c.skip_bad = j.at("skip_bad").as_bool();
    if (const Json* sync = j.find("sync_bn")) c.sync_bn = sync->as_bool();  // older runs: off
    if (const Json* m = j.find("micro_batches")) c.micro_batches = m->as_int64();
    c.out = j.at("out").as_string();
  } catch (const Error& e) {
    throw Error(str_cat(source, ": damaged training configuration: ", e.what()));
  }
  return c;
}

TrainResult train(const TrainConfig& config, const std::atomic<bool>* stop) {
  PRM_CHECK(!config.out.empty(), "train: no output folder given");
  PRM_CHECK(config.epochs >= 1 && config.batch >= 1 && config.size >= 32 && config.workers >= 0 &&
                config.micro_batches >= 1,
            "train: need epochs >= 1, batch >= 1, size >= 32, workers >= 0, micro-batches >= 1");
  set_matmul_precision(parse_precision(config.precision));  // bf16: GEMM inputs only, dtype.h
  PRM_CHECK(!(config.sync_bn && config.micro_batches > 1),
            "train: --sync-bn and --micro-batches > 1 do not go together (synchronised statistics "
            "are those of each rank's whole part of the batch)");
  Comm& comm = world(parse_device(config.device));
  // Every rank checks before rank 0 writes anything (else a rank would see rank 0's new run).
  agree(comm, [&] {
    PRM_CHECK(!fs::exists(checkpoint_path(config.out)), config.out,
              ": already holds a training run (continue it with --resume ", config.out, ")");
  });
  agree(comm, [&] {
    std::error_code ec;
    if (comm.rank() == 0) fs::create_directories(config.out, ec);
    PRM_CHECK(!ec, config.out, ": cannot create the output folder (", ec.message(), ")");
  });
  agree(comm, [&] {
    PRM_CHECK(fs::is_directory(config.out), config.out,
              ": cannot create the output folder (not a directory, or not shared with rank 0)");
  });
  Run run;
  run.config = config;
  run.config.out = fs::path(config.out).string();
  build(run);
  broadcast_state(run);
  if (run.lead()) {
    write_file_atomic(config.out + "/config.json", write_json(run.config.to_json()) + "\n");
    save_checkpoint(run);  // epoch 0: the folder is a run from the start
  }
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
  agree(*run.comm, [&] {
    restore(run, ck, checkpoint_path(run_dir));
    PRM_CHECK(run.position.epoch <= run.config.epochs, run_dir, ": the run has ",
              run.position.epoch, " epochs already, more than the ", run.config.epochs,
              " asked for");
  });
  broadcast_state(run);
  if (run.lead())
    std::fprintf(stderr, "resuming %s at epoch %lld, batch %lld (step %lld)\n", run_dir.c_str(),
               static_cast<long long>(run.position.epoch + 1),
               static_cast<long long>(run.position.batch),
               static_cast<long long>(run.position.step));
  return run_epochs(run, stop);
}

}  // namespace prm
