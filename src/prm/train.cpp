#include "prm/train.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "data/coco.h"
#include "data/files.h"
#include "data/loader.h"
#include "data/metrics.h"
#include "data/progress.h"
#include "data/voc.h"
#include "dist/comm.h"
#include "dist/grad_reducer.h"
#include "dist/sync_batch_norm.h"
#include "layers/resnet.h"
#include "layers/sgd.h"
#include "prm/train_step.h"
#include "prm/weights.h"
#include "tensor/allocator.h"
#include "tensor/autograd.h"

namespace fs = std::filesystem;

namespace prm {

namespace {

std::string format_duration(double seconds) {
  const long s = seconds > 0 && std::isfinite(seconds) ? static_cast<long>(seconds + 0.5) : 0;
  char text[32];
  std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return text;
}

// v with `digits` decimals, for the progress line.
std::string fixed(double v, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}

// Everything a run holds while it trains.
struct Run {
  TrainConfig config;
  TrainControls controls;
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
  StepContext step;
  std::string metrics;  // RUN/metrics.jsonl's lines so far, stored in every checkpoint
  bool lead() const { return comm->rank() == 0; }
};

VocOptions voc_options(const TrainConfig& c, const std::string& split) {
  VocOptions o;
  o.root = c.data_root.empty() ? c.data : c.data_root;
  o.split = split;
  o.skip_bad = c.skip_bad;
  o.format = c.format;
  return o;
}

// Whether the dataset lists this split (validation is optional).
bool has_split(const TrainConfig& c, const std::string& split) {
  if (split.empty()) return false;
  const std::string root = c.data_root.empty() ? c.data : c.data_root;
  if (resolve_dataset_format(root, c.format) == "coco")
    return fs::exists(coco_annotation_path(root, split));
  return fs::exists(resolve_voc_root(root) + "/ImageSets/Main/" + split + ".txt");
}

// What identifies a training split: its image count, a hash of its image ids in order (FNV-1a,
// 64 bits) and each class's count of positive images.
Json fingerprint(const VocDataset& set) {
  uint64_t h = 1469598103934665603ull;
  for (const VocSample& s : set.samples()) {
    for (char ch : s.id + "\n") h = (h ^ static_cast<uint8_t>(ch)) * 1099511628211ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  Json positives = Json::object();
  for (size_t c = 0; c < set.classes().size(); ++c) {
    int64_t n = 0;
    for (const VocSample& s : set.samples()) n += s.target[c] > 0;
    positives.set(set.classes()[c], Json(n));
  }
  return Json::object({{"images", Json(static_cast<int64_t>(set.size()))},
                       {"ids_fnv1a", Json(std::string(hex))},
                       {"positives", positives}});
}

// A resumed run's split against the one it started with: what differs, or "".
std::string fingerprint_differences(const Json& now, const Json& then) {
  std::string d;
  auto add = [&](const std::string& what) { d += (d.empty() ? "" : "; ") + what; };
  if (write_json(now.at("images")) != write_json(then.at("images")))
    add(str_cat(write_json(now.at("images")), " images (the run had ",
                write_json(then.at("images")), ")"));
  else if (write_json(now.at("ids_fnv1a")) != write_json(then.at("ids_fnv1a")))
    add("other image ids");
  for (const auto& [name, n] : now.at("positives").fields()) {
    const Json* old = then.at("positives").find(name);
    if (!old || write_json(*old) != write_json(n))
      add(str_cat("'", name, "': ", write_json(n), " positive images (the run had ",
                  old ? write_json(*old) : "none", ")"));
  }
  return d;
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
  const std::string problem = rank_batch_problem(R, c.batch);
  if (!problem.empty()) throw CollectiveError(problem);  // every rank sees this alike
  check_same_config(comm, c);
  agree(comm, [&] { run.train_set = std::make_unique<VocDataset>(voc_options(c, c.train_split)); });
  agree(comm, [&] {
    PRM_CHECK(run.train_set->size() > 0, c.data, ": split '", c.train_split, "' has no images");
    const Json now = fingerprint(*run.train_set);
    if (run.config.train_fingerprint.is_null()) {
      run.config.train_fingerprint = now;  // a new run
    } else {
      const std::string differ = fingerprint_differences(now, run.config.train_fingerprint);
      PRM_CHECK(differ.empty(), voc_options(c, c.train_split).root, ": split '", c.train_split,
                "' is not the one this run trained on: ", differ);
    }
    if (run.lead() && has_split(c, c.val_split)) {  // only rank 0 validates
      run.val_set = std::make_unique<VocDataset>(voc_options(c, c.val_split));
    } else if (run.lead() && !c.val_split.empty()) {  // on COCO: val2014, not val
      std::fprintf(stderr, "no validation: %s has no split '%s' (give --val-split NAME, or none)\n",
                   voc_options(c, c.val_split).root.c_str(), c.val_split.c_str());
    }
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
  run.sgd = make_sgd(*run.net, c);
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
    GradReducerOptions ro;
    if (run.controls.bucket_mb > 0)
      ro.bucket_bytes = static_cast<size_t>(std::max(1.0, run.controls.bucket_mb) * 1048576.0);
    ro.overlap = run.controls.grad_overlap;
    run.reducer = std::make_unique<GradReducer>(comm, run.net->parameters(), ro);
    if (c.sync_bn) {
      run.bn_group = std::make_unique<CommBatchNormGroup>(comm);
      set_batch_norm_group(*run.net, run.bn_group.get());
    }
  }
  StepContext& s = run.step;
  s.net = run.net.get();
  s.sgd = run.sgd.get();
  s.head = c.head;
  s.comm = &comm;
  s.reducer = run.reducer.get();
  s.sync_bn = c.sync_bn;
  s.bn_group = run.bn_group.get();
  s.micro_batches = c.micro_batches;
  s.size = c.size;
  s.classes = options.num_classes;
  s.device = run.device;
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

void save_run_checkpoint(const Run& run) {
  save_checkpoint(run.config.out, *run.net, *run.sgd, run.position, run.config, run.metrics,
                  run.controls.die_during_checkpoint && run.position.step > 0);
}

// Classification mAP on the validation split: eval mode, class scores by the head, VOC's
// labels (an image whose objects of a class are all difficult is left out of that class); on
// COCO an image is positive for a class when it has an annotation of it.
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
    const std::vector<double> v = run.step.head.scores(run.net->forward(batch.images)).to_vector();
    for (size_t b = 0; b < batch.indices.size(); ++b) {
      scores.emplace_back(v.begin() + b * C, v.begin() + (b + 1) * C);
      labels.push_back(val.image_labels(batch.indices[b]));
    }
  }
  run.net->train();
  return classification_map(scores, labels, static_cast<int>(C)).mean;
}

// RUN/metrics.jsonl: one JSON line per finished epoch, written again whole from Run::metrics.
std::string metrics_path(const std::string& run_dir) { return run_dir + "/metrics.jsonl"; }

TrainResult run_epochs(Run& run) {
  const TrainConfig& c = run.config;
  const TrainControls& controls = run.controls;
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
      if (controls.kill_rank == comm.rank() && controls.kill_step == run.position.step)
        std::_Exit(137);
      // Ctrl-C reaches the ranks at different moments: they agree on it before the step.
      double stopping = controls.stop && controls.stop->load() ? 1 : 0;
      comm.all_reduce(&stopping, 1, ReduceOp::max);
      const StepOutcome step = train_step(run.step, batch);
      if (!std::isfinite(step.loss)) {  // every rank sees the same global loss
        const std::string text = str_cat("the loss became ", step.loss, " at epoch ",
                                         run.position.epoch + 1, " batch ", run.position.batch + 1,
                                         "; stopped, the last good checkpoint is kept in ",
                                         checkpoint_path(c.out));
        if (run.reducer) throw CollectiveError(text);
        throw Error(text);
      }
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
        progress_update(str_cat("epoch ", run.position.epoch + 1, "/", c.epochs, "  step ",
                                run.position.batch, "/", per_epoch, "  ",
                                fixed(images_seen / std::max(elapsed, 1e-9), 2), " img/s  loss ",
                                fixed(result.last_loss, 4), "  ETA ",
                                format_duration((total_steps - run.position.step) / steps_per_s)));
      if (stopping != 0) {
        if (run.lead()) {
          save_run_checkpoint(run);
          progress_end();
          std::fprintf(stderr,
                       "interrupted: checkpoint written to %s (resume with --resume %s)\n",
                       checkpoint_path(c.out).c_str(), c.out.c_str());
        }
        comm.barrier();  // the checkpoint is on disk before any rank exits
        result.position = run.position;
        result.interrupted = true;
        return result;
      }
    }
    if (run.lead()) progress_end();
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
      // The checkpoint first, holding the new line; then the file from it. A kill between the
      // two leaves the file one line short, and the resume writes it again from the checkpoint.
      run.metrics += write_json(line) + "\n";
      save_run_checkpoint(run);
      write_file_atomic(metrics_path(c.out), run.metrics);
    }
  }
  if (run.lead()) {
    WeightsInfo info;
    info.arch = c.arch;
    info.width = c.width;
    info.size = c.size;
    info.classes = run.train_set->classes();
    info.head = c.head;
    save_weights(*run.net, c.out + "/weights.safetensors", weights_metadata(info));
    std::fprintf(stderr, "weights: %s\n", (c.out + "/weights.safetensors").c_str());
  }
  comm.barrier();
  result.position = run.position;
  return result;
}

}  // namespace

std::string rank_batch_problem(int ranks, int64_t batch) {
  if (ranks <= batch) return "";
  return str_cat("started with ", ranks, " ranks but --batch is ", batch,
                 ": every rank needs at least one image of each batch (the batch is the global "
                 "batch); start at most ", batch, " ranks");
}

TrainResult train(const TrainConfig& config, const TrainControls& controls) {
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
    // Old files without a checkpoint (another program's, or a run whose folder was emptied by
    // hand) would be appended to (metrics.jsonl) or overwritten (weights.safetensors).
    std::error_code ec;
    PRM_CHECK(!fs::is_directory(config.out, ec) || fs::is_empty(config.out, ec), config.out,
              ": holds files but no training run (no checkpoint.safetensors); give an empty or "
              "new folder");
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
  run.controls = controls;
  agree(comm, [&] {
    std::error_code ec;
    run.config.format = resolve_dataset_format(config.data, config.format);
    const std::string root =
        run.config.format == "coco" ? config.data : resolve_voc_root(config.data);
    run.config.data_root = fs::absolute(root, ec).string();
    run.config.train_fingerprint = Json();  // taken from the data in build()
  });
  build(run);
  broadcast_state(run);
  if (run.lead()) {
    write_file_atomic(config.out + "/config.json", write_json(run.config.to_json()) + "\n");
    save_run_checkpoint(run);  // epoch 0: the folder is a run from the start
  }
  return run_epochs(run);
}

TrainConfig read_run_config(const std::string& run_dir) { return read_checkpoint(run_dir).config; }

TrainResult resume_training(const std::string& run_dir, int64_t epochs,
                            const TrainControls& controls) {
  const Checkpoint ck = read_checkpoint(run_dir);
  if (world(parse_device(ck.config.device)).rank() == 0)
    if (const int n = remove_stale_temp_files(run_dir))
      std::fprintf(stderr, "removed %d temporary file(s) left in %s by a run that was killed while "
                   "writing\n", n, run_dir.c_str());
  Run run;
  run.config = ck.config;
  run.config.out = run_dir;
  run.controls = controls;
  if (epochs > 0) run.config.epochs = epochs;
  build(run);
  agree(*run.comm, [&] {
    restore_checkpoint(ck, *run.net, *run.sgd);
    run.position = ck.position;
    // metrics.jsonl as the checkpoint knows it (a run from before the checkpoint held it: the
    // file as it is).
    const std::string file = metrics_path(run_dir);
    run.metrics = ck.has_metrics ? ck.metrics : fs::exists(file) ? read_file_bytes(file) : "";
    PRM_CHECK(run.position.epoch <= run.config.epochs, run_dir, ": the run has ",
              run.position.epoch, " epochs already, more than the ", run.config.epochs,
              " asked for");
  });
  broadcast_state(run);
  if (run.lead()) write_file_atomic(metrics_path(run_dir), run.metrics);
  if (run.lead())
    std::fprintf(stderr, "resuming %s at epoch %lld, batch %lld (step %lld)\n", run_dir.c_str(),
                 static_cast<long long>(run.position.epoch + 1),
                 static_cast<long long>(run.position.batch),
                 static_cast<long long>(run.position.step));
  return run_epochs(run);
}

}  // namespace prm
