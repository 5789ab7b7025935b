#include "tensor/dtype.h"

#include "tensor/error.h"

namespace prm {

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::cpu;
  if (s == "cuda") return Device::cuda;
  throw Error(str_cat("unknown device '", s, "' (expected cpu or cuda)"));
}

DType parse_dtype(const std::string& s) {
  if (s == "float32") return DType::f32;
  if (s == "float64") return DType::f64;
  if (s == "int64") return DType::i64;
  throw Error(str_cat("unknown dtype '", s, "' (expected float32, float64 or int64)"));
}

}  // namespace prm
