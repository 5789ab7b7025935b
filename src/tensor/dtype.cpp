#include "tensor/dtype.h"

#include <atomic>

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

Precision parse_precision(const std::string& s) {
  if (s == "fp32") return Precision::fp32;
  if (s == "tf32") return Precision::tf32;
  if (s == "bf16") return Precision::bf16;
  throw Error(str_cat("unknown precision '", s, "' (expected fp32, tf32 or bf16)"));
}

const char* precision_name(Precision p) {
  return p == Precision::fp32 ? "fp32" : p == Precision::tf32 ? "tf32" : "bf16";
}

namespace {
std::atomic<Precision> g_matmul_precision{Precision::fp32};
thread_local int t_exact_scopes = 0;
}  // namespace

void set_matmul_precision(Precision p) { g_matmul_precision.store(p); }

Precision matmul_precision() {
  return t_exact_scopes > 0 ? Precision::fp32 : g_matmul_precision.load();
}

ExactMatmulScope::ExactMatmulScope() { ++t_exact_scopes; }
ExactMatmulScope::~ExactMatmulScope() { --t_exact_scopes; }

}  // namespace prm
