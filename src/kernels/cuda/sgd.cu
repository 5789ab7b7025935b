#include "kernels/cuda/loop.cuh"
#include "kernels/sgd.h"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CudaLoop, SgdStep)
