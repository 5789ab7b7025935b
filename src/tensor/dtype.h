// Element types and devices.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace prm {

enum class DType { f32, f64, i64 };
enum class Device { cpu, cuda };

inline size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 8; }
inline const char* dtype_name(DType t) {
  return t == DType::f32 ? "float32" : t == DType::f64 ? "float64" : "int64";
}
inline const char* device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }
Device parse_device(const std::string& s);  // "cpu" | "cuda", else prm::Error
DType parse_dtype(const std::string& s);    // "float32" | "float64" | "int64"

// How float32 convolutions and matrix products (every GEMM of kernels/gemm.h: matmul and the
// native conv engine; cuDNN's convolutions) may round. A process-wide switch, like
// torch.backends.cuda.matmul.allow_tf32:
//   fp32  exact float32 products (the default; what the gradient checks and parity tests prove)
//   tf32  on CUDA, cuBLAS and cuDNN may use tensor cores on inputs rounded to TF32 (10-bit
//         mantissa), accumulating in float32; the CPU stays exact float32
//   bf16  first stage of mixed precision: both GEMM inputs are rounded to bfloat16 (round to
//         nearest even, kernels/bf16_math.h) and the products accumulate in float32. On CUDA
//         through cublasGemmEx with bf16 inputs; on the CPU by the exact emulation (the same
//         float32 GEMM on copies rounded to bf16 values), the reference the CUDA path is checked
//         against. Activations and weights are still STORED in float32 (no memory saved yet),
//         batch norm, the loss and the optimiser are float32; the cuDNN conv engine refuses
//         bf16 (use the native engine). See docs/precision.md.
// float64 work is unaffected by the setting.
enum class Precision { fp32, tf32, bf16 };
Precision parse_precision(const std::string& s);  // "fp32" | "tf32" | "bf16", else prm::Error
const char* precision_name(Precision p);
void set_matmul_precision(Precision p);
// The process-wide setting, or fp32 while an ExactMatmulScope lives on the calling thread.
Precision matmul_precision();

// While one lives, the float32 GEMMs this thread issues compute in fp32 whatever the setting:
// for GEMMs that are sums rather than products (a ones vector times per-image partial weight
// gradients, say), where rounding the inputs to bf16 or TF32 only loses accuracy. Nests.
class ExactMatmulScope {
 public:
  ExactMatmulScope();
  ~ExactMatmulScope();
  ExactMatmulScope(const ExactMatmulScope&) = delete;
  ExactMatmulScope& operator=(const ExactMatmulScope&) = delete;
};

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };

}  // namespace prm

// Runs the statement with `scalar_t` bound to float or double per the runtime dtype.
#define PRM_DISPATCH_FLOAT(dtype, op_name, ...)                                         \
  do {                                                                                  \
    switch (dtype) {                                                                    \
      case ::prm::DType::f32: { using scalar_t = float; __VA_ARGS__; break; }           \
      case ::prm::DType::f64: { using scalar_t = double; __VA_ARGS__; break; }          \
      default: throw ::prm::Error(::prm::str_cat(op_name, ": unsupported dtype ",       \
                                                 ::prm::dtype_name(dtype)));            \
    }                                                                                   \
  } while (0)
