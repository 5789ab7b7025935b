#include "kernels/cpu/loop.h"
#include "kernels/pooling.h"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CpuLoop, MaxPool2dForward, MaxPool2dBackward, AdaptiveAvgPool2dForward,
                     AdaptiveAvgPool2dBackward)
