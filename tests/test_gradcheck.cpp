// Every registered op case: float64 finite-difference gradient check on the CPU, and on CUDA
// the same check plus float32 CUDA-vs-CPU parity of outputs and gradients.
#include <algorithm>
#include <set>

#include "helpers.h"
#include "tensor/autograd.h"
#include "tensor/gradcheck/gradcheck.h"

using namespace prm;

TEST_CASE("every required op has a gradcheck case") {
  std::set<std::string> have;
  for (const GradcheckCase& c : gradcheck_cases()) have.insert(c.op);
  for (const std::string& op : required_gradcheck_ops()) {
    CAPTURE(op);
    CHECK(have.count(op) == 1);
  }
}

TEST_CASE("gradcheck detects a wrong gradient") {
  // A deliberately wrong backward (factor 3 instead of 2) must fail the check.
  TensorFn wrong = [](const std::vector<Tensor>& x) {
    std::vector<double> values = x[0].to_vector();
    for (double& v : values) v *= 2;
    Tensor out = Tensor::from_vector(values, x[0].shape(), DType::f64);
    attach_grad_fn(out, "wrong_double", "wrong_double", {x[0]}, [](const Tensor& g) {
      std::vector<double> gv = g.to_vector();
      for (double& v : gv) v *= 3;
      return std::vector<Tensor>{Tensor::from_vector(gv, g.shape(), DType::f64)};
    });
    return out;
  };
  std::mt19937_64 rng(1);
  Tensor x = Tensor::randn({4}, rng, DType::f64).set_requires_grad(true);
  GradcheckResult r = gradcheck(wrong, {x}, 1e-6, 1e-6);
  CHECK_FALSE(r.ok);
  CHECK(r.max_error > 0.1);
}

TEST_CASE("gradcheck of every op on cpu (float64)") {
  std::mt19937_64 rng(7);
  for (const GradcheckCase& c : gradcheck_cases()) {
    SUBCASE((c.op + "/" + c.variant).c_str()) {
      GradcheckResult r = gradcheck(c.fn, c.make_inputs(DType::f64, rng), c.eps, c.tol);
      INFO(c.op, "/", c.variant, ": ", r.worst);
      CHECK(r.checked > 0);
      CHECK(r.max_error <= c.tol);
    }
  }
}

TEST_SUITE("cuda") {
  TEST_CASE("gradcheck of every op on cuda (float64)") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    std::mt19937_64 rng(7);
    for (const GradcheckCase& c : gradcheck_cases()) {
      SUBCASE((c.op + "/" + c.variant).c_str()) {
        auto inputs = inputs_on(c.make_inputs(DType::f64, rng), Device::cuda);
        GradcheckResult r = gradcheck(c.fn, inputs, c.eps, c.tol);
        INFO(c.op, "/", c.variant, ": ", r.worst);
        CHECK(r.max_error <= c.tol);
      }
    }
  }

  TEST_CASE("cuda vs cpu parity of every op (float32)") {
    PRM_REQUIRE_CUDA_OR_SKIP();
    std::mt19937_64 rng(11);
    for (const GradcheckCase& c : gradcheck_cases()) {
      SUBCASE((c.op + "/" + c.variant).c_str()) {
        ParityResult r = cuda_parity(c.fn, c.make_inputs(DType::f32, rng), c.parity_tol);
        INFO(c.op, "/", c.variant, ": ", r.worst);
        CHECK(r.max_error <= c.parity_tol);
      }
    }
  }
}
