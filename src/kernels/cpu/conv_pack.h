// Implicit im2col for the CPU GEMM: packs a block of one image's im2col matrix straight from the
// image into the GEMM's packed B layout, so that a convolution need not write the column matrix
// [C*kh*kw, Ho*Wo] and read it back (docs/conv2d.md, "Implicit im2col").
//
// The im2col matrix of an image x [C][H][W] (kernels/im2col.h) has row k = (c * kh + ki) * kw + kj
// and column j = oy * Wo + ox, holding x[c][oy*s - p + ki*d][ox*s - p + kj*d], or 0 where that
// falls in the padding (C is implied by the rows asked for). pack_im2col_block writes rows
// [k0, k0 + kc) and columns [j0, j0 + nc) of it in NR-column strips, the layout the GEMM's
// microkernels read (kernels/cpu/gemm_kernels.h):
//
//   dst[s * kc * NR + kk * NR + jj] = col(k0 + kk, j0 + s * NR + jj)   (0 where s*NR + jj >= nc)
//
// exactly the values im2col followed by the GEMM's own packing would give. Within a strip the
// columns fall into runs of one output row oy (a strip is NR consecutive pixels); each run is a
// strided copy of one input row (contiguous for stride 1) with zeros where the window leaves the
// image, so there is no per-element index arithmetic or bounds test.
#pragma once
#include <cstdint>

#include "kernels/im2col_math.h"

namespace prm::cpu {

template <typename T>
void pack_im2col_block(T* dst, const T* x, int64_t H, int64_t W,
                       const ConvWindow& win, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
                       int NR);

// The same for the transposed matrix colᵀ [Ho*Wo, C*kh*kw] (the weight gradient's operand,
// dW = dy · colᵀ): rows [p0, p0 + pc) are output pixels, columns [t0, t0 + tn) are taps,
//
//   dst[s * pc * NR + pp * NR + jj] = col(t0 + s * NR + jj, p0 + pp)   (0 where s*NR + jj >= tn)
//
// A strip's NR taps get their offsets into the image once; then each pixel of the block reads
// them, with no bounds test where the pixel's whole window lies inside the image.
template <typename T>
void pack_im2col_block_transposed(T* dst, const T* x, int64_t H, int64_t W,
                                  const ConvWindow& win, int64_t p0, int64_t pc, int64_t t0,
                                  int64_t tn, int NR);

// The packed B block of the element-wise product of two row-major [rows, ld] matrices a and b
// (the excitation rule's G ⊙ inv, formed while packing instead of in a pass of its own):
//   dst[s * kc * NR + kk * NR + jj] = a(k0 + kk, j0 + s*NR + jj) * b(k0 + kk, j0 + s*NR + jj)
// (0 where s*NR + jj >= nc), each product rounded as Binary's mul rounds it. With row_scale
// (one factor per row of a, e.g. an eval-mode batch norm's per-channel scale, deferred to here):
// (a(k, j) * row_scale[k]) * b(k, j), two roundings in that order, as the two multiplications
// made one after the other give.
template <typename T>
void pack_product_block(T* dst, const T* a, const T* b, int64_t ld, int64_t k0, int64_t kc,
                        int64_t j0, int64_t nc, int NR, const T* row_scale = nullptr);

}  // namespace prm::cpu
