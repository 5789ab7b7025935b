#include "kernels/cpu/loop.h"
#include "kernels/loss.h"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CpuLoop, BceWithLogits, BceWithLogitsBackward)
