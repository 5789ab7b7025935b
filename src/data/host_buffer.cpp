#include "data/host_buffer.h"

#include <cstdlib>

#include "tensor/error.h"

#if PRM_USE_CUDA
#include "kernels/cuda/check.h"
#endif

namespace prm {

HostBuffer::HostBuffer(size_t bytes, bool pinned) : bytes_(bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
#if PRM_USE_CUDA
  if (pinned) {
    CUDA_CHECK(cudaHostAlloc(&ptr_, rounded == 0 ? 64 : rounded, cudaHostAllocDefault));
    pinned_ = true;
    return;
  }
#else
  (void)pinned;
#endif
  ptr_ = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  PRM_CHECK(ptr_ != nullptr, "HostBuffer: out of memory allocating ", bytes, " bytes");
}

HostBuffer::~HostBuffer() {
#if PRM_USE_CUDA
  if (pinned_) {
    cudaFreeHost(ptr_);  // no throw from a destructor; a failure here leaks at worst
    return;
  }
#endif
  std::free(ptr_);
}

}  // namespace prm
