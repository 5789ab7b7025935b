#include "kernels/cuda/loop.cuh"
#include "kernels/im2col.h"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CudaLoop, Im2col, Col2im, AddChannelBias)
