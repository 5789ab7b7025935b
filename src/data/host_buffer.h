// Host memory for loader batches: page-locked (cudaHostAlloc) when the batches go to a CUDA
// device, so that the host-to-device copy is a direct DMA; plain 64-byte-aligned memory otherwise
// or in a CPU-only build.
#pragma once
#include <cstddef>

namespace prm {

class HostBuffer {
 public:
  HostBuffer(size_t bytes, bool pinned);
  ~HostBuffer();
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  bool pinned() const { return pinned_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  bool pinned_ = false;
};

}  // namespace prm
