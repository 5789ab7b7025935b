#include "kernels/cpu/loop.h"
#include "kernels/excitation.h"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CpuLoop, MinStride, ExcitationInverse)
