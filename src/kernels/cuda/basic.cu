#include "kernels/basic.h"
#include "kernels/cuda/loop.cuh"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CudaLoop, Fill, Convert, Axpy)
PRM_REGISTER_KERNEL(CudaLoop, Fill, int64_t)
PRM_REGISTER_KERNEL(CudaLoop, Convert, int64_t)
