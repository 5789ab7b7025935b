#include "kernels/cuda/loop.cuh"
#include "kernels/pooling.h"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CudaLoop, MaxPool2dForward, MaxPool2dBackward, AdaptiveAvgPool2dForward,
                     AdaptiveAvgPool2dBackward)
