// GradReducer: sums the parameter gradients of a data-parallel step over the ranks, one all-reduce
// per bucket of parameters (docs/scaling.md).
//
// Buckets are filled in reverse registration order, the order in which backward finishes the
// gradients of a feed-forward network, up to `bucket_bytes` each. The backward engine reports each
// parameter whose gradient is final (run_backward's on_leaf_ready); its gradient is copied into its
// bucket's flat buffer, and a full bucket is reduced while the rest of the backward runs:
//   - on a communicator that allows it (MPI with MPI_THREAD_MULTIPLE, threads) a background thread
//     reduces the buckets on a duplicate communicator;
//   - otherwise (NCCL) the bucket's all-reduce is launched at once from the caller's thread, which
//     for NCCL is asynchronous on the stream.
// Buckets are always reduced in index order on every rank, whatever order their gradients become
// ready in, so the collectives match across ranks. finish() waits for the last bucket and writes
// the sums back into each parameter's .grad. A parameter that got no gradient on this rank (a rank
// with no images this step) contributes zeros.
//
// The reducer SUMS: the trainer scales each rank's loss by its share of the global batch, so the
// sum is the gradient of the global batch's mean loss (prm/train.cpp).
#pragma once
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "dist/comm.h"

namespace prm {

struct GradReducerOptions {
  size_t bucket_bytes = 25u << 20;  // PyTorch DDP's default bucket_cap_mb
  bool overlap = true;              // reduce buckets during backward (when the comm allows)
};

class GradReducer {
 public:
  GradReducer(Comm& comm, const std::vector<Tensor>& params,
              const GradReducerOptions& options = {});
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  void begin();                             // before the backward
  void on_grad_ready(const Tensor& param);  // from the backward engine; others are ignored
  void finish();                            // after it: .grad of every parameter is the sum

  size_t bucket_count() const { return buckets_.size(); }
  size_t total_bytes() const;
  bool overlapping() const { return worker_comm_ != nullptr; }

 private:
  struct Entry {
    size_t param, offset;  // offset in elements within the bucket
  };
  struct Bucket {
    Tensor flat;
    std::vector<Entry> entries;
    size_t pending = 0;
    bool ready = false;
  };
  void fill(size_t param);  // copies the gradient (or zeros) into its bucket
  void mark_filled(size_t param);
  void reduce_ready_in_order();  // inline mode
  void worker_loop();

  Comm& comm_;
  std::unique_ptr<Comm> worker_comm_;  // overlap mode
  std::vector<Tensor> params_;
  std::unordered_map<const TensorImpl*, size_t> index_;
  std::vector<std::pair<size_t, size_t>> where_;  // param -> (bucket, entry)
  std::vector<Bucket> buckets_;
  std::vector<bool> filled_;
  size_t next_reduce_ = 0;  // inline mode: the next bucket to reduce

  std::mutex mutex_;
  std::condition_variable cv_;
  std::thread worker_;
  std::exception_ptr error_;
  bool active_ = false;
};

}  // namespace prm
