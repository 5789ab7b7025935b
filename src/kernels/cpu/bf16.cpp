#include "kernels/bf16.h"

#include "kernels/cpu/loop.h"
#include "kernels/register.h"

PRM_REGISTER_KERNEL(CpuLoop, RoundToBf16, float)
PRM_REGISTER_KERNEL(CpuLoop, ToBf16Bits, float)
