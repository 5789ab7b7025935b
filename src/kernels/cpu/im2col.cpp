#include "kernels/cpu/loop.h"
#include "kernels/im2col.h"
#include "kernels/register.h"

PRM_REGISTER_KERNELS(CpuLoop, Im2col, Col2im, AddChannelBias)
