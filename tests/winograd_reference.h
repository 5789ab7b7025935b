// What the Winograd tests (test_winograd.cpp: F(2x2, 3x3); test_winograd4.cpp: F(4x4, 3x3))
// judge the transforms with: small dense matrices in double and their products, written here
// plainly, and the tile-row ranges each transform is tried on.
#pragma once
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

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

}  // namespace winograd_reference
