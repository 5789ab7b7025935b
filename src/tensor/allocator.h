// Raw memory for tensor storage. CPU memory is 64-byte aligned; CUDA memory comes from a caching
// allocator: freed blocks go to a free list keyed by rounded size and are reused, so a training
// step allocates from the driver only on its first iteration. Statistics feed `prm bench`.
#pragma once
#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace prm {

void* device_alloc(Device device, size_t bytes);
void device_free(Device device, void* ptr, size_t bytes);

// Copies between any two devices; synchronous with respect to the host when either side is CPU.
void device_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);

bool cuda_available();  // false in a CPU-only build or when no GPU is visible
void cuda_synchronize();  // no-op in a CPU-only build
// The calling thread's current CUDA device (each host thread has its own, and a new thread starts
// on device 0); -1 in a CPU-only build or without a GPU. cuda_set_device(-1) does nothing.
int cuda_current_device();
void cuda_set_device(int device);

struct CudaMemoryStats {
  size_t allocated_bytes = 0;       // handed out to tensors now
  size_t peak_allocated_bytes = 0;  // since the last reset
  size_t cached_bytes = 0;          // held from the driver, in use or in the free lists
};
CudaMemoryStats cuda_memory_stats();
void cuda_reset_peak_memory();
void cuda_empty_cache();  // returns free blocks to the driver

}  // namespace prm
