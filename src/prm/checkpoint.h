// A training run's checkpoint, RUN/checkpoint.safetensors: everything `--resume` needs to go on
// exactly where the run stopped.
//   tensors   "model.<name>"    the network's parameters and batch-norm buffers
//             "sgd.<g>.<i>"     SGD's momentum buffer of parameter i of group g (once it exists)
//   metadata  format            "prm-checkpoint-1"
//             epoch, batch, step the position (TrainPosition)
//             config            the run's TrainConfig as JSON
//             metrics           RUN/metrics.jsonl as it stands with this checkpoint (one line per
//                               finished epoch): a resume writes the file again from it, so the
//                               two never disagree (a kill between them loses no line)
// Written atomically (temp file + rename): a run killed while writing keeps the previous one.
#pragma once
#include <cstdint>
#include <string>

#include "data/safetensors.h"
#include "layers/module.h"
#include "layers/sgd.h"
#include "prm/run_config.h"

namespace prm {

// Where a run stands: `epoch` epochs are complete and `batch` batches of the next one are done;
// `step` SGD steps were taken in all.
struct TrainPosition {
  int64_t epoch = 0, batch = 0, step = 0;
};

std::string checkpoint_path(const std::string& run_dir);

// die_half_way: a test hook that writes half of the new file under a temporary name and ends the
// process like a kill -9 (exit 137), to show the previous checkpoint survives.
void save_checkpoint(const std::string& run_dir, const Module& net, const SGD& sgd,
                     const TrainPosition& position, const TrainConfig& config,
                     const std::string& metrics, bool die_half_way = false);

struct Checkpoint {
  std::string path;
  SafetensorsContents contents;
  TrainConfig config;
  TrainPosition position;
  bool has_metrics = false;  // checkpoints from before the metrics were stored have none
  std::string metrics;
};

// Reads and checks RUN/checkpoint.safetensors (prm::Error naming the file when it is missing,
// not a prm checkpoint, or damaged).
Checkpoint read_checkpoint(const std::string& run_dir);

// Puts the checkpoint's weights, buffers and momentum buffers into net and sgd (built from the
// checkpoint's configuration).
void restore_checkpoint(const Checkpoint& checkpoint, Module& net, SGD& sgd);

}  // namespace prm
