#include "kernels/cpu/loop.h"
#include "kernels/elementwise.h"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CpuLoop, Binary, Unary, BroadcastCopy, ReluBackward, SigmoidBackward,
                     PowScalarBackward, CopyIntoSlice, CopyFromSlice)
