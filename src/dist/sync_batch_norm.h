// The BatchNormGroup of a process group: synchronised batch norm (--sync-bn) over the ranks of a
// Comm. The trainer sets, every step, how many samples this rank and the whole group contribute.
#pragma once
#include <cstdint>

#include "dist/comm.h"
#include "tensor/ops/batch_norm.h"

namespace prm {

class CommBatchNormGroup : public BatchNormGroup {
 public:
  explicit CommBatchNormGroup(Comm& comm) : comm_(comm) {}
  void sum(Tensor& per_channel) override { comm_.all_reduce_sum(per_channel); }
  int64_t local_samples() const override { return local_; }
  int64_t group_samples() const override { return group_; }
  void set_samples(int64_t local, int64_t group) {
    local_ = local;
    group_ = group;
  }

 private:
  Comm& comm_;
  int64_t local_ = 0, group_ = 0;
};

}  // namespace prm
