// What the Winograd tests (test_winograd.cpp: F(2x2, 3x3); test_winograd4.cpp: F(4x4, 3x3))
// judge the transforms with: small dense matrices in double and their products, written here
// plainly, the tile-row ranges each transform is tried on, and what the output transforms'
// epilogue calls must cover.
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "helpers.h"
#include "kernels/gemm.h"

namespace winograd_reference {

using Mat = std::vector<std::vector<double>>;

inline Mat product(const Mat& a, const Mat& b) {
  Mat c(a.size(), std::vector<double>(b[0].size(), 0.0));
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t k = 0; k < b.size(); ++k)
      for (size_t j = 0; j < b[0].size(); ++j) c[i][j] += a[i][k] * b[k][j];
  return c;
}

inline Mat transposed(const Mat& a) {
  Mat t(a[0].size(), std::vector<double>(a.size()));
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[0].size(); ++j) t[j][i] = a[i][j];
  return t;
}

inline std::vector<double> normal(int64_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> dist;
  std::vector<double> v(n);
  for (double& e : v) e = dist(rng);
  return v;
}

// The tile-row ranges [ty0, ty1) of th rows a transform is tried on: the whole image, from the
// second row on, and one row from the middle (the chunks the convolution hands its threads).
inline std::vector<std::pair<int64_t, int64_t>> tile_row_ranges(int64_t th) {
  std::vector<std::pair<int64_t, int64_t>> r = {{0, th}, {th / 2, th / 2 + 1}};
  if (th > 1) r.push_back({1, th});
  return r;
}

// An epilogue for an output transform of O planes of H x W into y: each call must cover pixels
// of y as the GEMM's epilogue does (row stride ldc = H W, the block's first pixel at c), at
// least one, each written before the call (y starts as NaN); `seen` counts the calls on each.
inline prm::cpu::GemmEpilogue<double> counting_epilogue(std::vector<double>& y,
                                                        std::vector<int>& seen, int64_t H,
                                                        int64_t W) {
  return [&y, &seen, H, W](double* c, int64_t ldc, int64_t i0, int64_t j0, int64_t rows,
                           int64_t cols) {
    REQUIRE(ldc == H * W);
    REQUIRE(c == y.data() + i0 * ldc + j0);
    CHECK(rows >= 1);  // no empty blocks: every call covers pixels of the image
    CHECK(cols >= 1);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < cols; ++k) {
        CHECK(!std::isnan(c[r * ldc + k]));  // written before the epilogue sees it
        ++seen[(i0 + r) * ldc + j0 + k];
      }
  };
}

// After an output transform of the output rows [row0, row1) of O planes: each pixel of those
// rows written and seen once by the epilogue, no other pixel either.
inline void check_rows_covered(const std::vector<double>& y, const std::vector<int>& seen,
                               int64_t O, int64_t H, int64_t W, int64_t row0, int64_t row1) {
  int64_t wrong_seen = 0, wrong_written = 0;
  for (int64_t o = 0; o < O; ++o)
    for (int64_t oy = 0; oy < H; ++oy)
      for (int64_t ox = 0; ox < W; ++ox) {
        const bool inside = oy >= row0 && oy < row1;
        wrong_seen += seen[(o * H + oy) * W + ox] != (inside ? 1 : 0);
        wrong_written += std::isnan(y[(o * H + oy) * W + ox]) == inside;
      }
  CHECK(wrong_seen == 0);
  CHECK(wrong_written == 0);
}

}  // namespace winograd_reference
