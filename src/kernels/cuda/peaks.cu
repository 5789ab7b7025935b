// CUDA body of PeakStimulationForward (kernels/peaks.h): one block per (image, class) plane.
//  1. The median by radix select: every value maps to an unsigned key with the same order
//     (flip all bits of negatives, set the sign bit of the rest). From the most significant
//     byte down, the block histograms the next byte of the keys that share the prefix found so
//     far, and the bucket holding the k-th smallest (k = (HW - 1) / 2) extends the prefix.
//     After all bytes the prefix is the median's key.
//  2. Each thread marks its kept peaks (the PRM_HD test of peaks_math.h, shared with the CPU)
//     and sums them; a shared-memory tree adds the threads' sums and counts.
// Never run in the session that wrote it (no GPU lent); its parity test with the CPU body
// waits in tests/test_peaks.cpp.
#include <cstdint>

#include "kernels/cuda/loop.cuh"
#include "kernels/peaks.h"
#include "kernels/register.h"

namespace prm {

namespace {

constexpr int kPeakThreads = 256;  // a power of two for the tree

template <typename T>
struct KeyOf;
template <>
struct KeyOf<float> {
  using Key = uint32_t;
  __device__ static Key key(float v) {
    const Key b = __float_as_uint(v);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
  }
  __device__ static float value(Key k) {
    return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
  }
};
template <>
struct KeyOf<double> {
  using Key = unsigned long long;
  __device__ static Key key(double v) {
    const Key b = static_cast<Key>(__double_as_longlong(v));
    return (b >> 63) ? ~b : (b | (1ull << 63));
  }
  __device__ static double value(Key k) {
    return __longlong_as_double(static_cast<long long>((k >> 63) ? (k & ~(1ull << 63)) : ~k));
  }
};

template <typename T>
__device__ T block_median(const T* x, int64_t HW) {
  using K = KeyOf<T>;
  using Key = typename K::Key;
  __shared__ unsigned int hist[256];
  __shared__ Key prefix, mask;
  __shared__ int64_t rank;  // the median's rank among the keys that share the prefix
  if (threadIdx.x == 0) {
    prefix = 0;
    mask = 0;
    rank = (HW - 1) / 2;
  }
  for (int shift = static_cast<int>(sizeof(Key) * 8) - 8; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < HW; i += blockDim.x) {
      const Key k = K::key(x[i]);
      if ((k & mask) == prefix) atomicAdd(&hist[(k >> shift) & 0xff], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int64_t below = 0;
      int digit = 0;
      while (below + hist[digit] <= rank) below += hist[digit++];
      rank -= below;
      prefix |= static_cast<Key>(digit) << shift;
      mask |= static_cast<Key>(0xff) << shift;
    }
    __syncthreads();
  }
  return K::value(prefix);
}

template <typename T>
__global__ void peak_stimulation_kernel(T* peak_map, T* scores, T* counts, const T* crm,
                                        int64_t H, int64_t W, int64_t r) {
  __shared__ double sums[kPeakThreads];
  __shared__ double ns[kPeakThreads];
  const int64_t HW = H * W, p = blockIdx.x;
  const T* x = crm + p * HW;
  const T median = block_median(x, HW);
  double sum = 0, n = 0;
  for (int64_t i = threadIdx.x; i < HW; i += blockDim.x) {
    const bool kept = x[i] >= median && is_local_peak(x, H, W, i / W, i % W, r);
    peak_map[p * HW + i] = kept ? T(1) : T(0);
    if (kept) {
      sum += x[i];
      n += 1;
    } else if (x[i] != x[i]) {
      sum += x[i];  // a NaN anywhere in the plane makes its score NaN
    }
  }
  sums[threadIdx.x] = sum;
  ns[threadIdx.x] = n;
  __syncthreads();
  for (int half = kPeakThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      sums[threadIdx.x] += sums[threadIdx.x + half];
      ns[threadIdx.x] += ns[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    counts[p] = static_cast<T>(ns[0]);
    scores[p] = static_cast<T>(sums[0] / ns[0]);  // n = 0 only with NaNs: NaN
  }
}

}  // namespace

template <>
template <typename T>
void PeakStimulationForward<CudaLoop>::run(T* peak_map, T* scores, T* counts, const T* crm,
                                           int64_t planes, int64_t H, int64_t W, int64_t window) {
  if (planes <= 0) return;
  peak_stimulation_kernel<<<static_cast<unsigned>(planes), kPeakThreads>>>(
      peak_map, scores, counts, crm, H, W, (window - 1) / 2);
  CUDA_LAUNCH_CHECK();
}

}  // namespace prm

PRM_REGISTER_KERNELS(CudaLoop, PeakStimulationForward, PeakStimulationBackward)
