#include "data/loader.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>

#include "data/host_buffer.h"
#include "data/image.h"
#include "data/transforms.h"
#include "tensor/allocator.h"

namespace prm {

std::pair<size_t, size_t> shard_range(size_t n, int rank, int count) {
  const size_t r = static_cast<size_t>(rank), R = static_cast<size_t>(count);
  const size_t base = n / R, extra = n % R;
  const size_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

Loader::Loader(const VocDataset& dataset, const LoaderOptions& options)
    : dataset_(dataset), options_(options) {
  PRM_CHECK(options_.batch_size > 0, "Loader: batch size must be positive, got ",
            options_.batch_size);
  PRM_CHECK(options_.image_size > 0, "Loader: image size must be positive, got ",
            options_.image_size);
  PRM_CHECK(options_.workers >= 0, "Loader: negative worker count ", options_.workers);
  PRM_CHECK(options_.shard_count >= 1 && options_.shard_rank >= 0 &&
                options_.shard_rank < options_.shard_count,
            "Loader: shard ", options_.shard_rank, " of ", options_.shard_count, " does not exist");
  PRM_CHECK(options_.device == Device::cpu || cuda_available(),
            "Loader: target device cuda but no CUDA device is available");
  options_.prefetch = std::max(options_.prefetch, 1);
  if (options_.device == Device::cuda) cuda_device_ = cuda_current_device();
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

int64_t Loader::batches_per_epoch() const {
  const int64_t n = static_cast<int64_t>(dataset_.size()), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

int Loader::skipped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return skipped_;
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  std::vector<size_t> order(dataset_.size());
  std::iota(order.begin(), order.end(), 0);
  if (options_.shuffle) {
    std::mt19937_64 rng(options_.seed * 1000003u + static_cast<uint64_t>(epoch));
    std::shuffle(order.begin(), order.end(), rng);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    order_ = std::move(order);
    epoch_ = epoch;
    ++generation_;
    num_batches_ = batches_per_epoch();
    next_job_ = std::clamp<int64_t>(first_batch, 0, num_batches_);
    next_out_ = next_job_;
    for (auto& kv : ready_)
      if (kv.second.pixels) free_buffers_.push_back(std::move(kv.second.pixels));
    ready_.clear();
  }
  work_cv_.notify_all();
}

std::unique_ptr<HostBuffer> Loader::take_buffer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!free_buffers_.empty()) {
      std::unique_ptr<HostBuffer> b = std::move(free_buffers_.back());
      free_buffers_.pop_back();
      return b;
    }
  }
  const size_t bytes = sizeof(float) * 3 * static_cast<size_t>(options_.image_size) *
                       options_.image_size * options_.batch_size;
  return std::make_unique<HostBuffer>(bytes, true);
}

void Loader::give_buffer(std::unique_ptr<HostBuffer> buffer) {
  std::lock_guard<std::mutex> lock(mutex_);
  free_buffers_.push_back(std::move(buffer));
}

Loader::Slot Loader::produce(int64_t epoch, int64_t batch_index) {
  Slot slot;
  std::vector<size_t> wanted;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t begin = static_cast<size_t>(batch_index) * options_.batch_size;
    const size_t end = std::min(order_.size(), begin + options_.batch_size);
    const auto [lo, hi] = shard_range(end - begin, options_.shard_rank, options_.shard_count);
    wanted.assign(order_.begin() + begin + lo, order_.begin() + begin + hi);
  }
  const int S = options_.image_size;
  const size_t per_image = 3 * static_cast<size_t>(S) * S;
  float* dst = nullptr;
  if (wanted.empty()) return slot;  // this rank's part of a small last batch
  if (options_.device == Device::cuda) {
    // Pinned memory belongs to the allocating thread's current device, and a worker thread starts
    // on device 0: without this, every rank of `mpirun -np 2` would open a context on GPU 0 (a few
    // hundred MB there, a failure where GPU 0 is exclusive to one process).
    cuda_set_device(cuda_device_);
    slot.pixels = take_buffer();
    dst = static_cast<float*>(slot.pixels->data());
  } else {
    slot.images = Tensor::empty({static_cast<int64_t>(wanted.size()), 3, S, S});
    dst = slot.images.data<float>();
  }
  for (size_t idx : wanted) {
    const VocSample& s = dataset_.sample(idx);
    const bool flip =
        options_.random_flip && flip_for(options_.seed, epoch, static_cast<int64_t>(idx));
    try {
      const Image img = load_image(s.image_path, 3);
      resize_flip_normalize(img, S, flip, dst + slot.indices.size() * per_image);
    } catch (const std::exception& e) {
      if (!options_.skip_bad) {
        slot.error = e.what();
        return slot;
      }
      std::fprintf(stderr, "warning: skipping a sample: %s\n", e.what());
      std::lock_guard<std::mutex> lock(mutex_);
      ++skipped_;
      continue;
    }
    slot.indices.push_back(idx);
    slot.flipped.push_back(flip);
  }
  return slot;
}

void Loader::worker_loop() {
  for (;;) {
    int64_t job = 0, epoch = 0;
    uint64_t gen = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [this] {
        return stop_ || (epoch_ >= 0 && next_job_ < num_batches_ &&
                         next_job_ < next_out_ + options_.prefetch);
      });
      if (stop_) return;
      job = next_job_++;
      epoch = epoch_;
      gen = generation_;
    }
    Slot slot;
    try {
      slot = produce(epoch, job);
    } catch (const std::exception& e) {  // allocation failures: reported at this batch
      slot.error = e.what();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (gen != generation_ || stop_) {
        if (slot.pixels) free_buffers_.push_back(std::move(slot.pixels));
        continue;
      }
      ready_.emplace(job, std::move(slot));
    }
    ready_cv_.notify_all();
  }
}

bool Loader::next(Batch& batch) {
  Slot slot;
  int64_t out_index = -1;
  for (;;) {
    int64_t job = 0, epoch = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      PRM_CHECK(epoch_ >= 0, "Loader::next: call start_epoch first");
      if (next_out_ >= num_batches_) return false;
      job = next_out_;
      epoch = epoch_;
      if (!threads_.empty()) {
        ready_cv_.wait(lock, [&] { return stop_ || ready_.count(job); });
        PRM_CHECK(!stop_, "Loader::next: loader is shutting down");
        slot = std::move(ready_[job]);
        ready_.erase(job);
      }
      ++next_out_;
    }
    work_cv_.notify_all();  // a prefetch slot opened
    if (threads_.empty()) slot = produce(epoch, job);
    if (!slot.error.empty()) {
      if (slot.pixels) give_buffer(std::move(slot.pixels));
      throw Error(slot.error);
    }
    out_index = job;
    if (!slot.indices.empty()) break;
    if (slot.pixels) give_buffer(std::move(slot.pixels));
    if (options_.shard_count > 1) {  // an empty part: the ranks still step together
      batch = Batch();
      batch.index = job;
      return true;
    }
    // every sample skipped: next batch
  }
  const int64_t B = static_cast<int64_t>(slot.indices.size()), S = options_.image_size;
  const int64_t C = static_cast<int64_t>(dataset_.classes().size());
  std::vector<float> targets(static_cast<size_t>(B * C));
  for (int64_t i = 0; i < B; ++i) {
    const std::vector<float>& t = dataset_.sample(slot.indices[i]).target;
    std::copy(t.begin(), t.end(), targets.begin() + i * C);
  }
  if (slot.pixels) {
    batch.images =
        Tensor::from_data(slot.pixels->data(), {B, 3, S, S}, DType::f32, options_.device);
    give_buffer(std::move(slot.pixels));
  } else {
    batch.images = slot.images.numel() == B * 3 * S * S
                       ? slot.images
                       : Tensor::from_data(slot.images.raw_data(), {B, 3, S, S}, DType::f32);
  }
  batch.targets = Tensor::from_data(targets.data(), {B, C}, DType::f32, options_.device);
  batch.indices = std::move(slot.indices);
  batch.index = out_index;
  batch.flipped = std::move(slot.flipped);
  return true;
}

}  // namespace prm
