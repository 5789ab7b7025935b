#include "kernels/cpu/loop.h"
#include "kernels/upsample.h"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CpuLoop, UpsampleBilinearForward, UpsampleBilinearBackward)
