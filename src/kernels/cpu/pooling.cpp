// CPU bodies of MaxPool2dForward and MaxPool2dBackward (kernels/pooling.h), and the
// registration of the pooling kernels.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/loop.h"
#include "kernels/pooling.h"
#include "kernels/register.h"

namespace prm {

// A row of outputs per thread. The windows of the row that lie wholly inside the image's columns
// are taken in blocks of kBlock outputs, tap by tap: for each tap (h, w) of the window, the block's
// outputs compare their own element, so the block's compare-and-select chains are independent
// (one window at a time is one chain, its length the window's size). Each output still visits its
// taps in scan order with the same strict test (the first maximum wins; a NaN wins and
// propagates), so out and argmax are those of max_pool2d_window, which takes the windows at the
// row's ends (they reach into the padding). Without argmax (null: inference, no backward to
// come) the same selects on the values alone, without the indices' selects and stores.
namespace {

// kStride: the stride as a constant the compiler sees (1 or 2: its loads of a block's elements
// then become vector loads and shuffles), or 0 for `stride` as given.
template <bool kArgmax, int kStride, typename T>
void max_pool2d_rows(T* out, int64_t* argmax, const T* inp, int64_t N, int64_t C, int64_t H,
                     int64_t W, int64_t OH, int64_t OW, int64_t kernel, int64_t stride_arg,
                     int64_t padding) {
  const int64_t stride = kStride > 0 ? kStride : stride_arg;
  constexpr int64_t kBlock = 64;
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  // Outputs ow whose columns [ow * stride - padding, + kernel) lie inside [0, W): [lo, hi).
  const int64_t lo = std::min(OW, (padding + stride - 1) / stride);
  const int64_t hi = W + padding >= kernel
                         ? std::clamp<int64_t>((W + padding - kernel) / stride + 1, lo, OW)
                         : lo;
  const int64_t rows = N * C * OH;
#pragma omp parallel for schedule(static) if (rows > 1 && rows * OW > 32768)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t oh = row % OH;
    const T* x = inp + (row / OH) * H * W;
    T* o = out + row * OW;
    int64_t* a = kArgmax ? argmax + row * OW : nullptr;
    int64_t unused;  // the edge windows' index, without argmax
    for (int64_t ow = 0; ow < lo; ++ow)
      max_pool2d_window(oh, ow, o + ow, kArgmax ? a + ow : &unused, x, H, W, kernel, stride,
                        padding);
    const int64_t h0 = oh * stride - padding;
    const int64_t h_begin = std::max<int64_t>(h0, 0), h_end = std::min(h0 + kernel, H);
    for (int64_t b0 = lo; b0 < hi; b0 += kBlock) {
      const int64_t n = std::min(kBlock, hi - b0);
      T best[kBlock];
      int64_t pick[kArgmax ? kBlock : 1];
      for (int64_t j = 0; j < n; ++j) {
        best[j] = -INFINITY;
        if constexpr (kArgmax) pick[j] = h_begin * W + (b0 + j) * stride - padding;
      }
      for (int64_t h = h_begin; h < h_end; ++h)
        for (int64_t kw = 0; kw < kernel; ++kw) {
          const int64_t at = h * W + b0 * stride - padding + kw;  // output b0's element
          const T* src = x + at;
          for (int64_t j = 0; j < n; ++j) {
            // The select written with masks: the compiler branches on a float select over
            // arrays, and which element wins is data, so the branch would mispredict.
            const T v = src[j * stride];
            const Bits take = -static_cast<Bits>((v > best[j]) | (v != v));  // all ones or 0
            Bits vb, bb;
            std::memcpy(&vb, &v, sizeof(T));
            std::memcpy(&bb, &best[j], sizeof(T));
            const Bits r = (vb & take) | (bb & ~take);
            std::memcpy(&best[j], &r, sizeof(T));
            if constexpr (kArgmax) {
              const int64_t mask = -static_cast<int64_t>(take & 1);
              pick[j] = ((at + j * stride) & mask) | (pick[j] & ~mask);
            }
          }
        }
      std::copy(best, best + n, o + b0);
      if constexpr (kArgmax) std::copy(pick, pick + n, a + b0);
    }
    for (int64_t ow = hi; ow < OW; ++ow)
      max_pool2d_window(oh, ow, o + ow, kArgmax ? a + ow : &unused, x, H, W, kernel, stride,
                        padding);
  }
}

}  // namespace

template <>
template <typename T>
void MaxPool2dForward<CpuLoop>::run(T* out, int64_t* argmax, const T* inp, int64_t N, int64_t C,
                                    int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t kernel,
                                    int64_t stride, int64_t padding) {
  auto rows = [&](auto argmax_flag, auto stride_constant) {
    max_pool2d_rows<decltype(argmax_flag)::value, decltype(stride_constant)::value>(
        out, argmax, inp, N, C, H, W, OH, OW, kernel, stride, padding);
  };
  auto with_stride = [&](auto argmax_flag) {
    if (stride == 1) rows(argmax_flag, std::integral_constant<int, 1>{});
    else if (stride == 2) rows(argmax_flag, std::integral_constant<int, 2>{});
    else rows(argmax_flag, std::integral_constant<int, 0>{});
  };
  if (argmax != nullptr) with_stride(std::true_type{});
  else with_stride(std::false_type{});
}

// A scatter per (n, c) plane: the plane's dinp zeroed, then each window adds its gradient at its
// argmax, windows in row-major order (the order of the CUDA gather's sum). One thread owns a
// plane, so no element is added to by two threads. The window geometry is in argmax already.
template <>
template <typename T>
void MaxPool2dBackward<CpuLoop>::run(T* dinp, const T* dout, const int64_t* argmax, int64_t N,
                                     int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                     int64_t /*kernel*/, int64_t /*stride*/,
                                     int64_t /*padding*/) {
  const int64_t in_plane = H * W, out_plane = OH * OW;
#pragma omp parallel for schedule(static) if (N * C > 1 && N * C * (in_plane + out_plane) > 32768)
  for (int64_t p = 0; p < N * C; ++p) {
    T* d = dinp + p * in_plane;
    std::fill(d, d + in_plane, T(0));
    const T* g = dout + p * out_plane;
    const int64_t* picked = argmax + p * out_plane;
    for (int64_t o = 0; o < out_plane; ++o) d[picked[o]] += g[o];
  }
}

}  // namespace prm

PRM_REGISTER_KERNELS(CpuLoop, MaxPool2dForward, MaxPool2dBackward, AdaptiveAvgPool2dForward,
                     AdaptiveAvgPool2dBackward)
