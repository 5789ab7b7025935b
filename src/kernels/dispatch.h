// Dispatch once: how a kernel is declared, written, registered and called.
//
// A kernel is a class template over a loop policy (CpuLoop or CudaLoop) with one static member
// template `run<T>`, its signature written once, in the kernel's header:
//
//   template <class Loop>
//   struct MaxPool2dForward {
//     template <typename T>
//     static void run(T* out, int64_t* argmax, const T* inp, ...) {
//       Loop::for_each(N * C * OH * OW, PRM_LAMBDA(int64_t i) { ...per-element math... });
//     }
//   };
//
// The body above is the kernel for both devices: Loop::for_each is an OpenMP loop on the CPU and
// a grid-stride CUDA kernel on the GPU (PRM_LAMBDA makes the lambda a __device__ one under nvcc),
// and the math it calls is the PRM_HD functions of the *_math.h headers. A kernel whose GPU
// algorithm really differs (a shared-memory reduction, cuBLAS) declares `run` without a body and
// each device file defines its own:
//
//   template <> template <typename T> void SumAll<CpuLoop>::run(T* out, ...) { ... }
//
// Each device compiles its kernels in one translation unit per header (kernels/cpu/x.cpp with
// g++, kernels/cuda/x.cu with nvcc), which registers them with PRM_REGISTER_KERNELS. Callers,
// compiled by g++ without seeing any CUDA code, say
//
//   launch<MaxPool2dForward, scalar_t>(x.device(), out, argmax, inp, ...);
//
// and launch picks the device's registered entry (a plain function pointer: one indirect call
// per kernel launch, not per element). A CPU-only build has no CUDA entries and launch fails
// with a clear error for a CUDA tensor.
#pragma once
#include <cstdint>
#include <utility>

#include "kernels/common.h"
#include "tensor/dtype.h"

namespace prm {

struct CpuLoop;   // kernels/cpu/loop.h
struct CudaLoop;  // kernels/cuda/loop.cuh

#if defined(__CUDACC__)
#define PRM_LAMBDA(...) [=] __device__(__VA_ARGS__)
#else
#define PRM_LAMBDA(...) [=](__VA_ARGS__)
#endif

// The function type of kernel K for scalar type T (the same for every loop policy).
template <template <class> class K, typename T>
using KernelFn = decltype(&K<CpuLoop>::template run<T>);

// The registered entry of kernel K on a device. Declared here, defined in kernels/register.h
// and explicitly instantiated by PRM_REGISTER_KERNELS in the device's translation unit, so
// callers never instantiate a kernel body themselves.
template <template <class> class K, class Loop, typename T>
KernelFn<K, T> kernel_entry();

template <template <class> class K, typename T, typename... Args>
void launch(Device device, Args&&... args) {
  if (device == Device::cuda) {
#if PRM_USE_CUDA
    kernel_entry<K, CudaLoop, T>()(std::forward<Args>(args)...);
#else
    throw_no_cuda(__FILE__, __LINE__);
#endif
  } else {
    kernel_entry<K, CpuLoop, T>()(std::forward<Args>(args)...);
  }
}

}  // namespace prm
