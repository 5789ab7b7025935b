// A 16 x 16 float transpose in AVX-512 registers, for the CPU packing routines compiled for
// AVX-512 (gemm_avx512.cpp); inlined into functions with the same target only.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>

namespace prm::cpu {

// in[i] holds row i (16 floats); on return out[k] holds column k: out[k][i] = in[i][k].
// Unpacks pair the rows, 32-bit shuffles gather four rows of each column within a 128-bit lane,
// two rounds of lane shuffles put a column's four lanes together: 64 shuffles for 256 values.
// (GCC 12's unpack and shuffle intrinsics pass an "undefined" source register that its own
// -Wmaybe-uninitialized then reports; the warning is off for this function.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
[[gnu::always_inline, gnu::target("avx512f")]] inline void transpose16x16_ps(const __m512* in,
                                                                             __m512* out) {
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {  // rows (i, i+1) interleaved, per 128-bit lane
    t[i] = _mm512_unpacklo_ps(in[i], in[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(in[i], in[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // u[4q + j]: rows 4q..4q+3 of column 4l + j in lane l
    u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int j = 0; j < 4; ++j) {  // lanes (0, 2) and (1, 3) of rows 0-7, then of rows 8-15
    t[j] = _mm512_shuffle_f32x4(u[j], u[4 + j], _MM_SHUFFLE(2, 0, 2, 0));
    t[4 + j] = _mm512_shuffle_f32x4(u[j], u[4 + j], _MM_SHUFFLE(3, 1, 3, 1));
    t[8 + j] = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], _MM_SHUFFLE(2, 0, 2, 0));
    t[12 + j] = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], _MM_SHUFFLE(3, 1, 3, 1));
  }
  for (int j = 0; j < 4; ++j) {  // column 4l + j: lane l of all four row groups
    out[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], _MM_SHUFFLE(2, 0, 2, 0));
    out[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], _MM_SHUFFLE(2, 0, 2, 0));
    out[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], _MM_SHUFFLE(3, 1, 3, 1));
    out[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], _MM_SHUFFLE(3, 1, 3, 1));
  }
}
#pragma GCC diagnostic pop

}  // namespace prm::cpu
#endif
