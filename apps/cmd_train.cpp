// prm train: trains the PRM classifier on a VOC- or COCO-layout dataset (prm/train.h), or
// continues a run with --resume. Ctrl-C writes a checkpoint after the current step and exits 130.
#include <csignal>
#include <cstring>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <string>
#include <utility>

#include "args.h"
#include "commands.h"
#include "dist/comm.h"
#include "prm/train.h"

namespace prm {

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_interrupt(int) { g_stop.store(true); }

// mpirun ends the other ranks with SIGTERM when one dies: say so on each of them.
char g_terminated_text[256];
extern "C" void on_terminate(int) {
  const ssize_t n = static_cast<ssize_t>(std::strlen(g_terminated_text));
  if (n > 0 && write(2, g_terminated_text, static_cast<size_t>(n)) < 0) _exit(143);
  _exit(143);
}

// A flag given again on --resume must agree with the run's stored configuration.
void check_agrees(const Args& args, const char* flag, const std::string& stored) {
  if (!args.has(flag)) return;
  PRM_CHECK(args.get(flag) == stored, "--", flag, " ", args.get(flag),
            " differs from the run's stored configuration (", stored,
            "); a resumed run keeps its configuration (only --epochs and --workers may change)");
}

std::vector<int64_t> parse_epochs(const std::string& text) {
  std::vector<int64_t> epochs;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos
                                                                           : comma - start);
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    PRM_CHECK(!item.empty() && end && *end == '\0' && v >= 1, "--lr-drops: '", item,
              "' is not an epoch number (1-based)");
    epochs.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return epochs;
}

std::string number_text(double v) {
  char text[64];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

int train_command(const Args& args);

}  // namespace

int cmd_train(int argc, char** argv) {
  const TrainConfig d;
  Args args("train",
            "Trains a fully convolutional ResNet with image-level labels only: class scores by\n"
            "peak stimulation on the class response maps upsampled x8, multilabel soft-margin\n"
            "loss, SGD with momentum (docs/prm.md's settings are the defaults). The data is a\n"
            "PASCAL VOC root (20 classes) or an MS COCO root (its categories by ascending id; an\n"
            "image is positive for a class with any annotation of it, crowd included), detected\n"
            "or set by --format (COCO 2014: --train-split train2014 --val-split val2014). Writes\n"
            "RUN/checkpoint.safetensors every epoch and on Ctrl-C, RUN/metrics.jsonl (one line\n"
            "per epoch), and the final RUN/weights.safetensors for prm forward/infer/eval.");
  args.optional("data",
                "dataset root: VOC (VOCdevkit/VOC2012, its parent, or a prm synth folder) or COCO "
                "(annotations/instances_<split>.json, images in <split>/)");
  args.choice("format", {"auto", "voc", "coco"},
              "the dataset's layout: auto (COCO when DATA/annotations/ exists), voc or coco [auto]",
              "");
  args.optional("out", "run folder (created; must not hold a run already)");
  args.optional("resume", "continue the run in this folder (its stored configuration)");
  args.optional("train-split",
                "training split: VOC ImageSets/Main/<name>.txt, COCO annotations/"
                "instances_<name>.json (train2014, train2017) [train]");
  args.optional("val-split",
                "validation split for the per-epoch mAP (val2014 on COCO); 'none' to skip [val]");
  args.choice("arch", kArchChoices, "the network [resnet50]", "");
  args.optional("width", "stem width, 64 for the real networks [64]");
  args.optional("pretrained",
                "backbone weights, .safetensors or PyTorch .pth as published (torchvision names, "
                "fc.* ignored)");
  args.optional("size", "input height and width [448]");
  args.optional("batch", "batch size [16]");
  args.optional("epochs", "epochs in all (with --resume: continue up to this many) [20]");
  args.optional("lr", "learning rate of the classifier [0.01]");
  args.optional("backbone-lr-mult",
                "the backbone's rate is lr times this [0.01 with --pretrained, 1 without]");
  args.optional("lr-drops", "epochs (1-based, comma-separated) from which the rate is x0.1 [none]");
  args.optional("momentum", "SGD momentum [0.9]");
  args.optional("weight-decay", "SGD weight decay [0.0001]");
  args.choice("device", kDeviceChoices, "where to train [cpu]", "");
  args.choice("precision", kPrecisionChoices,
              "float32 GEMMs and convolutions: fp32 exact; tf32 tensor cores on CUDA (fp32 on the CPU); "
              "bf16 inputs with float32 sums (docs/precision.md) [fp32]",
              "");
  args.optional("seed", "initialisation, shuffling and flips [1]");
  args.optional("workers", "loader threads [2]");
  args.choice("peak-grad", {"official", "mean"},
              "class-score gradient: official (the paper's) or mean [official]", "");
  args.toggle("skip-bad", "drop images that cannot be decoded (warned and counted)");
  args.toggle("sync-bn",
              "under mpirun: batch-norm statistics over the global batch (all ranks), not each "
              "rank's part");
  args.optional("micro-batches",
                "gradient accumulation: each batch (each rank's part) in this many pieces, one "
                "forward and backward each, batch-norm statistics per piece [1]");
  args.optional("bucket-mb",
                "under mpirun: gradient all-reduce bucket size in MB; does not change the weights "
                "[25]");
  args.choice("grad-overlap", {"on", "off"},
              "under mpirun: reduce gradient buckets during the backward; does not change the "
              "weights [on]",
              "");
  args.toggle("test-die-during-checkpoint",
              "for tests: end like a kill -9 half-way through the first checkpoint written after "
              "a step");
  args.optional("test-kill-rank", "for tests: RANK:STEP, that rank ends like a kill -9 before that step");
  if (!args.parse(argc, argv)) return 0;
  std::signal(SIGINT, on_interrupt);
  // mpirun does not pass Ctrl-C on (it ends the ranks), but it forwards SIGUSR1: `kill -USR1
  // <mpirun>` stops a data-parallel run after the current step with a checkpoint.
  std::signal(SIGUSR1, on_interrupt);
  if (launched_ranks() > 1) {
    const std::string run = args.has("resume") ? args.get("resume")
                            : args.has("out")  ? args.get("out")
                                               : std::string();
    std::snprintf(g_terminated_text, sizeof g_terminated_text,
                  "\nprm train (rank %d): stopped: another rank failed or the job was killed; "
                  "the last checkpoint in %s (if one was written) is intact\n",
                  launched_rank(), run.c_str());
    std::signal(SIGTERM, on_terminate);
  }
  try {
    return train_command(args);
  } catch (const CollectiveError&) {
    throw;  // every rank stops with its message; MPI is finalised in step
  } catch (const std::exception& e) {
    // Seen by this rank alone: the others may be waiting in a collective, so end the job.
    if (world_initialised() && world().size() > 1) {
      std::fprintf(stderr, "prm train (rank %d): error: %s\n", world().rank(), e.what());
      abort_other_ranks(1);
    }
    throw;
  }
}

namespace {

int train_command(const Args& args) {
  TrainControls controls;
  controls.stop = &g_stop;
  if (args.has("bucket-mb")) controls.bucket_mb = args.get_double("bucket-mb");
  if (args.has("grad-overlap")) controls.grad_overlap = args.get("grad-overlap") == "on";
  controls.die_during_checkpoint = args.get_toggle("test-die-during-checkpoint");
  if (args.has("test-kill-rank")) {
    const std::string spec = args.get("test-kill-rank");
    long long rank = -1, step = -1;
    char tail = 0;
    PRM_CHECK(std::sscanf(spec.c_str(), "%lld:%lld%c", &rank, &step, &tail) == 2 && rank >= 0 &&
                  step >= 0,
              "--test-kill-rank: '", spec, "' is not RANK:STEP");
    controls.kill_rank = static_cast<int>(rank);
    controls.kill_step = step;
  }
  TrainResult result;
  if (args.has("resume")) {
    PRM_CHECK(!args.has("out") && !args.has("data"),
              "--resume takes the run folder; --data and --out come from its configuration");
    const std::string run = args.get("resume");
    const TrainConfig c = read_run_config(run);
    if (args.has("format") && args.get("format") != "auto")
      check_agrees(args, "format", c.format);
    check_agrees(args, "train-split", c.train_split);
    check_agrees(args, "val-split", c.val_split.empty() ? "none" : c.val_split);
    check_agrees(args, "arch", c.arch);
    check_agrees(args, "width", std::to_string(c.width));
    check_agrees(args, "pretrained", c.pretrained);
    check_agrees(args, "size", std::to_string(c.size));
    check_agrees(args, "batch", std::to_string(c.batch));
    check_agrees(args, "device", c.device);
    check_agrees(args, "precision", c.precision);
    check_agrees(args, "seed", std::to_string(c.seed));
    check_agrees(args, "peak-grad", peak_grad_name(c.head.peak_grad));
    check_agrees(args, "micro-batches", std::to_string(c.micro_batches));
    PRM_CHECK(!args.get_toggle("sync-bn") || c.sync_bn,
              "--sync-bn differs from the run's stored configuration (off)");
    if (args.has("lr-drops"))
      PRM_CHECK(parse_epochs(args.get("lr-drops")) == c.lr_drops,
                "--lr-drops differs from the run's stored configuration");
    const std::pair<const char*, double> rates[] = {{"lr", c.lr},
                                                     {"backbone-lr-mult", c.backbone_lr_mult},
                                                     {"momentum", c.momentum},
                                                     {"weight-decay", c.weight_decay}};
    for (const auto& [flag, stored] : rates)
      PRM_CHECK(!args.has(flag) || args.get_double(flag) == stored, "--", flag, " ",
                args.has(flag) ? args.get(flag) : "", " differs from the run's stored configuration (",
                number_text(stored), ")");
    result = resume_training(run, args.has("epochs") ? args.get_int("epochs") : 0, controls);
  } else {
    PRM_CHECK(args.has("data") && args.has("out"), "give --data and --out (or --resume RUN)");
    TrainConfig c;
    c.data = args.get("data");
    c.out = args.get("out");
    if (args.has("format")) c.format = args.get("format");
    if (args.has("train-split")) c.train_split = args.get("train-split");
    if (args.has("val-split")) c.val_split = args.get("val-split") == "none" ? "" : args.get("val-split");
    if (args.has("arch")) c.arch = args.get("arch");
    if (args.has("width")) c.width = args.get_int("width");
    if (args.has("pretrained")) c.pretrained = args.get("pretrained");
    if (args.has("size")) c.size = args.get_int("size");
    if (args.has("batch")) c.batch = args.get_int("batch");
    if (args.has("epochs")) c.epochs = args.get_int("epochs");
    if (args.has("lr")) c.lr = args.get_double("lr");
    if (args.has("lr-drops")) c.lr_drops = parse_epochs(args.get("lr-drops"));
    if (args.has("backbone-lr-mult")) {
      c.backbone_lr_mult = args.get_double("backbone-lr-mult");
    } else if (!args.has("pretrained")) {
      // The paper's 0.01 assumes ImageNet weights; a backbone trained from scratch at a hundredth
      // of the rate barely moves.
      c.backbone_lr_mult = 1.0;
      std::fprintf(stderr, "no --pretrained: the backbone trains from scratch at the full rate "
                   "(--backbone-lr-mult 1; the paper's 0.01 is for ImageNet weights)\n");
    }
    if (args.has("momentum")) c.momentum = args.get_double("momentum");
    if (args.has("weight-decay")) c.weight_decay = args.get_double("weight-decay");
    if (args.has("device")) c.device = args.get("device");
    if (args.has("device")) (void)args.get_device("device");  // cuda only when a GPU is visible
    if (args.has("precision")) c.precision = args.get("precision");
    if (args.has("seed")) c.seed = static_cast<uint64_t>(args.get_int("seed"));
    if (args.has("workers")) c.workers = args.get_int("workers");
    if (args.has("peak-grad")) c.head.peak_grad = parse_peak_grad(args.get("peak-grad"));
    c.skip_bad = args.get_toggle("skip-bad");
    c.sync_bn = args.get_toggle("sync-bn");
    if (args.has("micro-batches")) c.micro_batches = args.get_int("micro-batches");
    result = train(c, controls);
  }
  return result.interrupted ? 130 : 0;
}

}  // namespace

}  // namespace prm
