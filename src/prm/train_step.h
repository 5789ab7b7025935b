// One SGD step of PRM training (docs/prm.md, "Training"): forward, class scores by the PRM head,
// the multilabel soft-margin loss, backward, the update. `prm train` takes every step through
// train_step, and `prm bench --only train` times the same function (through StandaloneStep).
//
// Data-parallel (docs/scaling.md): the batch is the global batch of n images; each rank takes
// its part (a single process: all of it) in micro_batches pieces, and each piece's loss is
// scaled by its share of n, so the gradients, accumulated over the pieces and summed over the
// ranks (the GradReducer), are those of the global batch's mean loss. One process with one piece
// is the plain step (loss.backward() with the default seed). A rank with no images still takes
// part in synchronised batch norm's collectives with a placeholder image that weighs nothing in
// the statistics and gets a zero loss gradient.
#pragma once
#include <cstdint>
#include <memory>

#include "data/loader.h"
#include "dist/comm.h"
#include "dist/grad_reducer.h"
#include "dist/sync_batch_norm.h"
#include "layers/resnet.h"
#include "layers/sgd.h"
#include "prm/head.h"
#include "prm/run_config.h"

namespace prm {

// What a step works on; the pointers are not owned.
struct StepContext {
  Module* net = nullptr;            // images [n, 3, S, S] -> CRMs [n, C, h, w]
  SGD* sgd = nullptr;
  PrmHead head;
  Comm* comm = nullptr;             // a single rank for a plain process
  GradReducer* reducer = nullptr;   // under mpirun (even with one rank); null otherwise
  bool sync_bn = false;             // the network's batch norms use a CommBatchNormGroup
  CommBatchNormGroup* bn_group = nullptr;
  int64_t micro_batches = 1;
  int64_t size = 0, classes = 0;    // the placeholder's image size and target width
  Device device = Device::cpu;
};

struct StepOutcome {
  bool stepped = false;  // false when no rank had an image, or the loss was not finite
  double loss = 0;       // the global batch's mean loss (NaN when not finite on any rank)
  int64_t images = 0;    // in the global batch
};

// A step on this rank's part of a global batch. When the loss is not finite (on any rank) no
// gradient is applied and the outcome says so (loss NaN, stepped false): the caller stops.
StepOutcome train_step(StepContext& step, const Batch& batch);

// SGD over the network's two groups with a run's rate, momentum and weight decay.
std::unique_ptr<SGD> make_sgd(const ResNet& net, const TrainConfig& config);

// A single process's training step with a run's settings on batches it is given: what
// `prm bench` times, built as `prm train` builds its own.
class StandaloneStep {
 public:
  StandaloneStep(ResNet& net, const TrainConfig& config);
  StepOutcome operator()(const Batch& batch) { return train_step(context_, batch); }
  SGD& sgd() { return *sgd_; }

 private:
  SingleComm comm_;
  std::unique_ptr<SGD> sgd_;
  StepContext context_;
};

}  // namespace prm
