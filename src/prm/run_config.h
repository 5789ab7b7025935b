// A training run's configuration: `prm train`'s flags, stored in every checkpoint's metadata and
// in RUN/config.json, and given back on --resume (docs/prm.md, "Training").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/json.h"
#include "prm/head.h"

namespace prm {

struct TrainConfig {
  std::string data;                  // VOC root (VOCdevkit/VOC2012, its parent, or prm synth)
                                     // or COCO root (annotations/instances_<split>.json)
  std::string format = "auto";       // "auto", "voc" or "coco" (data/voc.h
                                     // resolve_dataset_format); set to the layout found when the
                                     // run starts, so a resume reads the data as the run did
  std::string data_root;             // the dataset root as an absolute path, set when the run
                                     // starts (a resume from another folder reads the same data)
  Json train_fingerprint;            // the training split when the run started (fingerprint()
                                     // in train.cpp): a resume refuses a split that differs
  std::string train_split = "train";  // VOC: ImageSets/Main/<split>.txt; COCO: the <split> of
                                      // annotations/instances_<split>.json (train2014, ...)
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
  PrmHead head;                      // x8 upsampling, 3x3 peaks, the official gradient rule
  bool skip_bad = false;
  bool sync_bn = false;              // data-parallel: batch-norm statistics over all ranks
  int64_t micro_batches = 1;         // gradient accumulation: each rank's part in this many
                                     // pieces, batch norm per piece (R ranks without sync_bn
                                     // train like one process with R pieces)
  std::string out;

  Json to_json() const;
  // A configuration as to_json wrote it (or an older run's: fields added since get their
  // defaults; a lone "peak_grad" is the head's rule). prm::Error naming `source` when damaged.
  static TrainConfig from_json(const Json& j, const std::string& source);
};

}  // namespace prm
