// The cuDNN convolution engine (see conv_cudnn.h). Descriptors are made per call (cheap); the
// algorithm for each (direction, shape, dtype) is chosen once by cuDNN's heuristics and cached.
// The handle is created on first use and kept for the process, on the default stream like the
// rest of our kernels. Workspace comes from our caching allocator, so repeated shapes reuse it;
// where the favourite algorithm's workspace does not fit, the next in cuDNN's ranking runs.
// --precision bf16 never reaches it for float32 data: conv2d refuses that first
// (check_conv_engine_precision, tensor/ops/conv2d.h).
#include <cudnn.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/conv_cudnn.h"
#include "kernels/cuda/check.h"
#include "tensor/allocator.h"

namespace prm::cuda {

namespace {

cudnnHandle_t cudnn_handle() {
  static cudnnHandle_t handle = [] {
    cudnnHandle_t h = nullptr;
    CUDNN_CHECK(cudnnCreate(&h));
    return h;
  }();
  return handle;
}

template <typename T>
constexpr cudnnDataType_t cudnn_type();
template <>
constexpr cudnnDataType_t cudnn_type<float>() {
  return CUDNN_DATA_FLOAT;
}
template <>
constexpr cudnnDataType_t cudnn_type<double>() {
  return CUDNN_DATA_DOUBLE;
}

int as_int(int64_t v) {
  PRM_CHECK(v >= 0 && v <= INT32_MAX, "cudnn conv2d: size ", v, " exceeds cuDNN's int range");
  return static_cast<int>(v);
}

// Whether this convolution may use TF32 tensor cores: float32 data under --precision tf32.
bool tensor_cores(cudnnDataType_t dt) {
  return dt == CUDNN_DATA_FLOAT && matmul_precision() == Precision::tf32;
}

// The four descriptors of one convolution, destroyed with the object.
struct ConvDescriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  ConvDescriptors(cudnnDataType_t dt, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                  const ConvWindow& win) {
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, dt, as_int(N), as_int(C),
                                           as_int(H), as_int(W)));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, dt, as_int(N), as_int(O),
                                           as_int(win.out_h(H)), as_int(win.out_w(W))));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, dt, CUDNN_TENSOR_NCHW, as_int(O), as_int(C),
                                           as_int(win.kh), as_int(win.kw)));
    const int pad = as_int(win.pad), stride = as_int(win.stride), dil = as_int(win.dilation);
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, pad, pad, stride, stride, dil, dil,
                                                CUDNN_CROSS_CORRELATION, dt));
    // fp32: plain FMA math, no TF32, so the engine agrees with the native one to float32
    // rounding. tf32 (float32 data only): cuDNN's default math, which lets Ampere and later use
    // TF32 tensor cores.
    CUDNN_CHECK(cudnnSetConvolutionMathType(conv, tensor_cores(dt) ? CUDNN_DEFAULT_MATH
                                                                   : CUDNN_FMA_MATH));
  }
  ~ConvDescriptors() {
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(x);
  }
  ConvDescriptors(const ConvDescriptors&) = delete;
  ConvDescriptors& operator=(const ConvDescriptors&) = delete;
};

// Cache key: direction, dtype, N, C, H, W, O, kh, kw, stride, pad, dilation, tensor cores.
using ShapeKey = std::array<int64_t, 13>;

ShapeKey shape_key(int direction, cudnnDataType_t dt, int64_t N, int64_t C, int64_t H, int64_t W,
                   int64_t O, const ConvWindow& win) {
  return {direction,  static_cast<int64_t>(dt), N, C, H, W, O, win.kh, win.kw, win.stride, win.pad,
          win.dilation, tensor_cores(dt) ? 1 : 0};
}

// The algorithms of cuDNN's heuristic ranking that report success with the math the precision
// allows (plain FMA math for fp32; tensor-core math too for tf32), best first, per shape.
template <typename Algo, typename Perf, typename Query>
std::vector<Algo> cached_algorithms(const ShapeKey& key, Query query, const char* what) {
  static std::mutex mutex;
  static std::map<ShapeKey, std::vector<Algo>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  constexpr int kMax = 16;
  Perf perf[kMax];
  int returned = 0;
  query(kMax, &returned, perf);
  std::vector<Algo> ranked;
  for (int i = 0; i < returned; ++i) {
    const bool plain_math = perf[i].mathType == CUDNN_DEFAULT_MATH ||
                            perf[i].mathType == CUDNN_FMA_MATH;  // no tensor-core rounding
    const bool allowed = plain_math || (key[12] == 1 && perf[i].mathType == CUDNN_TENSOR_OP_MATH);
    if (perf[i].status == CUDNN_STATUS_SUCCESS && allowed) ranked.push_back(perf[i].algo);
  }
  PRM_CHECK(!ranked.empty(), "cudnn conv2d: no ", what, " algorithm supports this convolution");
  cache.emplace(key, ranked);
  return ranked;
}

// Scratch memory for one cuDNN call, from the caching allocator.
struct Workspace {
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit Workspace(size_t n) : bytes(n) {
    if (n > 0) ptr = device_alloc(Device::cuda, n);
  }
  ~Workspace() {
    if (ptr) device_free(Device::cuda, ptr, bytes);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
};

// Runs call(algo, workspace) with the first of `ranked` whose workspace (size(algo)) can be
// allocated. cuDNN's ranking ignores free memory: at a large shape its favourite can want more
// scratch than the GPU has left, where the next one, usually leaner, fits; out of memory is an
// error only when none fits.
template <typename Algo, typename Size, typename Call>
void with_workspace(const std::vector<Algo>& ranked, Size size, Call call, const char* what) {
  std::string first_error;
  for (const Algo algo : ranked) {
    std::unique_ptr<Workspace> ws;
    try {
      ws = std::make_unique<Workspace>(size(algo));
    } catch (const Error& e) {  // out of device memory (the allocator already retried)
      if (first_error.empty()) first_error = e.what();
      continue;
    }
    call(algo, *ws);
    return;
  }
  throw Error(str_cat("cudnn conv2d: the workspace of no ", what, " algorithm fits in GPU memory (",
                      ranked.size(), " tried; the first: ", first_error, ")"));
}

}  // namespace

template <typename T>
void cudnn_conv2d_forward(T* y, const T* x, const T* w, int64_t N, int64_t C, int64_t H, int64_t W,
                          int64_t O, ConvWindow win) {
  const cudnnDataType_t dt = cudnn_type<T>();
  ConvDescriptors d(dt, N, C, H, W, O, win);
  cudnnHandle_t h = cudnn_handle();
  const auto ranked = cached_algorithms<cudnnConvolutionFwdAlgo_t, cudnnConvolutionFwdAlgoPerf_t>(
      shape_key(0, dt, N, C, H, W, O, win),
      [&](int n, int* got, cudnnConvolutionFwdAlgoPerf_t* perf) {
        CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, n, got, perf));
      },
      "forward");
  const T one = 1, zero = 0;
  with_workspace(
      ranked,
      [&](cudnnConvolutionFwdAlgo_t algo) {
        size_t bytes = 0;
        CUDNN_CHECK(
            cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, algo, &bytes));
        return bytes;
      },
      [&](cudnnConvolutionFwdAlgo_t algo, const Workspace& ws) {
        CUDNN_CHECK(cudnnConvolutionForward(h, &one, d.x, x, d.w, w, d.conv, algo, ws.ptr,
                                            ws.bytes, &zero, d.y, y));
      },
      "forward");
}

template <typename T>
void cudnn_conv2d_backward_data(T* dx, const T* dy, const T* w, int64_t N, int64_t C, int64_t H,
                                int64_t W, int64_t O, ConvWindow win) {
  const cudnnDataType_t dt = cudnn_type<T>();
  ConvDescriptors d(dt, N, C, H, W, O, win);
  cudnnHandle_t h = cudnn_handle();
  const auto ranked =
      cached_algorithms<cudnnConvolutionBwdDataAlgo_t, cudnnConvolutionBwdDataAlgoPerf_t>(
          shape_key(1, dt, N, C, H, W, O, win),
          [&](int n, int* got, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
            CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, n,
                                                                    got, perf));
          },
          "backward-data");
  const T one = 1, zero = 0;
  with_workspace(
      ranked,
      [&](cudnnConvolutionBwdDataAlgo_t algo) {
        size_t bytes = 0;
        CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, algo,
                                                                 &bytes));
        return bytes;
      },
      [&](cudnnConvolutionBwdDataAlgo_t algo, const Workspace& ws) {
        CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, d.w, w, d.y, dy, d.conv, algo, ws.ptr,
                                                 ws.bytes, &zero, d.x, dx));
      },
      "backward-data");
}

template <typename T>
void cudnn_conv2d_backward_filter(T* dw, const T* dy, const T* x, int64_t N, int64_t C, int64_t H,
                                  int64_t W, int64_t O, ConvWindow win) {
  const cudnnDataType_t dt = cudnn_type<T>();
  ConvDescriptors d(dt, N, C, H, W, O, win);
  cudnnHandle_t h = cudnn_handle();
  const auto ranked =
      cached_algorithms<cudnnConvolutionBwdFilterAlgo_t, cudnnConvolutionBwdFilterAlgoPerf_t>(
          shape_key(2, dt, N, C, H, W, O, win),
          [&](int n, int* got, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
            CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, n,
                                                                      got, perf));
          },
          "backward-filter");
  const T one = 1, zero = 0;
  with_workspace(
      ranked,
      [&](cudnnConvolutionBwdFilterAlgo_t algo) {
        size_t bytes = 0;
        CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, algo,
                                                                   &bytes));
        return bytes;
      },
      [&](cudnnConvolutionBwdFilterAlgo_t algo, const Workspace& ws) {
        CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, d.x, x, d.y, dy, d.conv, algo, ws.ptr,
                                                   ws.bytes, &zero, d.w, dw));
      },
      "backward-filter");
}

#define PRM_INSTANTIATE_CUDNN_CONV(T)                                                              \
  template void cudnn_conv2d_forward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t,         \
                                        int64_t, int64_t, ConvWindow);                             \
  template void cudnn_conv2d_backward_data<T>(T*, const T*, const T*, int64_t, int64_t, int64_t,   \
                                              int64_t, int64_t, ConvWindow);                       \
  template void cudnn_conv2d_backward_filter<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, \
                                                int64_t, int64_t, ConvWindow);
PRM_INSTANTIATE_CUDNN_CONV(float)
PRM_INSTANTIATE_CUDNN_CONV(double)
#undef PRM_INSTANTIATE_CUDNN_CONV

}  // namespace prm::cuda
