// All differentiable ops, one header per op group (each op's forward and backward live side by
// side in its .cpp, with the gradient formula in the header comment).
#pragma once
#include "tensor/autograd.h"
#include "tensor/tensor.h"
