// coalesce_walks (kernels/elementwise_math.h): merging dims must not change which element each
// step of a walk reads. Checked against the offsets of the walks as given, element by element, on
// broadcast layouts (stride 0), transposed and sliced ones, and size-1 dims; plus the merges a
// per-channel broadcast should get.
#include <random>
#include <vector>

#include "helpers.h"
#include "kernels/elementwise_math.h"

using namespace prm;

namespace {

std::vector<int64_t> offsets(const Strides& s, int64_t n) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(strided_offset(i, s));
  return out;
}

Strides walk(std::vector<int64_t> size, std::vector<int64_t> stride) {
  Strides s;
  s.ndim = static_cast<int>(size.size());
  for (int d = 0; d < s.ndim; ++d) {
    s.size[d] = size[d];
    s.stride[d] = stride[d];
  }
  return s;
}

}  // namespace

TEST_CASE("coalesce_walks: a per-channel operand against [K, C, H, W] becomes [K, C, H*W]") {
  Strides w[2] = {walk({16, 64, 7, 9}, {64 * 63, 63, 9, 1}), walk({16, 64, 7, 9}, {0, 1, 0, 0})};
  coalesce_walks(w, 2);
  REQUIRE(w[0].ndim == 3);  // H and W merge; K and C do not (b repeats over K, steps over C)
  CHECK(w[0].size[2] == 63);
  CHECK(w[0].stride[2] == 1);
  CHECK(w[1].stride[0] == 0);
  CHECK(w[1].stride[1] == 1);
  CHECK(w[1].stride[2] == 0);
  Strides u[1] = {walk({1, 3, 1, 4}, {12, 4, 4, 1})};
  coalesce_walks(u, 1);  // size-1 dims dropped, then one contiguous run
  CHECK(u[0].ndim == 1);
  CHECK(u[0].size[0] == 12);
  Strides v[2] = {walk({16, 5, 7}, {35, 7, 1}), walk({16, 5, 7}, {0, 7, 1})};
  coalesce_walks(v, 2);  // a batch of maps against one map: [16, 35] with b's outer stride 0
  CHECK(v[0].ndim == 2);
  CHECK(v[0].size[1] == 35);
  CHECK(v[1].stride[0] == 0);
  CHECK(v[1].stride[1] == 1);
}

TEST_CASE("coalesce_walks: every walk reads the same elements in the same order") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 400; ++trial) {
    const int ndim = 1 + static_cast<int>(rng() % 5);
    const int count = 1 + static_cast<int>(rng() % 3);
    std::vector<int64_t> size(ndim);
    int64_t n = 1;
    for (int64_t& s : size) {
      s = 1 + static_cast<int64_t>(rng() % 4);
      n *= s;
    }
    Strides w[3];
    for (int k = 0; k < count; ++k) {
      // Contiguous, broadcast (0), or a permuted / padded layout, dim by dim.
      std::vector<int64_t> stride(ndim);
      int64_t step = 1;
      for (int d = ndim - 1; d >= 0; --d) {
        const unsigned kind = rng() % 4;
        stride[d] = kind == 0 ? 0 : kind == 1 ? step * 2 : step;
        step *= size[d] + (kind == 1 ? 1 : 0);
      }
      w[k] = walk(size, stride);
    }
    std::vector<std::vector<int64_t>> before;
    for (int k = 0; k < count; ++k) before.push_back(offsets(w[k], n));
    coalesce_walks(w, count);
    for (int k = 0; k < count; ++k) {
      CAPTURE(trial);
      CAPTURE(k);
      CHECK(offsets(w[k], n) == before[k]);
      CHECK(w[k].ndim == w[0].ndim);
      for (int d = 0; d < w[k].ndim; ++d) CHECK(w[k].size[d] == w[0].size[d]);
    }
  }
}
