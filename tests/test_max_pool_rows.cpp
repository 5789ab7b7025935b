// The CPU's MaxPool2dForward (kernels/cpu/pooling.cpp) takes the windows inside the image's
// columns in blocks of outputs, tap by tap; the windows at a row's ends one by one. Against a
// naive loop written here, on wide rows (several blocks), every kernel / stride / padding mix the
// network could use, values with many ties, NaNs and a plane of -inf: out and argmax must be equal exactly (the
// first maximum in scan order wins, -0 before +0 included; a NaN wins over anything, a later
// NaN over an earlier one). Without argmax (null: the inference forward) the outputs must be the
// same. With strides 1 and 2 (which the body takes as constants) and others.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "helpers.h"
#include "kernels/pooling.h"

using namespace prm;

namespace {

template <typename T>
void naive(const std::vector<T>& x, int64_t planes, int64_t H, int64_t W, int64_t k, int64_t s,
           int64_t p, std::vector<T>* out, std::vector<int64_t>* pick) {
  const int64_t OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
  for (int64_t q = 0; q < planes; ++q)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        T best = -INFINITY;
        int64_t at = -1;
        for (int64_t kh = 0; kh < k; ++kh)
          for (int64_t kw = 0; kw < k; ++kw) {
            const int64_t h = oh * s - p + kh, w = ow * s - p + kw;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            const T v = x[(q * H + h) * W + w];
            if (at < 0) at = h * W + w;  // nothing taken yet: the first tap inside
            if (v > best || std::isnan(v)) best = v, at = h * W + w;
          }
        out->push_back(best);
        pick->push_back(at);
      }
}

template <typename T>
void check(int64_t planes, int64_t H, int64_t W, int64_t k, int64_t s, int64_t p, uint64_t seed) {
  CAPTURE(H);
  CAPTURE(W);
  CAPTURE(k);
  CAPTURE(s);
  CAPTURE(p);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> level(-3, 3);  // few values: many ties
  std::vector<T> x(static_cast<size_t>(planes * H * W));
  for (T& v : x) v = static_cast<T>(level(rng));
  for (size_t i = 7; i < x.size(); i += 97) x[i] = NAN;
  for (size_t i = 3; i < x.size(); i += 41) x[i] = -INFINITY;
  for (size_t i = 11; i < x.size(); i += 5) x[i] = x[i] == T(0) ? T(-0.0) : x[i];  // -0 ties +0
  // The last plane all -inf: no tap is ever taken, every window keeps its first tap inside.
  for (size_t i = static_cast<size_t>((planes - 1) * H * W); i < x.size(); ++i) x[i] = -INFINITY;
  std::vector<T> want;
  std::vector<int64_t> want_pick;
  naive(x, planes, H, W, k, s, p, &want, &want_pick);
  const int64_t OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
  std::vector<T> got(want.size());
  std::vector<int64_t> got_pick(want.size());
  launch<MaxPool2dForward, T>(Device::cpu, got.data(), got_pick.data(), x.data(), int64_t(1),
                              planes, H, W, OH, OW, k, s, p);
  REQUIRE(got.size() == static_cast<size_t>(planes * OH * OW));
  std::vector<T> alone(want.size());  // the maxima without argmax
  launch<MaxPool2dForward, T>(Device::cpu, alone.data(), static_cast<int64_t*>(nullptr),
                              x.data(), int64_t(1), planes, H, W, OH, OW, k, s, p);
  auto same_value = [](T a, T b) {
    return std::memcmp(&a, &b, sizeof(T)) == 0 || (std::isnan(a) && std::isnan(b));
  };
  int64_t bad = 0, bad_alone = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!same_value(got[i], want[i]) || got_pick[i] != want_pick[i]) ++bad;
    if (!same_value(alone[i], want[i])) ++bad_alone;
  }
  CHECK(bad == 0);
  CHECK(bad_alone == 0);
}

}  // namespace

TEST_CASE("max pool forward (CPU): blocked rows give the naive loop's outputs and argmax") {
  struct Case {
    int64_t H, W, k, s, p;
  };
  const Case cases[] = {
      {9, 150, 3, 2, 1},  // ResNet's stem pool, rows of 75 outputs (two blocks)
      {7, 300, 3, 2, 1},  // 150 outputs: three blocks
      {6, 131, 3, 1, 1},  // stride 1
      {8, 140, 2, 2, 0},  // no padding: every window inside
      {5, 97, 3, 3, 0},   // stride = kernel
      {6, 64, 5, 2, 2},   // a wider window and padding
      {4, 3, 3, 2, 1},    // narrower than a window plus padding: ends only
      {3, 2, 2, 1, 1},    // no window wholly inside
      {5, 90, 2, 1, 0},   // stride 1 without padding
      {6, 101, 4, 2, 2},  // stride 2, an even window
      {5, 40, 5, 1, 2},   // padding above the stride: two windows at each end of a row
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    check<float>(3, c.H, c.W, c.k, c.s, c.p, seed++);
    check<double>(2, c.H, c.W, c.k, c.s, c.p, seed++);
  }
}
