// All differentiable ops, one header per op group (each op's forward and backward live side by
// side in its .cpp, with the gradient formula in the header comment).
#pragma once
#include "tensor/autograd.h"
#include "tensor/tensor.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/loss.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/shape.h"
#include "tensor/ops/batch_norm.h"
#include "tensor/ops/pooling.h"
#include "tensor/ops/upsample.h"
#include "tensor/ops/conv2d.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/peak_stimulation.h"
