// Training a PRM classifier with image-level labels (docs/prm.md, "Training"): a fully
// convolutional ResNet, class scores by the PRM head (peak stimulation on the CRMs upsampled x8),
// the multilabel soft-margin loss (difficult objects count as positives), SGD with momentum and
// a smaller learning rate for the pretrained backbone. The data is a PASCAL VOC or an MS COCO
// split (data/voc.h VocDataset; docs/coco.md, "Layout and training"), the layout detected or
// forced by TrainConfig::format and recorded in the run. The pieces live apart:
//   run_config.h   the configuration (flags, JSON)
//   checkpoint.h   the checkpoint format, save / read / restore
//   train_step.h   one SGD step (also what `prm bench` times)
//   train.cpp      this file: building a run, the epoch loop, validation, progress, metrics
//
// A run lives in one folder, RUN:
//   RUN/checkpoint.safetensors  weights, BN buffers, SGD momentum buffers, the position and the
//                               configuration (checkpoint.h); written atomically every epoch
//                               and on interrupt
//   RUN/weights.safetensors     the final weights (torchvision names + classifier.*), what
//                               `prm forward / infer / eval --weights` take
//   RUN/metrics.jsonl           one JSON object per finished epoch (loss, val classification mAP)
//   RUN/config.json             the configuration, for people
// Resuming continues exactly: the loader's order and flips depend only on (seed, epoch, sample),
// so 2 epochs in one go and 1 + resume + 1 give the same weights (bitwise on the CPU).
//
// Data-parallel (docs/scaling.md): under `mpirun -np R` every rank builds the same network, decodes
// its own part of every global batch of config.batch samples (LoaderOptions::shard_*), and
// train_step makes the update that of the global batch's mean loss whatever R is. With sync_bn the
// batch-norm statistics are those of the global batch too (then R ranks and one process give the
// same weights up to rounding); without it each rank normalises with its own part's statistics,
// as PyTorch's DistributedDataParallel does. Only rank 0 prints, validates and writes files; the
// ranks agree on every error (dist/comm.h agree()), so all of them stop together.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>

#include "prm/checkpoint.h"
#include "prm/run_config.h"

namespace prm {

// How a run is driven; none of it changes the weights, none of it is stored.
struct TrainControls {
  const std::atomic<bool>* stop = nullptr;  // set (Ctrl-C): checkpoint after this step, return
  // The gradient all-reduce's buckets (MB; 0: GradReducerOptions' default) and whether buckets
  // are reduced during the backward (dist/grad_reducer.h; docs/scaling.md).
  double bucket_mb = 0;
  bool grad_overlap = true;
  // Test hooks: die like a kill -9 half-way through writing the first checkpoint after a step;
  // rank kill_rank dies like a kill -9 before step kill_step.
  bool die_during_checkpoint = false;
  int kill_rank = -1;
  int64_t kill_step = -1;
};

struct TrainResult {
  TrainPosition position;
  bool interrupted = false;  // stopped by `stop` (a checkpoint was written)
  double last_loss = 0;
};

// Trains config.epochs epochs into config.out (a new run: the folder must not hold a checkpoint).
TrainResult train(const TrainConfig& config, const TrainControls& controls = {});

// Continues the run in `run_dir` up to `epochs` epochs in all (0: as configured), with the
// configuration stored in its checkpoint.
TrainResult resume_training(const std::string& run_dir, int64_t epochs,
                            const TrainControls& controls = {});

// Why `ranks` data-parallel ranks cannot train with a global batch of `batch` images ("" when
// they can): every rank needs at least one image of each batch.
std::string rank_batch_problem(int ranks, int64_t batch);

// The configuration stored in a run's checkpoint (prm::Error naming the file when damaged).
TrainConfig read_run_config(const std::string& run_dir);

}  // namespace prm
