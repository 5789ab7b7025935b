// Tensors by name: a module's state dict, the contents of a weights file. A plain map, so that
// layers/ (which produce and consume state dicts) and data/ (which reads and writes them as
// .safetensors) share the type without depending on each other.
#pragma once
#include <map>
#include <string>

#include "tensor/tensor.h"

namespace prm {

using TensorMap = std::map<std::string, Tensor>;

}  // namespace prm
