#include "kernels/basic.h"
#include "kernels/cpu/loop.h"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CpuLoop, Fill, Convert, Axpy)
PRM_REGISTER_KERNEL(CpuLoop, Fill, int64_t)
PRM_REGISTER_KERNEL(CpuLoop, Convert, int64_t)
