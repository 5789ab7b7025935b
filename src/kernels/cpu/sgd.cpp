#include "kernels/cpu/loop.h"
#include "kernels/sgd.h"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CpuLoop, SgdStep)
