// Training a PRM classifier with image-level labels (DESIGN.md "PRM, exactly", steps 1-4): a
// fully convolutional ResNet, class scores by peak stimulation on the CRMs upsampled x8, the
// multilabel soft-margin loss (difficult objects count as positives), SGD with momentum and a
// smaller learning rate for the pretrained backbone.
//
// A run lives in one folder, RUN:
//   RUN/checkpoint.safetensors  weights, BN buffers, SGD momentum buffers ("sgd.<g>.<i>"), and in
//                               its metadata the position (epoch, batch, step) and the full
//                               configuration; written atomically every epoch and on interrupt
//   RUN/weights.safetensors     the final weights (torchvision names + classifier.*), what
//                               `prm forward / infer / eval --weights` take
//   RUN/metrics.jsonl           one JSON object per finished epoch (loss, val classification mAP)
//   RUN/config.json             the configuration, for people
// Resuming continues exactly: the loader's order and flips depend only on (seed, epoch, sample),
// so 2 epochs in one go and 1 + resume + 1 give the same weights (bitwise on the CPU).
//
// Data-parallel (docs/scaling.md): under `mpirun -np R` every rank builds the same network, decodes
// its own part of every global batch of config.batch samples (LoaderOptions::shard_*), scales its
// loss by its share of the batch and the gradients are summed over the ranks (dist/grad_reducer.h),
// so the update is that of the global batch's mean loss whatever R is. With sync_bn the
// batch-norm statistics are those of the global batch too (then R ranks and one process give the
// same weights up to rounding); without it each rank normalises with its own part's statistics,
// as PyTorch's DistributedDataParallel does. Only rank 0 prints, validates and writes files; the
// ranks agree on every error (dist/comm.h agree()), so all of them stop together.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "data/json.h"
#include "tensor/ops/peak_stimulation.h"

namespace prm {

struct TrainConfig {
  std::string data;                  // VOC root (VOCdevkit/VOC2012, its parent, or prm synth)
  std::string train_split = "train";
  std::string val_split = "val";     // "" or a missing list: no validation
  std::string arch = "resnet50";
  int64_t width = 64;                // stem width (64 for the real networks; small for tests)
  std::string pretrained;            // backbone .safetensors (torchvision names), or ""
  int64_t size = 448;
  int64_t batch = 16;
  int64_t epochs = 20;
  double lr = 0.01;                  // the classifier's rate
  std::vector<int64_t> lr_drops;     // epochs (1-based) from which the rate is x0.1 more (none)
  double backbone_lr_mult = 0.01;    // the features' rate is lr * this (official config)
  double momentum = 0.9;
  double weight_decay = 1e-4;
  std::string device = "cpu";
  std::string precision = "fp32";    // float32 math on CUDA (tensor/dtype.h Precision)
  uint64_t seed = 1;
  int64_t workers = 2;
  PeakGrad peak_grad = PeakGrad::official;
  bool skip_bad = false;
  bool sync_bn = false;              // data-parallel: batch-norm statistics over all ranks
  int64_t micro_batches = 1;         // gradient accumulation: each rank's part in this many
                                     // pieces, batch norm per piece (R ranks without sync_bn
                                     // train like one process with R pieces)
  std::string out;

  Json to_json() const;
  static TrainConfig from_json(const Json& j, const std::string& source);
};

// Where a run stands: `epoch` epochs are complete and `batch` batches of the next one are done.
struct TrainPosition {
  int64_t epoch = 0, batch = 0, step = 0;
};

struct TrainResult {
  TrainPosition position;
  bool interrupted = false;  // stopped by `stop` (a checkpoint was written)
  double last_loss = 0;
};

// Trains config.epochs epochs into config.out (a new run: the folder must not hold a checkpoint).
// `stop`, when set (Ctrl-C), makes the run write a checkpoint after the current step and return.
TrainResult train(const TrainConfig& config, const std::atomic<bool>* stop = nullptr);

// Continues the run in `run_dir` up to `epochs` epochs in all, with the configuration stored in
// its checkpoint.
TrainResult resume_training(const std::string& run_dir, int64_t epochs,
                            const std::atomic<bool>* stop = nullptr);

// The configuration stored in a run's checkpoint (prm::Error naming the file when damaged).
TrainConfig read_run_config(const std::string& run_dir);

}  // namespace prm
