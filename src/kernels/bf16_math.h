// bfloat16 conversion math, shared by the CPU and CUDA twins (kernels/bf16.h, cpu/gemm.cpp,
// cuda/gemm.cu). A bf16 value is the upper 16 bits of a float32: sign, the same 8-bit exponent,
// and 7 stored mantissa bits (8 significant bits, unit roundoff 2^-8). So every bf16 value is a
// float32 value exactly, and float32 -> bf16 only rounds away the low 16 bits:
//   float_to_bf16_bits  IEEE round-to-nearest-even on those 16 bits. Ties go to the even
//                       neighbour; a carry out of the mantissa bumps the exponent (the largest
//                       subnormal can round to the smallest normal, a value at or past
//                       0x7f7f8000, half an ulp beyond the largest finite bf16, rounds to inf),
//                       and the sign never changes. Subnormals round the same way (same
//                       exponent range: nothing flushes to zero), +-0 and +-inf are kept. A NaN
//                       stays a NaN of the same sign with its top payload bits, made quiet
//                       (rounding alone could turn a NaN whose payload sits in the low bits
//                       into inf).
//   bf16_bits_to_float  exact: the 16 bits shifted back up.
//   round_to_bf16       the float32 value nearest-even in bf16 (the two above in a row).
#pragma once
#include <cstdint>
#include <cstring>

#include "kernels/common.h"

namespace prm {

PRM_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

PRM_HD float float_from_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

PRM_HD uint16_t float_to_bf16_bits(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u)  // NaN: keep sign and top payload, set the quiet bit
    return static_cast<uint16_t>((u >> 16) | 0x0040u);
  // Adding 0x7fff rounds the low half up exactly when it exceeds 0x8000; the kept half's lowest
  // bit breaks the tie at 0x8000 towards even. |u| <= 0x7f800000, so no carry reaches the sign.
  const uint32_t lsb = (u >> 16) & 1u;
  return static_cast<uint16_t>((u + 0x7fffu + lsb) >> 16);
}

PRM_HD float bf16_bits_to_float(uint16_t h) {
  return float_from_bits(static_cast<uint32_t>(h) << 16);
}

PRM_HD float round_to_bf16(float f) { return bf16_bits_to_float(float_to_bf16_bits(f)); }

}  // namespace prm
