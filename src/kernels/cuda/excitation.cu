#include "kernels/cuda/loop.cuh"
#include "kernels/excitation.h"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CudaLoop, MinStride, ExcitationInverse)
