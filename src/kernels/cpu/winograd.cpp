// The three transforms of Winograd's F(2x2, 3x3) and F(4x4, 3x3) (kernels/cpu/winograd.h). The
// input's and the output's work on whole rows of tiles so that their inner loops run over
// consecutive tiles tx with unit stride (the compiler vectorises them): an input row is split
// once into its 2 (or 4) phases of columns, after which each tile's 4 (or 6) columns are plain
// shifted arrays.
#include "kernels/cpu/winograd.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "tensor/error.h"

namespace prm::cpu {

// U [P][O][C] from w [O][C][3][3], P = kPositions: transform(g, u) writes the P values of one
// kernel's transform, u[xi]. Channels in blocks, so that the P outputs of a block are P short
// runs instead of P streams a whole [O][C] plane apart (which all fall into the same cache sets).
template <int kPositions, typename T, class Transform>
void transform_weights(T* U, const T* w, int64_t O, int64_t C, Transform transform) {
  constexpr int64_t kBlock = 64;
  const int64_t plane = O * C;
#pragma omp parallel for schedule(static) if (plane > 4096)
  for (int64_t o = 0; o < O; ++o) {
    T block[kPositions][kBlock];
    for (int64_t c0 = 0; c0 < C; c0 += kBlock) {
      const int64_t n = std::min(kBlock, C - c0);
      for (int64_t cc = 0; cc < n; ++cc) {
        T u[kPositions];
        transform(w + (o * C + c0 + cc) * 9, u);
        for (int xi = 0; xi < kPositions; ++xi) block[xi][cc] = u[xi];
      }
      for (int xi = 0; xi < kPositions; ++xi)
        std::memcpy(U + xi * plane + o * C + c0, block[xi], sizeof(T) * n);
    }
  }
}

template <typename T>
void winograd_weights(T* U, const T* w, int64_t O, int64_t C) {
  transform_weights<16>(U, w, O, C, [](const T* g, T* u) {
    T t[4][3];  // G g: the rows combined
    for (int j = 0; j < 3; ++j) {
      t[0][j] = g[j];
      t[1][j] = (g[j] + g[3 + j] + g[6 + j]) * T(0.5);
      t[2][j] = (g[j] - g[3 + j] + g[6 + j]) * T(0.5);
      t[3][j] = g[6 + j];
    }
    for (int i = 0; i < 4; ++i) {  // (G g) Gᵀ: the columns combined
      u[4 * i + 0] = t[i][0];
      u[4 * i + 1] = (t[i][0] + t[i][1] + t[i][2]) * T(0.5);
      u[4 * i + 2] = (t[i][0] - t[i][1] + t[i][2]) * T(0.5);
      u[4 * i + 3] = t[i][2];
    }
  });
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

// ---- F(4x4, 3x3) ----

// The 1-D transforms, shared by the rows and the columns. G g: the weights'.
template <typename T>
inline void weight3(T a, T b, T c, T* r) {
  r[0] = a * T(0.25);
  r[1] = -(a + b + c) / T(6);
  r[2] = -(a - b + c) / T(6);
  r[3] = a / T(24) + b / T(12) + c / T(6);
  r[4] = a / T(24) - b / T(12) + c / T(6);
  r[5] = c;
}

// Bᵀ d, the input's, on n tiles side by side: d_k[t] in, r_k[t] out. Separate arrays the
// compiler is told do not overlap (restrict), so that it vectorises the loop.
template <typename T>
void input6_run(const T* __restrict d0, const T* __restrict d1, const T* __restrict d2,
                const T* __restrict d3, const T* __restrict d4, const T* __restrict d5,
                T* __restrict r0, T* __restrict r1, T* __restrict r2, T* __restrict r3,
                T* __restrict r4, T* __restrict r5, int64_t n) {
  for (int64_t t = 0; t < n; ++t) {
    r0[t] = T(4) * d0[t] - T(5) * d2[t] + d4[t];
    r1[t] = (d3[t] + d4[t]) - T(4) * (d1[t] + d2[t]);
    r2[t] = (d4[t] - d3[t]) + T(4) * (d1[t] - d2[t]);
    r3[t] = (d4[t] - d2[t]) + T(2) * (d3[t] - d1[t]);
    r4[t] = (d4[t] - d2[t]) - T(2) * (d3[t] - d1[t]);
    r5[t] = T(4) * d1[t] - T(5) * d3[t] + d5[t];
  }
}

// Aᵀ m on n tiles side by side: six values to four.
template <typename T>
void output6_run(const T* __restrict m0, const T* __restrict m1, const T* __restrict m2,
                 const T* __restrict m3, const T* __restrict m4, const T* __restrict m5,
                 T* __restrict r0, T* __restrict r1, T* __restrict r2, T* __restrict r3,
                 int64_t n) {
  for (int64_t t = 0; t < n; ++t) {
    const T s12 = m1[t] + m2[t], d12 = m1[t] - m2[t], s34 = m3[t] + m4[t], d34 = m3[t] - m4[t];
    r0[t] = m0[t] + s12 + s34;
    r1[t] = d12 + T(2) * d34;
    r2[t] = s12 + T(4) * s34;
    r3[t] = d12 + T(8) * d34 + m5[t];
  }
}

template <typename T>
void winograd4_weights(T* U, const T* w, int64_t O, int64_t C) {
  transform_weights<36>(U, w, O, C, [](const T* g, T* u) {
    T t[3][6];  // column j of G g, t[j][i] = (G g)[i][j]
    for (int j = 0; j < 3; ++j) weight3(g[j], g[3 + j], g[6 + j], t[j]);
    for (int i = 0; i < 6; ++i) weight3(t[0][i], t[1][i], t[2][i], u + 6 * i);  // row i, times Gᵀ
  });
}

template <typename T>
void winograd4_input(T* V, int64_t ldv, const T* x, int64_t C, int64_t H, int64_t W, int64_t c0,
                     int64_t c1, int64_t ty0, int64_t ty1) {
  PRM_CHECK(0 <= c0 && c0 <= c1 && c1 <= C && 0 <= ty0 && ty0 <= ty1 && ty1 <= (H + 3) / 4,
            "winograd4_input: channels [", c0, ", ", c1, ") of ", C, ", tile rows [", ty0, ", ",
            ty1, ") of ", (H + 3) / 4);
  const int64_t tw = (W + 3) / 4;
  // One input row in four phases, p[k][i] = x[iy][4 i - 1 + k] (0 outside the row): tile tx's
  // six columns are p0[tx], p1[tx], p2[tx], p3[tx], p0[tx + 1], p1[tx + 1]. And the six rows'
  // column transforms, h[(6 r + j) tw + tx].
  std::vector<T> phase(4 * (tw + 1)), h(36 * tw);
  T* p0 = phase.data();
  T *p1 = p0 + tw + 1, *p2 = p1 + tw + 1, *p3 = p2 + tw + 1;
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      const T* xc = x + c * H * W;
      for (int r = 0; r < 6; ++r) {
        T* hr = h.data() + 6 * r * tw;
        const int64_t iy = 4 * ty - 1 + r;
        if (iy < 0 || iy >= H) {  // a padding row
          std::fill(hr, hr + 6 * tw, T(0));
          continue;
        }
        const T* row = xc + iy * W;
        // Columns 4 i - 1 .. 4 i + 2 all inside the row for i in [1, inner); the ends apart.
        const int64_t inner = std::max<int64_t>(1, std::min<int64_t>(tw + 1, (W - 3) / 4 + 1));
        auto edge = [&](int64_t i) {
          const int64_t col = 4 * i - 1;
          p0[i] = col >= 0 && col < W ? row[col] : T(0);
          p1[i] = col + 1 < W ? row[col + 1] : T(0);
          p2[i] = col + 2 < W ? row[col + 2] : T(0);
          p3[i] = col + 3 < W ? row[col + 3] : T(0);
        };
        edge(0);
        for (int64_t i = 1; i < inner; ++i) {
          p0[i] = row[4 * i - 1];
          p1[i] = row[4 * i];
          p2[i] = row[4 * i + 1];
          p3[i] = row[4 * i + 2];
        }
        for (int64_t i = inner; i <= tw; ++i) edge(i);
        T* h0 = hr;  // d B: the columns combined
        input6_run<T>(p0, p1, p2, p3, p0 + 1, p1 + 1, h0, h0 + tw, h0 + 2 * tw, h0 + 3 * tw,
                      h0 + 4 * tw, h0 + 5 * tw, tw);
      }
      for (int j = 0; j < 6; ++j) {  // Bᵀ (d B): the rows combined
        const T* r0 = h.data() + j * tw;
        T* v[6];
        for (int i = 0; i < 6; ++i) v[i] = V + ((6 * i + j) * C + c) * ldv + (ty - ty0) * tw;
        input6_run<T>(r0, r0 + 6 * tw, r0 + 12 * tw, r0 + 18 * tw, r0 + 24 * tw, r0 + 30 * tw,
                      v[0], v[1], v[2], v[3], v[4], v[5], tw);
      }
    }
}

template <typename T>
void winograd4_output(T* y, const T* M, int64_t ldm, int64_t O, int64_t H, int64_t W, int64_t o0,
                      int64_t o1, int64_t ty0, int64_t ty1, const GemmEpilogue<T>& epilogue) {
  PRM_CHECK(0 <= o0 && o0 <= o1 && o1 <= O && 0 <= ty0 && ty0 <= ty1 && ty1 <= (H + 3) / 4,
            "winograd4_output: channels [", o0, ", ", o1, ") of ", O, ", tile rows [", ty0, ", ",
            ty1, ") of ", (H + 3) / 4);
  const int64_t tw = (W + 3) / 4;
  std::vector<T> a(24 * tw), q(4 * tw);  // a[(6 r + j) tw + tx]: Aᵀ m's row r, column j
  for (int64_t o = o0; o < o1; ++o)
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      for (int j = 0; j < 6; ++j) {  // Aᵀ m: the rows combined
        const T* m[6];
        for (int i = 0; i < 6; ++i) m[i] = M + ((6 * i + j) * O + o) * ldm + (ty - ty0) * tw;
        T* a0 = a.data() + j * tw;
        output6_run<T>(m[0], m[1], m[2], m[3], m[4], m[5], a0, a0 + 6 * tw, a0 + 12 * tw,
                       a0 + 18 * tw, tw);
      }
      const int64_t rows = std::min<int64_t>(4, H - 4 * ty);
      for (int64_t r = 0; r < rows; ++r) {  // (Aᵀ m) A: the columns combined
        const T* b = a.data() + 6 * r * tw;
        T *q0 = q.data(), *q1 = q0 + tw, *q2 = q1 + tw, *q3 = q2 + tw;
        output6_run<T>(b, b + tw, b + 2 * tw, b + 3 * tw, b + 4 * tw, b + 5 * tw, q0, q1, q2, q3,
                       tw);
        T* out = y + (o * H + 4 * ty + r) * W;
        for (int64_t t = 0; t < W / 4; ++t) {
          out[4 * t] = q0[t];
          out[4 * t + 1] = q1[t];
          out[4 * t + 2] = q2[t];
          out[4 * t + 3] = q3[t];
        }
        for (int64_t col = W / 4 * 4; col < W; ++col) out[col] = q[(col % 4) * tw + col / 4];
      }
      if (epilogue) epilogue(y + o * H * W + 4 * ty * W, H * W, o, 4 * ty * W, 1, rows * W);
    }
}

template void winograd4_weights<float>(float*, const float*, int64_t, int64_t);
template void winograd4_weights<double>(double*, const double*, int64_t, int64_t);
template void winograd4_input<float>(float*, int64_t, const float*, int64_t, int64_t, int64_t,
                                     int64_t, int64_t, int64_t, int64_t);
template void winograd4_input<double>(double*, int64_t, const double*, int64_t, int64_t, int64_t,
                                      int64_t, int64_t, int64_t, int64_t);
template void winograd4_output<float>(float*, const float*, int64_t, int64_t, int64_t, int64_t,
                                      int64_t, int64_t, int64_t, int64_t,
                                      const GemmEpilogue<float>&);
template void winograd4_output<double>(double*, const double*, int64_t, int64_t, int64_t, int64_t,
                                       int64_t, int64_t, int64_t, int64_t,
                                       const GemmEpilogue<double>&);

}  // namespace prm::cpu
