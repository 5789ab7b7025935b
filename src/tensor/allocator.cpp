#include "tensor/allocator.h"

#include <malloc.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <map>
#include <mutex>
#include <unordered_map>

#include "tensor/error.h"

#if PRM_USE_CUDA
#include "kernels/cuda/check.h"
#endif

namespace prm {

void throw_no_cuda(const char* file, int line) {
  throw Error(str_cat("this build has no CUDA support (built with USE_CUDA=0); needed at ", file,
                      ":", line));
}

#if PRM_USE_CUDA
namespace {

// Blocks are rounded to 512 bytes (small) or 2 MiB (large) so that repeated shapes reuse them.
size_t round_block(size_t bytes) {
  const size_t unit = bytes < (1u << 20) ? 512 : (2u << 20);
  return (bytes + unit - 1) / unit * unit;
}

class CudaCachingAllocator {
 public:
  void* allocate(size_t bytes) {
    const size_t block = round_block(bytes == 0 ? 1 : bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    void* ptr = nullptr;
    // Smallest cached block that fits, if it wastes at most half of itself.
    auto it = free_.lower_bound(block);
    if (it != free_.end() && it->first <= 2 * block) {
      ptr = it->second;
      live_[ptr] = it->first;
      free_.erase(it);
    } else {
      if (cudaMalloc(&ptr, block) != cudaSuccess) {
        (void)cudaGetLastError();
        release_free_blocks();
        const cudaError_t err = cudaMalloc(&ptr, block);
        if (err != cudaSuccess) {
          // Clear the error too, or the next CUDA_LAUNCH_CHECK (cudaGetLastError) would report
          // this out-of-memory as a failure of an unrelated kernel once a caller recovers.
          (void)cudaGetLastError();
          throw Error(str_cat("CUDA error ", cudaGetErrorString(err), " allocating ", block,
                              " bytes (", stats_.allocated_bytes, " bytes in use) at ", __FILE__,
                              ":", __LINE__));
        }
      }
      live_[ptr] = block;
      stats_.cached_bytes += block;
    }
    stats_.allocated_bytes += live_[ptr];
    if (stats_.allocated_bytes > stats_.peak_allocated_bytes)
      stats_.peak_allocated_bytes = stats_.allocated_bytes;
    return ptr;
  }

  void release(void* ptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(ptr);
    if (it == live_.end()) return;
    stats_.allocated_bytes -= it->second;
    free_.emplace(it->second, ptr);
    live_.erase(it);
  }

  CudaMemoryStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
  }
  void empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_free_blocks();
  }

 private:
  void release_free_blocks() {  // caller holds mutex_
    cudaDeviceSynchronize();
    for (auto& [size, ptr] : free_) {
      cudaFree(ptr);
      stats_.cached_bytes -= size;
    }
    free_.clear();
  }

  std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  std::unordered_map<void*, size_t> live_;
  CudaMemoryStats stats_;
};

CudaCachingAllocator& cuda_allocator() {
  static auto* allocator = new CudaCachingAllocator();  // never destroyed: outlives all tensors
  return *allocator;
}

}  // namespace
#endif

namespace {

// Host memory stays with the process. By default glibc gives every block above its mmap
// threshold (128 KiB, growing to 32 MiB) back to the kernel on free and trims the top of its
// heap, so each new large tensor costs one page fault per 4 KiB it touches, each zeroing its
// page. The batched peak back-propagation allocates K-sized gradients per layer: for one
// 448x448 image with K = 16 that was 7.2 million page faults and a third of its time. With mmap
// off and trimming off, freed blocks are reused from the heap: 0.56 million faults, CPU time of
// `prm bench --only prm --prm-mode batched` 33.0 s -> 23.2 s, peak memory 1664 -> 2147 MB (the
// heap keeps what it once held). PRM_HEAP_REUSE=0 keeps glibc's defaults (valgrind, measuring).
bool configure_host_heap() {
  const char* v = std::getenv("PRM_HEAP_REUSE");
  if (v && std::string(v) == "0") return false;
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  return true;
}

}  // namespace

void* device_alloc(Device device, size_t bytes) {
  if (device == Device::cpu) {
    static const bool heap_configured = configure_host_heap();
    (void)heap_configured;
    const size_t rounded = (bytes + 63) / 64 * 64;
    void* ptr = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    PRM_CHECK(ptr != nullptr, "out of host memory allocating ", bytes, " bytes");
    return ptr;
  }
#if PRM_USE_CUDA
  return cuda_allocator().allocate(bytes);
#else
  throw_no_cuda(__FILE__, __LINE__);
#endif
}

void device_free(Device device, void* ptr, size_t /*bytes*/) {
  if (device == Device::cpu) {
    std::free(ptr);
    return;
  }
#if PRM_USE_CUDA
  cuda_allocator().release(ptr);
#endif
}

void device_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device == Device::cpu && src_device == Device::cpu) {
    // A large copy in 1 MiB pieces over the OpenMP threads: one core moves about half of what
    // two do here (19 against 40 GB/s on a 64 MiB copy), and the others would wait meanwhile.
    constexpr size_t kPiece = size_t(1) << 20;
    if (bytes >= 4 * kPiece && !omp_in_parallel() && omp_get_max_threads() > 1) {
      const int64_t pieces = static_cast<int64_t>((bytes + kPiece - 1) / kPiece);
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < pieces; ++i) {
        const size_t at = static_cast<size_t>(i) * kPiece;
        std::memcpy(static_cast<char*>(dst) + at, static_cast<const char*>(src) + at,
                    std::min(kPiece, bytes - at));
      }
      return;
    }
    std::memcpy(dst, src, bytes);
    return;
  }
#if PRM_USE_CUDA
  cudaMemcpyKind kind = dst_device == Device::cpu   ? cudaMemcpyDeviceToHost
                        : src_device == Device::cpu ? cudaMemcpyHostToDevice
                                                    : cudaMemcpyDeviceToDevice;
  CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
#else
  throw_no_cuda(__FILE__, __LINE__);
#endif
}

bool cuda_available() {
#if PRM_USE_CUDA
  static const bool available = [] {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return count > 0;
  }();
  return available;
#else
  return false;
#endif
}

int cuda_current_device() {
#if PRM_USE_CUDA
  if (!cuda_available()) return -1;
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  return device;
#else
  return -1;
#endif
}

void cuda_set_device(int device) {
#if PRM_USE_CUDA
  if (device >= 0) CUDA_CHECK(cudaSetDevice(device));
#else
  (void)device;
#endif
}

void cuda_synchronize() {
#if PRM_USE_CUDA
  if (cuda_available()) CUDA_CHECK(cudaDeviceSynchronize());
#endif
}

CudaMemoryStats cuda_memory_stats() {
#if PRM_USE_CUDA
  return cuda_allocator().stats();
#else
  return {};
#endif
}

void cuda_reset_peak_memory() {
#if PRM_USE_CUDA
  cuda_allocator().reset_peak();
#endif
}

void cuda_empty_cache() {
#if PRM_USE_CUDA
  cuda_allocator().empty_cache();
#endif
}

}  // namespace prm
