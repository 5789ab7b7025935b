#include "kernels/cuda/loop.cuh"
#include "kernels/loss.h"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CudaLoop, BceWithLogits, BceWithLogitsBackward)
