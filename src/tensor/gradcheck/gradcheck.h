// Gradient checking in the manner of Caffe's GradientChecker: the op's analytic gradient (from
// autograd) against central finite differences in float64. A non-scalar output y is reduced to
// L = sum(y * R) with a fixed random R (computed on the host, independent of the ops under test),
// so every output element contributes. Error per element: |a - n| / max(|a|, |n|, 1), which is a
// relative error for large gradients and an absolute one near zero. Inputs are built by each case
// so that no kink (ReLU at 0, max-pool ties, peak selection) lies within eps of an input.
//
// The same registry of cases drives the CPU doctest, `prm gradcheck`, and the CUDA-vs-CPU parity
// tests, so every op registered here is checked everywhere.
#pragma once
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace prm {

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradcheckResult {
  double max_error = 0.0;  // worst |a - n| / max(|a|, |n|, 1) over all checked elements
  std::string worst;       // "input 1 element 17: analytic 0.5 numeric 0.49"
  int64_t checked = 0;     // number of input elements checked
  bool ok = true;
};

// Inputs must be float64 leaves; only those with requires_grad are checked.
GradcheckResult gradcheck(const TensorFn& f, const std::vector<Tensor>& inputs, double eps,
                          double tol, uint64_t seed = 1234);

struct ParityResult {
  double max_error = 0.0;  // worst |cuda - cpu| / max(max|cpu|, 1) over outputs and gradients
  std::string worst;
  bool ok = true;
};

// Runs f on float32 copies of the inputs on the CPU and on CUDA, with the same upstream
// gradient, and compares the outputs and every input gradient.
ParityResult cuda_parity(const TensorFn& f, const std::vector<Tensor>& cpu_inputs, double tol,
                         uint64_t seed = 4321);

struct GradcheckCase {
  std::string op;       // the op's name, as `prm gradcheck --op` takes it
  std::string variant;  // which configuration ("stride2_pad1")
  // Builds fresh CPU inputs of the given float dtype; requires_grad set on those to check.
  std::function<std::vector<Tensor>(DType, std::mt19937_64&)> make_inputs;
  TensorFn fn;
  double eps = 1e-6;
  double tol = 1e-6;
  double parity_tol = 2e-5;
};

// Every registered case, in a stable order.
const std::vector<GradcheckCase>& gradcheck_cases();

// The ops that must have at least one case (tests fail if one is missing).
const std::vector<std::string>& required_gradcheck_ops();

// Moves a case's CPU inputs to `device`, keeping which ones require grad.
std::vector<Tensor> inputs_on(const std::vector<Tensor>& inputs, Device device);

// Each op group registers its cases in its own file.
void add_core_cases(std::vector<GradcheckCase>& cases);
void add_elementwise_cases(std::vector<GradcheckCase>& cases);
void add_conv_cases(std::vector<GradcheckCase>& cases);
void add_nn_cases(std::vector<GradcheckCase>& cases);
void add_prm_cases(std::vector<GradcheckCase>& cases);

}  // namespace prm
