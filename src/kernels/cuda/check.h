// Every CUDA, cuBLAS and cuDNN call goes through one of these; a failure throws prm::Error
// naming the call, the file and the line.
#pragma once
#include <cuda_runtime.h>

#include "tensor/error.h"

#define CUDA_CHECK(call)                                                                    \
  do {                                                                                      \
    cudaError_t err_ = (call);                                                              \
    if (err_ != cudaSuccess)                                                                \
      throw ::prm::Error(::prm::str_cat("CUDA error ", cudaGetErrorString(err_), " in ", #call, \
                                        " at ", __FILE__, ":", __LINE__));                  \
  } while (0)

// After every kernel launch: catches bad launch configurations at once.
#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

#define CUBLAS_CHECK(call)                                                                  \
  do {                                                                                      \
    auto st_ = (call);                                                                      \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                       \
      throw ::prm::Error(::prm::str_cat("cuBLAS error ", static_cast<int>(st_), " in ", #call, \
                                        " at ", __FILE__, ":", __LINE__));                  \
  } while (0)

#define CUDNN_CHECK(call)                                                                   \
  do {                                                                                      \
    auto st_ = (call);                                                                      \
    if (st_ != CUDNN_STATUS_SUCCESS)                                                        \
      throw ::prm::Error(::prm::str_cat("cuDNN error ", cudnnGetErrorString(st_), " in ", #call, \
                                        " at ", __FILE__, ":", __LINE__));                  \
  } while (0)
