// Gradient-check cases for the PRM ops. Peak stimulation's output is piecewise linear in its
// input: the inputs are distinct values 0.05 apart (no window ties, no value within eps of the
// median or of a neighbour), so no finite-difference step changes which peaks are kept.
#include <algorithm>
#include <numeric>

#include "tensor/gradcheck/gradcheck.h"
#include "tensor/ops.h"
#include "tensor/ops/peak_stimulation.h"

namespace prm {

namespace {

using Inputs = std::vector<Tensor>;

Tensor distinct_leaf(const Shape& shape, DType dt, std::mt19937_64& rng) {
  std::vector<double> v(shape_numel(shape));
  std::iota(v.begin(), v.end(), 0.0);
  std::shuffle(v.begin(), v.end(), rng);
  for (double& x : v) x = 0.05 * x - 1.0;
  return Tensor::from_vector(v, shape, dt).set_requires_grad(true);
}

}  // namespace

void add_prm_cases(std::vector<GradcheckCase>& cases) {
  struct Variant {
    const char* name;
    Shape shape;
    bool upsample;  // the training path: CRMs upsampled x8 (align_corners) first
  };
  const Variant variants[] = {
      {"mean_2x3x7x6", {2, 3, 7, 6}, false},
      {"mean_1x2x8x8_even_count", {1, 2, 8, 8}, false},
      {"upsample8_then_peaks_1x2x3x3", {1, 2, 3, 3}, true},
  };
  for (const Variant& v : variants) {
    const Shape shape = v.shape;
    const bool upsample = v.upsample;
    cases.push_back({"peak_stimulation", v.name,
                     [shape](DType dt, std::mt19937_64& rng) {
                       return Inputs{distinct_leaf(shape, dt, rng)};
                     },
                     [upsample](const Inputs& x) {
                       const Tensor crm = upsample ? upsample_bilinear_scale(x[0], 8.0, true) : x[0];
                       return peak_stimulation(crm, PeakGrad::mean);
                     }});
  }
}

}  // namespace prm
