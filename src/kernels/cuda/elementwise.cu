#include "kernels/cuda/loop.cuh"
#include "kernels/elementwise.h"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CudaLoop, Binary, Unary, BroadcastCopy, ReluBackward, SigmoidBackward,
                     PowScalarBackward, CopyIntoSlice, CopyFromSlice)
