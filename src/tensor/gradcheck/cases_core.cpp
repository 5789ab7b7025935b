// Gradient-check cases for the tensor core's own differentiable conversions.
#include "tensor/gradcheck/gradcheck.h"

namespace prm {

void add_core_cases(std::vector<GradcheckCase>& cases) {
  cases.push_back({"to_dtype", "f64_to_f32_to_f64",
                   [](DType dt, std::mt19937_64& rng) {
                     return std::vector<Tensor>{
                         Tensor::randn({3, 5}, rng, dt).set_requires_grad(true)};
                   },
                   [](const std::vector<Tensor>& x) {
                     const DType other = x[0].dtype() == DType::f64 ? DType::f32 : DType::f64;
                     return x[0].to(other).to(x[0].dtype());
                   },
                   0.1, 1e-5});  // linear, so a large eps keeps float32 rounding negligible
  cases.push_back({"clone", "2x3x4",
                   [](DType dt, std::mt19937_64& rng) {
                     return std::vector<Tensor>{
                         Tensor::randn({2, 3, 4}, rng, dt).set_requires_grad(true)};
                   },
                   [](const std::vector<Tensor>& x) { return x[0].clone(); }});
}

}  // namespace prm
