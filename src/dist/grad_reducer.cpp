#include "dist/grad_reducer.h"

#include "tensor/allocator.h"

namespace prm {

GradReducer::GradReducer(Comm& comm, const std::vector<Tensor>& params,
                         const GradReducerOptions& options)
    : comm_(comm), params_(params), where_(params.size()), filled_(params.size(), false) {
  PRM_CHECK(options.bucket_bytes > 0, "GradReducer: bucket size must be positive");
  // Reverse registration order: the classifier's gradients are final first.
  std::vector<std::vector<size_t>> groups;
  size_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k];
    PRM_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64,
              "GradReducer: parameters must be float32 or float64, got ", p.describe());
    index_[&p.impl()] = k;
    const size_t b = static_cast<size_t>(p.numel()) * dtype_size(p.dtype());
    const bool same_kind = !groups.empty() && params_[groups.back().front()].dtype() == p.dtype() &&
                           params_[groups.back().front()].device() == p.device();
    if (groups.empty() || !same_kind || bytes + b > options.bucket_bytes) {
      groups.emplace_back();
      bytes = 0;
    }
    groups.back().push_back(k);
    bytes += b;
  }
  for (const std::vector<size_t>& g : groups) {
    Bucket bucket;
    size_t numel = 0;
    for (size_t k : g) {
      where_[k] = {buckets_.size(), bucket.entries.size()};
      bucket.entries.push_back({k, numel});
      numel += static_cast<size_t>(params_[k].numel());
    }
    const Tensor& first = params_[g.front()];
    bucket.flat = Tensor::empty({static_cast<int64_t>(numel)}, first.dtype(), first.device());
    buckets_.push_back(std::move(bucket));
  }
  if (options.overlap && comm_.concurrent() && comm_.size() > 1) worker_comm_ = comm_.duplicate();
}

GradReducer::~GradReducer() {
  if (worker_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      active_ = false;
    }
    cv_.notify_all();
    worker_.join();
  }
}

size_t GradReducer::total_bytes() const {
  size_t b = 0;
  for (const Bucket& bucket : buckets_)
    b += static_cast<size_t>(bucket.flat.numel()) * dtype_size(bucket.flat.dtype());
  return b;
}

void GradReducer::begin() {
  PRM_CHECK(!active_, "GradReducer::begin: the previous step was not finished");
  std::fill(filled_.begin(), filled_.end(), false);
  for (Bucket& b : buckets_) {
    b.pending = b.entries.size();
    b.ready = false;
  }
  next_reduce_ = 0;
  error_ = nullptr;
  active_ = true;
  if (worker_comm_) worker_ = std::thread([this] { worker_loop(); });
}

void GradReducer::fill(size_t k) {
  const Tensor& p = params_[k];
  const auto [b, e] = where_[k];
  Bucket& bucket = buckets_[b];
  const size_t elem = dtype_size(p.dtype());
  char* dst = static_cast<char*>(bucket.flat.raw_data()) + bucket.entries[e].offset * elem;
  const size_t bytes = static_cast<size_t>(p.numel()) * elem;
  Tensor g = p.grad();
  if (!g.defined()) g = Tensor::zeros(p.shape(), p.dtype(), p.device());
  PRM_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(),
            "GradReducer: the gradient ", g.describe(), " does not match its parameter ",
            p.describe());
  device_copy(dst, p.device(), g.raw_data(), g.device(), bytes);
}

void GradReducer::mark_filled(size_t k) {
  filled_[k] = true;
  const size_t b = where_[k].first;
  bool now_ready = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--buckets_[b].pending == 0) buckets_[b].ready = now_ready = true;
  }
  if (!now_ready) return;
  if (worker_comm_)
    cv_.notify_all();
  else
    reduce_ready_in_order();
}

void GradReducer::on_grad_ready(const Tensor& param) {
  if (!active_) return;
  auto it = index_.find(&param.impl());
  if (it == index_.end() || filled_[it->second]) return;
  fill(it->second);
  mark_filled(it->second);
}

void GradReducer::reduce_ready_in_order() {
  while (next_reduce_ < buckets_.size() && buckets_[next_reduce_].ready) {
    comm_.all_reduce_sum(buckets_[next_reduce_].flat);
    ++next_reduce_;
  }
}

void GradReducer::worker_loop() {
  try {
    for (size_t b = 0; b < buckets_.size(); ++b) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return buckets_[b].ready || !active_; });
        if (!buckets_[b].ready) return;  // shutting down
      }
      worker_comm_->all_reduce_sum(buckets_[b].flat);
    }
  } catch (...) {  // finish() joins, then rethrows it
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
  }
}

void GradReducer::finish() {
  PRM_CHECK(active_, "GradReducer::finish without begin");
  // Parameters the backward did not reach on this rank: zeros, in index order.
  for (size_t k = 0; k < params_.size(); ++k)
    if (!filled_[k]) {
      fill(k);
      mark_filled(k);
    }
  if (worker_.joinable()) worker_.join();
  active_ = false;
  if (error_) std::rethrow_exception(error_);
  PRM_CHECK(worker_comm_ || next_reduce_ == buckets_.size(),
            "GradReducer: a bucket was not reduced");
  for (size_t k = 0; k < params_.size(); ++k) {
    Tensor& p = params_[k];
    const auto [b, e] = where_[k];
    const size_t elem = dtype_size(p.dtype());
    const char* src = static_cast<const char*>(buckets_[b].flat.raw_data()) +
                      buckets_[b].entries[e].offset * elem;
    Tensor g = p.grad();
    if (!g.defined()) {
      g = Tensor::empty(p.shape(), p.dtype(), p.device());
      p.set_grad(g);
    }
    device_copy(g.raw_data(), g.device(), src, p.device(), static_cast<size_t>(p.numel()) * elem);
  }
}

}  // namespace prm
