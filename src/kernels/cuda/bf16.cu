#include "kernels/bf16.h"
#include "kernels/cuda/loop.cuh"
#include "kernels/register.h"

PRM_REGISTER_KERNEL(CudaLoop, RoundToBf16, float)
PRM_REGISTER_KERNEL(CudaLoop, ToBf16Bits, float)
