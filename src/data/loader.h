// A threaded, prefetching batch loader over a VocDataset (a VOC or a COCO split; data/voc.h).
//
// Each epoch the sample order is shuffled from (seed, epoch); worker threads (std::thread) take
// whole batches in order, decode the JPEGs, resize to S x S (bilinear), flip half of them (a pure
// function of seed, epoch and sample) and normalise with ImageNet mean/std, and put the batch
// into a bounded queue of `prefetch` batches. The consumer gets batches in order, so a run is
// reproducible whatever the thread timing. With workers = 0 next() does the work itself.
// When the target device is CUDA the batch is assembled in page-locked host memory and copied to
// the device in next() (the caller's thread, so kernels and copies stay on it; workers only take
// and return page-locked buffers). The copy is synchronous, so a buffer is never reused while a
// transfer from it is in flight: making it asynchronous needs an event per buffer.
//
// A decoding error in a worker reaches the consumer as prm::Error naming the file, at the batch
// that holds it; with skip_bad the sample is dropped from its batch with a warning and counted.
// The destructor stops and joins the workers (also in the middle of an epoch).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "data/voc.h"
#include "tensor/tensor.h"

namespace prm {

class HostBuffer;

struct LoaderOptions {
  int batch_size = 16;
  int image_size = 448;
  int workers = 2;
  int prefetch = 4;  // batches decoded ahead of the consumer
  bool shuffle = true;
  bool drop_last = false;  // drop the last partial batch
  bool random_flip = true;
  uint64_t seed = 1;
  Device device = Device::cpu;
  bool skip_bad = false;
  // Data-parallel sharding: every global batch (batch_size samples of the epoch's order) is split
  // into shard_count contiguous parts, sizes differing by at most one, the larger ones first; this
  // loader decodes part shard_rank only. The parts of all ranks, in rank order, are the global
  // batch. With shard_count > 1, next() returns every global batch, also when this rank's part is
  // empty (a last batch smaller than the ranks, or every sample skipped by skip_bad): then
  // images and targets are undefined and indices empty, so that all ranks step together.
  int shard_rank = 0, shard_count = 1;
};

// The [begin, end) of rank `rank`'s part of a global batch of n samples (LoaderOptions).
std::pair<size_t, size_t> shard_range(size_t n, int rank, int count);

struct Batch {
  Tensor images;                // float32 [B, 3, S, S] on the target device
  Tensor targets;               // float32 [B, C] on the target device
  std::vector<size_t> indices;  // dataset indices of the B samples
  std::vector<bool> flipped;
  int64_t index = -1;           // which batch of the epoch (0-based)
};

class Loader {
 public:
  Loader(const VocDataset& dataset, const LoaderOptions& options);  // dataset must outlive it
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts (or restarts) epoch `epoch`: new order, workers begin prefetching at once. With
  // first_batch > 0 the epoch resumes there (the batches before it are not decoded): the same
  // batches follow as in an uninterrupted epoch.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the epoch; false when the epoch is over.
  bool next(Batch& batch);
  int64_t batches_per_epoch() const;
  int skipped() const;  // samples dropped by skip_bad so far
  const LoaderOptions& options() const { return options_; }

 private:
  struct Slot {
    std::unique_ptr<HostBuffer> pixels;  // when pinned
    Tensor images;                       // when on the CPU
    std::vector<size_t> indices;
    std::vector<bool> flipped;
    std::string error;
  };
  void worker_loop();
  Slot produce(int64_t epoch, int64_t batch_index);  // decodes one batch (no lock held)
  std::unique_ptr<HostBuffer> take_buffer();
  void give_buffer(std::unique_ptr<HostBuffer> buffer);

  const VocDataset& dataset_;
  LoaderOptions options_;
  int cuda_device_ = -1;  // the constructing thread's GPU, made the workers' own (pinned buffers)
  std::vector<size_t> order_;
  int64_t epoch_ = -1;
  uint64_t generation_ = 0;  // bumped by start_epoch; stale results are dropped
  int64_t next_job_ = 0;     // next batch index a worker will take
  int64_t next_out_ = 0;     // next batch index the consumer wants
  int64_t num_batches_ = 0;
  std::map<int64_t, Slot> ready_;
  std::vector<std::unique_ptr<HostBuffer>> free_buffers_;
  int skipped_ = 0;
  bool stop_ = false;
  mutable std::mutex mutex_;
  std::condition_variable work_cv_, ready_cv_;
  std::vector<std::thread> threads_;
};

}  // namespace prm
