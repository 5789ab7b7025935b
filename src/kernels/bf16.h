// Kernels that round float32 matrices to bf16 (the math of bf16_math.h), written once for both
// devices (kernels/dispatch.h); registered for float in cpu/bf16.cpp and cuda/bf16.cu. They are
// what --precision bf16 feeds to a float32 GEMM (cpu/gemm.cpp, cuda/gemm.cu): the operands are
// copied, rounded, into compact scratch, and the product accumulates in float32.
//
// Both read `batch` matrices of rows x cols, matrix b starting at in + b * stride and its rows
// ld elements apart (ld >= cols; the padding between rows is never read), and write them
// packed: out[(b * rows + r) * cols + c], i.e. leading dimension cols and stride rows * cols.
//   RoundToBf16: the rounded values as float32 (the CPU's exact emulation of bf16 inputs)
//   ToBf16Bits:  the bf16 bit patterns (a __nv_bfloat16 workspace for cublasGemmEx)
#pragma once
#include <cstdint>

#include "kernels/bf16_math.h"
#include "kernels/dispatch.h"

namespace prm {

// The body both share: each source row through `convert` into its packed place. One run per
// matrix row: a plain vectorisable loop on the CPU, one element per thread on CUDA.
template <class Loop, typename Out, typename T, typename Convert>
void pack_rows_bf16(Out* out, const T* in, int64_t batch, int64_t rows, int64_t cols, int64_t ld,
                    int64_t stride, Convert convert) {
  static_assert(sizeof(T) == 4, "bf16 packing: float32 only");
  Loop::for_each_run(
      batch * rows, cols, PRM_LAMBDA(int64_t row, int64_t begin, int64_t end) {
        const T* src = in + (row / rows) * stride + (row % rows) * ld;
        Out* dst = out + row * cols;
        for (int64_t c = begin; c < end; ++c) dst[c] = convert(src[c]);
      });
}

struct RoundedBf16Value {  // the rounded value, still a float
  PRM_HD float operator()(float x) const { return round_to_bf16(x); }
};
struct Bf16Bits {  // the bf16 bit pattern
  PRM_HD uint16_t operator()(float x) const { return float_to_bf16_bits(x); }
};

template <class Loop>
struct RoundToBf16 {
  template <typename T>
  static void run(T* out, const T* in, int64_t batch, int64_t rows, int64_t cols, int64_t ld,
                  int64_t stride) {
    pack_rows_bf16<Loop>(out, in, batch, rows, cols, ld, stride, RoundedBf16Value{});
  }
};

template <class Loop>
struct ToBf16Bits {
  template <typename T>
  static void run(uint16_t* out, const T* in, int64_t batch, int64_t rows, int64_t cols, int64_t ld,
                  int64_t stride) {
    pack_rows_bf16<Loop>(out, in, batch, rows, cols, ld, stride, Bf16Bits{});
  }
};

}  // namespace prm
