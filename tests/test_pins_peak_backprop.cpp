// Pins of issue 20 for peak back-propagation's last step (docs/prm.md step 5): the PRM of a peak
// is clamp(sum over the RGB channels of the input gradient, min 0), normalised to sum 1. The
// PyTorch fixture's gradients never mix signs across the channels of one pixel, so it cannot tell
// "sum, then clamp" from "clamp each channel, then sum"; these gradients do, at the same pixel.
// Every expected number is worked out by hand in the comments.
#include <cmath>
#include <vector>

#include "helpers.h"
#include "prm/peak_backprop.h"

using namespace prm;

namespace {

// g [K=3, 3, 2, 3] laid out as g[k][c][pixel], pixels row-major over 2 x 3.
std::vector<double> mixed_sign_gradients() {
  return {
      // map 0. Per pixel (R, G, B) -> channel sum:
      //   p0 (2, -3, 0.5) -> -0.5   p1 (1, 1, 1) -> 3         p2 (-1, 4, 0) -> 3
      //   p3 (0.5, -0.25, 0.75) -> 1   p4 (-2, -2, -2) -> -6   p5 (6, -1, -1) -> 4
      2, 1, -1, 0.5, -2, 6,        // R
      -3, 1, 4, -0.25, -2, -1,     // G
      0.5, 1, 0, 0.75, -2, -1,     // B
      // map 1: every channel sum <= 0 although most pixels have a positive channel:
      //   (-1, 0.5, 0.25) -> -0.25, (0, 0, 0) -> 0, (-2, 1, 0.5) -> -0.5, (3, -4, 0.5) -> -0.5,
      //   (1, -1, 0) -> 0, (0.1, -0.2, 0) -> -0.1
      -1, 0, -2, 3, 1, 0.1,        // R
      0.5, 0, 1, -4, -1, -0.2,     // G
      0.25, 0, 0.5, 0.5, 0, 0,     // B
      // map 2: one pixel of each sign pattern, (1, -0.5, 0.5) -> 1 and (-1, 3, 0) -> 2,
      // the others sum to -1 (three times) and 0:
      1, -1, -1, 0, 1, 2,          // R
      -0.5, 3, -1, 0, -1, -2,      // G
      0.5, 0, 1, 0, -1, -1,        // B
  };
}

}  // namespace

TEST_CASE("peak backprop: channels are summed before the clamp at 0, then normalised to sum 1") {
  for (DType dt : {DType::f64, DType::f32}) {
    const bool f64 = dt == DType::f64;
    CAPTURE(f64);
    const Tensor g = Tensor::from_vector(mixed_sign_gradients(), {3, 3, 2, 3}, dt);
    const Tensor prms = prms_from_gradients(g);
    REQUIRE(prms.shape() == Shape{3, 2, 3});
    CHECK(prms.dtype() == dt);
    const double tol = f64 ? 1e-12 : 1e-6;
    // map 0: clamped sums (0, 3, 3, 1, 0, 4), total 11. (Clamping each channel first would give
    // (2.5, 3, 4, 1.25, 0, 6) / 16.75; normalising before the clamp, (.., 3, 3, 1, .., 4) / 4.5.)
    // map 1: every clamped sum is 0, so the map stays all zero (no division by 0, no NaN).
    // (Clamping each channel first would give (0.75, 0, 1.5, 3.5, 1, 0.1) / 6.85.)
    // map 2: clamped sums (1, 2, 0, 0, 0, 0), total 3.
    check_close(prms.to_vector(),
                {0, 3.0 / 11, 3.0 / 11, 1.0 / 11, 0, 4.0 / 11,  //
                 0, 0, 0, 0, 0, 0,                              //
                 1.0 / 3, 2.0 / 3, 0, 0, 0, 0},
                tol, tol);
  }
}

TEST_CASE("peak backprop: a single peak's PRM of mixed-sign gradients, by hand") {
  // One map [1, 3, 1, 4]: pixel sums (1 - 2 + 4, -1 + 1 - 1, 0.5 + 0.5 + 0, 2 - 3 + 2) =
  // (3, -1, 1, 1) -> clamped (3, 0, 1, 1), total 5 -> (0.6, 0, 0.2, 0.2).
  const Tensor g = Tensor::from_vector({1, -1, 0.5, 2,  //
                                        -2, 1, 0.5, -3,  //
                                        4, -1, 0, 2},
                                       {1, 3, 1, 4}, DType::f64);
  check_close(prms_from_gradients(g).to_vector(), {0.6, 0, 0.2, 0.2}, 1e-12, 1e-15);
}
