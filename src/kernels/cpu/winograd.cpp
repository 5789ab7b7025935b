// The three transforms of Winograd's F(2x2, 3x3) (kernels/cpu/winograd.h). Each works on whole
// rows of tiles so that its inner loops run over consecutive tiles tx with unit stride (the
// compiler vectorises them): the input's even and odd columns are split once per row, after
// which the tiles' four columns are plain shifted arrays.
#include "kernels/cpu/winograd.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "tensor/error.h"

namespace prm::cpu {

template <typename T>
void winograd_weights(T* U, const T* w, int64_t O, int64_t C) {
  // Channels in blocks, so that the 16 outputs of a block are 16 short runs instead of 16
  // streams a whole [O][C] plane apart (which all fall into the same cache sets).
  constexpr int64_t kBlock = 64;
  const int64_t plane = O * C;
#pragma omp parallel for schedule(static) if (plane > 4096)
  for (int64_t o = 0; o < O; ++o) {
    T block[16][kBlock];
    for (int64_t c0 = 0; c0 < C; c0 += kBlock) {
      const int64_t n = std::min(kBlock, C - c0);
      for (int64_t cc = 0; cc < n; ++cc) {
        const T* g = w + (o * C + c0 + cc) * 9;
        T t[4][3];  // G g: the rows combined
        for (int j = 0; j < 3; ++j) {
          t[0][j] = g[j];
          t[1][j] = (g[j] + g[3 + j] + g[6 + j]) * T(0.5);
          t[2][j] = (g[j] - g[3 + j] + g[6 + j]) * T(0.5);
          t[3][j] = g[6 + j];
        }
        for (int i = 0; i < 4; ++i) {  // (G g) Gᵀ: the columns combined
          block[4 * i + 0][cc] = t[i][0];
          block[4 * i + 1][cc] = (t[i][0] + t[i][1] + t[i][2]) * T(0.5);
          block[4 * i + 2][cc] = (t[i][0] - t[i][1] + t[i][2]) * T(0.5);
          block[4 * i + 3][cc] = t[i][2];
        }
      }
      for (int xi = 0; xi < 16; ++xi)
        std::memcpy(U + xi * plane + o * C + c0, block[xi], sizeof(T) * n);
    }
  }
}

template <typename T>
void winograd_input(T* V, int64_t ldv, const T* x, int64_t C, int64_t H, int64_t W, int64_t c0,
                    int64_t c1, int64_t ty0, int64_t ty1) {
  PRM_CHECK(0 <= c0 && c0 <= c1 && c1 <= C && 0 <= ty0 && ty0 <= ty1 && ty1 <= (H + 1) / 2,
            "winograd_input: channels [", c0, ", ", c1, ") of ", C, ", tile rows [", ty0, ", ",
            ty1, ") of ", (H + 1) / 2);
  const int64_t tw = (W + 1) / 2;
  // One input row's odd and even columns, and the four rows' column transforms h[r][j][tx].
  std::vector<T> even(tw + 1), odd(tw + 1), h(16 * tw);
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      const T* xc = x + c * H * W;
      for (int r = 0; r < 4; ++r) {
        T* h0 = h.data() + 4 * r * tw;
        T *h1 = h0 + tw, *h2 = h1 + tw, *h3 = h2 + tw;
        const int64_t iy = 2 * ty - 1 + r;
        if (iy < 0 || iy >= H) {  // a padding row
          std::fill(h0, h0 + 4 * tw, T(0));
          continue;
        }
        // even[i] = x[iy][2 i - 1], odd[i] = x[iy][2 i], 0 outside the row: tile tx's columns
        // 2 tx - 1 .. 2 tx + 2 are even[tx], odd[tx], even[tx + 1], odd[tx + 1].
        const T* row = xc + iy * W;
        even[0] = T(0);
        for (int64_t i = 1; i <= W / 2; ++i) even[i] = row[2 * i - 1];
        if (W % 2 == 1) even[tw] = T(0);  // column W is padding
        for (int64_t i = 0; i < tw; ++i) odd[i] = row[2 * i];
        odd[tw] = T(0);
        const T* e = even.data();
        const T* od = odd.data();
        for (int64_t i = 0; i < tw; ++i) {  // d B: the columns combined
          h0[i] = e[i] - e[i + 1];
          h1[i] = od[i] + e[i + 1];
          h2[i] = e[i + 1] - od[i];
          h3[i] = od[i] - od[i + 1];
        }
      }
      for (int j = 0; j < 4; ++j) {  // Bᵀ (d B): the rows combined
        const T* r0 = h.data() + (0 * 4 + j) * tw;
        const T* r1 = h.data() + (1 * 4 + j) * tw;
        const T* r2 = h.data() + (2 * 4 + j) * tw;
        const T* r3 = h.data() + (3 * 4 + j) * tw;
        T* v0 = V + ((0 * 4 + j) * C + c) * ldv + (ty - ty0) * tw;
        T* v1 = V + ((1 * 4 + j) * C + c) * ldv + (ty - ty0) * tw;
        T* v2 = V + ((2 * 4 + j) * C + c) * ldv + (ty - ty0) * tw;
        T* v3 = V + ((3 * 4 + j) * C + c) * ldv + (ty - ty0) * tw;
        for (int64_t i = 0; i < tw; ++i) {
          v0[i] = r0[i] - r2[i];
          v1[i] = r1[i] + r2[i];
          v2[i] = r2[i] - r1[i];
          v3[i] = r1[i] - r3[i];
        }
      }
    }
}

template <typename T>
void winograd_output(T* y, const T* M, int64_t ldm, int64_t O, int64_t H, int64_t W, int64_t o0,
                     int64_t o1, int64_t ty0, int64_t ty1, const GemmEpilogue<T>& epilogue) {
  PRM_CHECK(0 <= o0 && o0 <= o1 && o1 <= O && 0 <= ty0 && ty0 <= ty1 && ty1 <= (H + 1) / 2,
            "winograd_output: channels [", o0, ", ", o1, ") of ", O, ", tile rows [", ty0, ", ",
            ty1, ") of ", (H + 1) / 2);
  const int64_t tw = (W + 1) / 2;
  std::vector<T> a(8 * tw), even(tw), odd(tw);
  for (int64_t o = o0; o < o1; ++o)
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      for (int j = 0; j < 4; ++j) {  // Aᵀ m: the rows combined, a[r][j][tx]
        const T* m0 = M + ((0 * 4 + j) * O + o) * ldm + (ty - ty0) * tw;
        const T* m1 = M + ((1 * 4 + j) * O + o) * ldm + (ty - ty0) * tw;
        const T* m2 = M + ((2 * 4 + j) * O + o) * ldm + (ty - ty0) * tw;
        const T* m3 = M + ((3 * 4 + j) * O + o) * ldm + (ty - ty0) * tw;
        T* a0 = a.data() + j * tw;
        T* a1 = a.data() + (4 + j) * tw;
        for (int64_t i = 0; i < tw; ++i) {
          a0[i] = m0[i] + m1[i] + m2[i];
          a1[i] = m1[i] - m2[i] - m3[i];
        }
      }
      const int64_t rows = std::min<int64_t>(2, H - 2 * ty);
      for (int64_t r = 0; r < rows; ++r) {  // (Aᵀ m) A: the columns combined
        const T* b0 = a.data() + 4 * r * tw;
        const T *b1 = b0 + tw, *b2 = b1 + tw, *b3 = b2 + tw;
        for (int64_t i = 0; i < tw; ++i) {
          even[i] = b0[i] + b1[i] + b2[i];
          odd[i] = b1[i] - b2[i] - b3[i];
        }
        T* out = y + (o * H + 2 * ty + r) * W;
        for (int64_t i = 0; i < W / 2; ++i) {
          out[2 * i] = even[i];
          out[2 * i + 1] = odd[i];
        }
        if (W % 2 == 1) out[W - 1] = even[W / 2];
      }
      if (epilogue) epilogue(y + o * H * W + 2 * ty * W, H * W, o, 2 * ty * W, 1, rows * W);
    }
}

template void winograd_weights<float>(float*, const float*, int64_t, int64_t);
template void winograd_weights<double>(double*, const double*, int64_t, int64_t);
template void winograd_input<float>(float*, int64_t, const float*, int64_t, int64_t, int64_t,
                                    int64_t, int64_t, int64_t, int64_t);
template void winograd_input<double>(double*, int64_t, const double*, int64_t, int64_t, int64_t,
                                     int64_t, int64_t, int64_t, int64_t);
template void winograd_output<float>(float*, const float*, int64_t, int64_t, int64_t, int64_t,
                                     int64_t, int64_t, int64_t, int64_t, const GemmEpilogue<float>&);
template void winograd_output<double>(double*, const double*, int64_t, int64_t, int64_t, int64_t,
                                      int64_t, int64_t, int64_t, int64_t,
                                      const GemmEpilogue<double>&);

}  // namespace prm::cpu
