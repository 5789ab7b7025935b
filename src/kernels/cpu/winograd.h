// Winograd's minimal filtering F(2x2, 3x3) for the CPU convolution with a 3x3 window, stride 1,
// padding 1 and dilation 1 (docs/conv2d.md, "Winograd F(2x2, 3x3)"). The output is cut into 2x2
// tiles; tile t = ty * tiles_w + tx reads the 4x4 input patch d whose top-left pixel is
// (2 ty - 1, 2 tx - 1) (zero outside the image) and gives
//
//   y_tile = Aᵀ [ Σ_c (G g_{o,c} Gᵀ) ⊙ (Bᵀ d_c B) ] A
//
//   Bᵀ = | 1  0 -1  0 |    G = | 1    0    0   |    Aᵀ = | 1  1  1  0 |
//        | 0  1  1  0 |        | 1/2  1/2  1/2 |         | 0  1 -1 -1 |
//        | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
//        | 0  1  0 -1 |        | 0    0    1   |
//
// so that the sum over input channels is, for each of the 16 positions xi = 4 i + j of the 4x4
// transformed tile, one matrix product M_xi [O, T] = U_xi [O, C] · V_xi [C, T]: 16 GEMMs of
// O x T x C where the direct convolution's GEMM is O x 4T x 9C, 2.25 times the multiply-adds.
// The transforms only add, subtract and halve.
#pragma once
#include <cstdint>

#include "kernels/gemm.h"

namespace prm::cpu {

// The 2x2 output tiles of an H x W output: ceil(H / 2) x ceil(W / 2).
inline int64_t winograd_tiles(int64_t H, int64_t W) { return ((H + 1) / 2) * ((W + 1) / 2); }

// U [16][O][C]: U[xi][o][c] = (G w[o][c] Gᵀ)[i][j], xi = 4 i + j, from w [O][C][3][3].
template <typename T>
void winograd_weights(T* U, const T* w, int64_t O, int64_t C);

// V[xi][c][t] = (Bᵀ d B)[i][j] at V + (xi * C + c) * ldv + t, for the 4x4 patch d of channel c
// of one image x [C][H][W] under tile t of the tile rows [ty0, ty1) (t counted from the first of
// them: V holds those rows' tiles, ldv >= (ty1 - ty0) * tiles_w apart), for the channels
// [c0, c1). One thread: the caller splits the channels or the tile rows among its threads.
template <typename T>
void winograd_input(T* V, int64_t ldv, const T* x, int64_t C, int64_t H, int64_t W, int64_t c0,
                    int64_t c1, int64_t ty0, int64_t ty1);

// The 2x2 tiles Aᵀ m A of the tile rows [ty0, ty1) of the channels [o0, o1) back into y [O][H][W]
// (the last row or column of tiles cut at the image's edge), from M[xi][o][t] at
// M + (xi * O + o) * ldm + t (t as for winograd_input). `epilogue` (none when empty) is called on each pair of output rows of a
// channel as soon as they are written, as the GEMM calls it on its tiles (kernels/gemm.h), with
// y seen as the [O, H W] matrix: rows [o, o + 1), columns [2 ty W, 2 ty W + count W) for rows
// 2 ty .. of channel o. One thread, as winograd_input.
template <typename T>
void winograd_output(T* y, const T* M, int64_t ldm, int64_t O, int64_t H, int64_t W, int64_t o0,
                     int64_t o1, int64_t ty0, int64_t ty1, const GemmEpilogue<T>& epilogue);

// Winograd's F(4x4, 3x3): the same scheme on 4x4 output tiles, each from the 6x6 input patch d at
// (4 ty - 1, 4 tx - 1), with the transforms of Lavin and Gray (interpolation points 0, ±1, ±2
// and infinity):
//
//   Bᵀ = | 4  0 -5  0  1  0 |   G = |  1/4    0     0   |   Aᵀ = | 1  1  1  1  1  0 |
//        | 0 -4 -4  1  1  0 |       | -1/6  -1/6  -1/6  |        | 0  1 -1  2 -2  0 |
//        | 0  4 -4 -1  1  0 |       | -1/6   1/6  -1/6  |        | 0  1  1  4  4  0 |
//        | 0 -2 -1  2  1  0 |       |  1/24  1/12  1/6  |        | 0  1 -1  8 -8  1 |
//        | 0  2 -1 -2  1  0 |       |  1/24 -1/12  1/6  |
//        | 0  4  0 -5  0  1 |       |  0     0     1    |
//
// 36 products M_xi [O, T] = U_xi [O, C] · V_xi [C, T], xi = 6 i + j, where the direct GEMM is
// O x 16T x 9C: 4 times fewer multiply-adds, and 2.25 transformed values per output pixel and
// channel instead of F(2x2, 3x3)'s 4. The transforms' larger coefficients round more (bounded in
// the tests). Same layouts and contracts as the F(2x2, 3x3) functions above, with 36 for 16, 4x4
// tiles for 2x2 and four output rows per tile row for two.
inline int64_t winograd4_tiles(int64_t H, int64_t W) { return ((H + 3) / 4) * ((W + 3) / 4); }
template <typename T>
void winograd4_weights(T* U, const T* w, int64_t O, int64_t C);
template <typename T>
void winograd4_input(T* V, int64_t ldv, const T* x, int64_t C, int64_t H, int64_t W, int64_t c0,
                     int64_t c1, int64_t ty0, int64_t ty1);
template <typename T>
void winograd4_output(T* y, const T* M, int64_t ldm, int64_t O, int64_t H, int64_t W, int64_t o0,
                      int64_t o1, int64_t ty0, int64_t ty1, const GemmEpilogue<T>& epilogue);

}  // namespace prm::cpu
