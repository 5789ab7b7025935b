// Implicit im2col packing (conv_pack.h).
#include "kernels/cpu/conv_pack.h"

#include "kernels/cpu_isa.h"
#include "kernels/elementwise_math.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace prm::cpu {

namespace {

// A run of a strip's columns that share one output row: columns [jj0, jj0 + len) of the strip are
// output pixels (oy, ox0 .. ox0 + len - 1).
struct Run {
  int jj0, len;
  int64_t oy, ox0;
};

// Four pixels (ox .. ox + 3 of one output row, stride s) whose windows lie inside the image,
// all `width` taps of a transposed strip, then zeros to NR: rows[q * NR + jj] = at[off[jj] +
// q * s]. For float with stride 1 or 2, four taps at a time: each tap's four pixels are one
// vector (stride 2: two overlapping loads and a shuffle of the even elements, reading nothing
// past the fourth pixel's value), and a 4 x 4 transpose in registers turns them into each
// pixel's four taps, one store each; instead of a scalar load and store per value. Returns
// false where it does not apply (the caller packs one pixel at a time).
template <typename T>
bool pack_four_pixels(T* rows, const T* at, const int64_t* off, int width, int NR, int64_t s) {
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float>) {
    if (s != 1 && s != 2) return false;
    auto pixels = [s](const float* p) {
      if (s == 1) return _mm_loadu_ps(p);
      return _mm_shuffle_ps(_mm_loadu_ps(p), _mm_loadu_ps(p + 3), _MM_SHUFFLE(3, 1, 2, 0));
    };
    int jj = 0;
    for (; jj + 4 <= width; jj += 4) {
      __m128 r0 = pixels(at + off[jj]), r1 = pixels(at + off[jj + 1]);
      __m128 r2 = pixels(at + off[jj + 2]), r3 = pixels(at + off[jj + 3]);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      _mm_storeu_ps(rows + jj, r0);
      _mm_storeu_ps(rows + NR + jj, r1);
      _mm_storeu_ps(rows + 2 * NR + jj, r2);
      _mm_storeu_ps(rows + 3 * NR + jj, r3);
    }
    for (int q = 0; q < 4; ++q) {
      float* row = rows + q * NR;
      for (int t = jj; t < width; ++t) row[t] = at[off[t] + q * s];
      for (int t = width; t < NR; ++t) row[t] = 0.0f;
    }
    return true;
  }
#endif
  (void)rows, (void)at, (void)off, (void)width, (void)NR, (void)s;
  return false;
}

#if defined(__x86_64__)
// One run of a strip's row with AVX-512, for float and strides 1 and 2: out[t] = src[t * s] for
// t in [a, b) (the taps inside the image), 0 for the rest of [0, len), sixteen values at a time:
// a masked load (stride 2: two, over the span of source values the taps need, then the even
// ones picked by a permute) and a masked store. The lanes outside [a, b) are never read, so the
// same values as the portable loop: zeros and copies. (Those loops had runs of 14 values on
// ResNet's 14 x 14 layers, too short for the compiler's 16-wide vector loop, so they ran scalar.)
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline void run_avx512(
    float* out, const float* src, int len, int64_t a, int64_t b, int64_t s) {
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28,
                                          30);
  for (int t0 = 0; t0 < len; t0 += 16) {
    if (a <= t0 && b >= t0 + 16) {  // sixteen taps inside the image: no masks to compute
      const __m512 v = s == 1 ? _mm512_loadu_ps(src + t0)
                              : _mm512_permutex2var_ps(  // values 2t0 .. 2t0 + 30
                                    _mm512_loadu_ps(src + 2 * t0), evens,
                                    _mm512_maskz_loadu_ps(0x7FFF, src + 2 * t0 + 16));
      _mm512_storeu_ps(out + t0, v);
      continue;
    }
    const int n = std::min(16, len - t0);
    const int lo = static_cast<int>(std::clamp<int64_t>(a - t0, 0, n));
    const int hi = static_cast<int>(std::clamp<int64_t>(b - t0, lo, n));
    __m512 v;
    if (s == 1) {
      v = _mm512_maskz_loadu_ps(static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1)),
                                src + t0);
    } else {  // source values 2t, t in [lo, hi): the span [2 lo, 2 hi - 1) (bit 31 at most)
      const uint32_t span = hi > lo ? ((1u << (2 * hi - 1)) - 1) & ~((1u << (2 * lo)) - 1) : 0u;
      const __m512 x0 = _mm512_maskz_loadu_ps(static_cast<__mmask16>(span), src + 2 * t0);
      const __m512 x1 =
          _mm512_maskz_loadu_ps(static_cast<__mmask16>(span >> 16), src + 2 * t0 + 16);
      v = _mm512_permutex2var_ps(x0, evens, x1);
    }
    _mm512_mask_storeu_ps(out + t0, static_cast<__mmask16>((1u << n) - 1), v);
  }
}
#endif

// kAvx512: the body compiled into im2col_block_avx512 (below), which copies runs with run_avx512.
template <typename T, bool kAvx512 = false>
__attribute__((always_inline)) inline void im2col_block(T* dst, const T* x, int64_t H, int64_t W,
                                                        const ConvWindow& win, int64_t k0,
                                                        int64_t kc, int64_t j0, int64_t nc,
                                                        int NR) {
  const int64_t Wo = win.out_w(W);
  const int64_t taps = win.kh * win.kw;
  const int64_t s = win.stride;
  // Per column tap kj: the range of ox that reads inside the image (im2col_math.h), and the ix
  // of ox = 0. Computed once: the divisions are not repeated per row.
  std::vector<int64_t> inside_lo(win.kw), inside_hi(win.kw), x0(win.kw);
  for (int64_t kj = 0; kj < win.kw; ++kj) {
    im2col_inside_columns(win, W, Wo, kj, &inside_lo[kj], &inside_hi[kj]);
    x0[kj] = kj * win.dilation - win.pad;
  }
  Run runs[64];  // a strip of NR <= 64 columns has at most NR runs
  for (int64_t strip = 0; strip * NR < nc; ++strip, dst += kc * NR) {
    const int64_t first = j0 + strip * NR;
    const int width = static_cast<int>(std::min<int64_t>(NR, j0 + nc - first));
    int n_runs = 0;
    for (int jj = 0; jj < width;) {
      const int64_t j = first + jj;
      const int64_t oy = j / Wo, ox = j % Wo;
      const int len = static_cast<int>(std::min<int64_t>(width - jj, Wo - ox));
      runs[n_runs++] = Run{jj, len, oy, ox};
      jj += len;
    }
    // Row k0's (c, ki, kj), then stepped row by row.
    int64_t c = k0 / taps, ki = (k0 % taps) / win.kw, kj = k0 % win.kw;
    for (int64_t kk = 0; kk < kc; ++kk) {
      T* row = dst + kk * NR;
      const int64_t lo_kj = inside_lo[kj], hi_kj = inside_hi[kj];
      const T* plane = x + c * H * W + x0[kj];
      const int64_t y_tap = ki * win.dilation - win.pad;
      for (int r = 0; r < n_runs; ++r) {
        const Run& run = runs[r];
        T* out = row + run.jj0;
        const int64_t iy = run.oy * s + y_tap;
        if (iy < 0 || iy >= H) {
          for (int t = 0; t < run.len; ++t) out[t] = T(0);
          continue;
        }
        const T* in = plane + iy * W;  // in[ox * s] for ox inside
        const int64_t end = run.ox0 + run.len;
        const int64_t lo = std::clamp<int64_t>(lo_kj, run.ox0, end);
        const int64_t hi = std::clamp<int64_t>(hi_kj, lo, end);
#if defined(__x86_64__)
        if constexpr (kAvx512 && std::is_same_v<T, float>) {
          if (s <= 2) {
            run_avx512(out, in + run.ox0 * s, run.len, lo - run.ox0, hi - run.ox0, s);
            continue;
          }
        }
#endif
        int t = 0;
        for (; t < lo - run.ox0; ++t) out[t] = T(0);
        if (s == 1) {
          const T* src = in + run.ox0;
          for (; t < hi - run.ox0; ++t) out[t] = src[t];
        } else if (s == 2) {  // a constant step: loads and shuffles instead of a load per value
          const T* src = in + run.ox0 * 2;
          for (; t < hi - run.ox0; ++t) out[t] = src[2 * t];
        } else {
          for (; t < hi - run.ox0; ++t) out[t] = in[(run.ox0 + t) * s];
        }
        for (; t < run.len; ++t) out[t] = T(0);
      }
      for (int t = width; t < NR; ++t) row[t] = T(0);
      if (++kj == win.kw) {
        kj = 0;
        if (++ki == win.kh) {
          ki = 0;
          ++c;
        }
      }
    }
  }
}

template <typename T>
__attribute__((always_inline)) inline void im2col_block_transposed(T* dst, const T* x, int64_t H,
                                                                   int64_t W,
                                                                   const ConvWindow& win,
                                                                   int64_t p0, int64_t pc,
                                                                   int64_t t0, int64_t tn,
                                                                   int NR) {
  const int64_t Wo = win.out_w(W);
  const int64_t taps = win.kh * win.kw;
  const int64_t s = win.stride;
  // The pixels (oy, ox) whose window lies wholly inside the image: oy*s - p >= 0 and
  // oy*s - p + (kh-1)*d <= H - 1, likewise in x.
  const int64_t reach_y = (win.kh - 1) * win.dilation, reach_x = (win.kw - 1) * win.dilation;
  int64_t off[64], dy[64], dx[64];  // per tap of the strip: offset of (oy, ox) = (0, 0), reach
  for (int64_t strip = 0; strip * NR < tn; ++strip, dst += pc * NR) {
    const int64_t first = t0 + strip * NR;
    const int width = static_cast<int>(std::min<int64_t>(NR, t0 + tn - first));
    for (int jj = 0; jj < width; ++jj) {
      const int64_t k = first + jj, c = k / taps, ki = (k % taps) / win.kw, kj = k % win.kw;
      dy[jj] = ki * win.dilation - win.pad;
      dx[jj] = kj * win.dilation - win.pad;
      off[jj] = c * H * W + dy[jj] * W + dx[jj];
    }
    int64_t oy = p0 / Wo, ox = p0 % Wo;
    for (int64_t pp = 0; pp < pc; ++pp) {
      T* row = dst + pp * NR;
      const int64_t iy0 = oy * s, ix0 = ox * s;  // the window's corner is (iy0 - p, ix0 - p)
      const bool inside = iy0 - win.pad >= 0 && iy0 - win.pad + reach_y < H &&
                          ix0 - win.pad >= 0 && ix0 - win.pad + reach_x < W;
      const T* at = x + iy0 * W + ix0;
      if (inside && pp + 4 <= pc && ox + 4 <= Wo && ix0 + 3 * s - win.pad + reach_x < W &&
          pack_four_pixels(row, at, off, width, NR, s)) {
        pp += 3;  // four pixels of one output row, all windows inside the image
        ox += 4;
        if (ox == Wo) {
          ox = 0;
          ++oy;
        }
        continue;
      }
      if (inside) {
        for (int jj = 0; jj < width; ++jj) row[jj] = at[off[jj]];
      } else {
        for (int jj = 0; jj < width; ++jj) {
          const int64_t iy = iy0 + dy[jj], ix = ix0 + dx[jj];
          row[jj] = iy >= 0 && iy < H && ix >= 0 && ix < W ? at[off[jj]] : T(0);
        }
      }
      for (int jj = width; jj < NR; ++jj) row[jj] = T(0);
      if (++ox == Wo) {
        ox = 0;
        ++oy;
      }
    }
  }
}

#if defined(__x86_64__)
// The two packings compiled for AVX-512 as well (the binary's baseline is SSE2), taken on that
// path of the CPU kernels: pure copies, so the same values either way; the wider moves and
// shuffles for the strided gathers cost less (ResNet-50's forward at 448 x 448: about 1 %).
template <typename T>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void im2col_block_avx512(
    T* dst, const T* x, int64_t H, int64_t W, const ConvWindow& win, int64_t k0, int64_t kc,
    int64_t j0, int64_t nc, int NR) {
  im2col_block<T, true>(dst, x, H, W, win, k0, kc, j0, nc, NR);
}
template <typename T>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void im2col_block_transposed_avx512(
    T* dst, const T* x, int64_t H, int64_t W, const ConvWindow& win, int64_t p0, int64_t pc,
    int64_t t0, int64_t tn, int NR) {
  im2col_block_transposed(dst, x, H, W, win, p0, pc, t0, tn, NR);
}
#endif

}  // namespace

template <typename T>
void pack_im2col_block(T* dst, const T* x, int64_t H, int64_t W, const ConvWindow& win,
                       int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR) {
#if defined(__x86_64__)
  if (cpu_isa_active() == CpuIsa::avx512)
    return im2col_block_avx512(dst, x, H, W, win, k0, kc, j0, nc, NR);
#endif
  im2col_block(dst, x, H, W, win, k0, kc, j0, nc, NR);
}

template <typename T>
void pack_im2col_block_transposed(T* dst, const T* x, int64_t H, int64_t W,
                                  const ConvWindow& win, int64_t p0, int64_t pc, int64_t t0,
                                  int64_t tn, int NR) {
#if defined(__x86_64__)
  if (cpu_isa_active() == CpuIsa::avx512)
    return im2col_block_transposed_avx512(dst, x, H, W, win, p0, pc, t0, tn, NR);
#endif
  im2col_block_transposed(dst, x, H, W, win, p0, pc, t0, tn, NR);
}

template <typename T>
void pack_product_block(T* dst, const T* a, const T* b, int64_t ld, int64_t k0, int64_t kc,
                        int64_t j0, int64_t nc, int NR, const T* row_scale) {
  for (int64_t strip = 0; strip * NR < nc; ++strip, dst += kc * NR) {
    const int64_t c0 = j0 + strip * NR;
    const int width = static_cast<int>(std::min<int64_t>(NR, j0 + nc - c0));
    for (int64_t kk = 0; kk < kc; ++kk) {
      const T* ra = a + (k0 + kk) * ld + c0;
      const T* rb = b + (k0 + kk) * ld + c0;
      T* row = dst + kk * NR;
      if (row_scale == nullptr) {
        for (int jj = 0; jj < width; ++jj) row[jj] = binary_apply(BinaryOp::mul, ra[jj], rb[jj]);
      } else {
        const T f = row_scale[k0 + kk];
        for (int jj = 0; jj < width; ++jj)
          row[jj] = binary_apply(BinaryOp::mul, binary_apply(BinaryOp::mul, ra[jj], f), rb[jj]);
      }
      for (int jj = width; jj < NR; ++jj) row[jj] = T(0);
    }
  }
}

template void pack_im2col_block<float>(float*, const float*, int64_t, int64_t,
                                       const ConvWindow&, int64_t, int64_t, int64_t, int64_t,
                                       int);
template void pack_im2col_block<double>(double*, const double*, int64_t, int64_t,
                                        const ConvWindow&, int64_t, int64_t, int64_t, int64_t,
                                        int);
template void pack_im2col_block_transposed<float>(float*, const float*, int64_t, int64_t,
                                                  const ConvWindow&, int64_t, int64_t, int64_t,
                                                  int64_t, int);
template void pack_im2col_block_transposed<double>(double*, const double*, int64_t, int64_t,
                                                   const ConvWindow&, int64_t, int64_t, int64_t,
                                                   int64_t, int);
template void pack_product_block<float>(float*, const float*, const float*, int64_t, int64_t,
                                        int64_t, int64_t, int64_t, int, const float*);
template void pack_product_block<double>(double*, const double*, const double*, int64_t, int64_t,
                                         int64_t, int64_t, int64_t, int, const double*);

}  // namespace prm::cpu
