#include "kernels/cuda/loop.cuh"
#include "kernels/upsample.h"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CudaLoop, UpsampleBilinearForward, UpsampleBilinearBackward)
