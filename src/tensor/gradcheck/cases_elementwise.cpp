// Gradient-check cases for the elementwise, reduction, shape and loss ops. Shapes are kept small
// (the check is O(numel^2)) but awkward: odd H and W, C not a multiple of 32, batch 3, and the
// broadcasting patterns the network uses ([N,C,H,W] op [C,1,1]).
#include <cmath>

#include "tensor/gradcheck/gradcheck.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/loss.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/shape.h"

namespace prm {

namespace {

using Inputs = std::vector<Tensor>;

Tensor leaf(Tensor t) { return t.set_requires_grad(true); }

// Normal values pushed at least `gap` away from 0 (keeps ReLU's kink out of reach of eps).
Tensor away_from_zero(const Shape& shape, double gap, std::mt19937_64& rng, DType dt) {
  std::vector<double> v = Tensor::randn(shape, rng, DType::f64).to_vector();
  for (double& x : v) x = x < 0 ? x - gap : x + gap;
  return Tensor::from_vector(v, shape, dt);
}

// A case whose inputs are all random normal leaves of the given shapes.
GradcheckCase normal_case(const std::string& op, const std::string& variant,
                          std::vector<Shape> shapes, TensorFn fn) {
  return {op, variant,
          [shapes](DType dt, std::mt19937_64& rng) {
            Inputs in;
            for (const Shape& s : shapes) in.push_back(leaf(Tensor::randn(s, rng, dt)));
            return in;
          },
          std::move(fn)};
}

void add_binary_cases(std::vector<GradcheckCase>& cases) {
  auto plus = [](const Inputs& x) { return add(x[0], x[1]); };
  auto minus = [](const Inputs& x) { return sub(x[0], x[1]); };
  auto times = [](const Inputs& x) { return mul(x[0], x[1]); };
  cases.push_back(normal_case("add", "same_3x4", {{3, 4}, {3, 4}}, plus));
  cases.push_back(normal_case("add", "bcast_2x1x4_3x1", {{2, 1, 4}, {3, 1}}, plus));
  cases.push_back(normal_case("add", "bias_3x5x7x9_5x1x1", {{3, 5, 7, 9}, {5, 1, 1}}, plus));
  cases.push_back(normal_case("add", "scalar_tensor", {{}, {2, 3}}, plus));
  cases.push_back(normal_case("sub", "bcast_2x1x4_3x1", {{2, 1, 4}, {3, 1}}, minus));
  cases.push_back(normal_case("sub", "bcast_3_4x3", {{3}, {4, 3}}, minus));
  cases.push_back(normal_case("mul", "same_3x5x7", {{3, 5, 7}, {3, 5, 7}}, times));
  cases.push_back(normal_case("mul", "bcast_3x5x7x9_5x1x1", {{3, 5, 7, 9}, {5, 1, 1}}, times));
  cases.push_back(normal_case("mul", "bcast_3x1x7_1x5x1", {{3, 1, 7}, {1, 5, 1}}, times));
  // Denominators in [0.5, 2] with random sign: far from the pole at 0.
  auto make_div = [](Shape sa, Shape sb) {
    return [sa, sb](DType dt, std::mt19937_64& rng) {
      Tensor b = Tensor::uniform(sb, 0.5, 2.0, rng, DType::f64);
      std::vector<double> v = b.to_vector();
      std::bernoulli_distribution flip(0.5);
      for (double& x : v) x = flip(rng) ? -x : x;
      return Inputs{leaf(Tensor::randn(sa, rng, dt)), leaf(Tensor::from_vector(v, sb, dt))};
    };
  };
  auto divide = [](const Inputs& x) { return div(x[0], x[1]); };
  cases.push_back({"div", "same_3x5", make_div({3, 5}, {3, 5}), divide});
  cases.push_back({"div", "bcast_3x5x3x3_5x1x1", make_div({3, 5, 3, 3}, {5, 1, 1}), divide});
  cases.push_back({"div", "bcast_3_4x3", make_div({3}, {4, 3}), divide});
}

void add_unary_cases(std::vector<GradcheckCase>& cases) {
  cases.push_back(normal_case("add_scalar", "3x5x7", {{3, 5, 7}},
                              [](const Inputs& x) { return add_scalar(x[0], 1.5); }));
  cases.push_back(normal_case("mul_scalar", "3x5x7", {{3, 5, 7}},
                              [](const Inputs& x) { return mul_scalar(x[0], -2.5); }));
  auto positive = [](DType dt, std::mt19937_64& rng) {
    return Inputs{leaf(Tensor::uniform({3, 5, 7}, 0.5, 2.0, rng, dt))};
  };
  cases.push_back({"pow_scalar", "p2.5_positive", positive,
                   [](const Inputs& x) { return pow_scalar(x[0], 2.5); }});
  cases.push_back({"pow_scalar", "p-1_positive", positive,
                   [](const Inputs& x) { return pow_scalar(x[0], -1.0); }});
  cases.push_back(normal_case("pow_scalar", "p3_any_sign", {{4, 3}},
                              [](const Inputs& x) { return pow_scalar(x[0], 3.0); }));
  cases.push_back({"relu", "3x5x7x9_away_from_0",
                   [](DType dt, std::mt19937_64& rng) {
                     return Inputs{leaf(away_from_zero({3, 5, 7, 9}, 0.01, rng, dt))};
                   },
                   [](const Inputs& x) { return relu(x[0]); }});
  cases.push_back({"sigmoid", "3x5x7",
                   [](DType dt, std::mt19937_64& rng) {
                     return Inputs{leaf(mul_scalar(Tensor::randn({3, 5, 7}, rng, dt), 3.0))};
                   },
                   [](const Inputs& x) { return sigmoid(x[0]); }});
  cases.push_back(normal_case("neg_operators", "mixed", {{3, 4}, {4}},
                              [](const Inputs& x) {
                                return -(2.0 - x[0]) * 0.5 + x[1] / 3.0 - 1.0;
                              }));
}

void add_reduce_cases(std::vector<GradcheckCase>& cases) {
  cases.push_back(normal_case("sum", "all_3x5x7", {{3, 5, 7}},
                              [](const Inputs& x) { return sum(x[0]); }));
  cases.push_back(normal_case("sum", "dims_0_2_3x5x7x9", {{3, 5, 7, 9}},
                              [](const Inputs& x) { return sum(x[0], {0, 2}); }));
  cases.push_back(normal_case("sum", "dims_1_-1_keepdim_3x5x7x9", {{3, 5, 7, 9}},
                              [](const Inputs& x) { return sum(x[0], {1, -1}, true); }));
  cases.push_back(normal_case("sum", "dims_0_2_3_keepdim_3x5x7x9", {{3, 5, 7, 9}},
                              [](const Inputs& x) { return sum(x[0], {0, 2, 3}, true); }));
  cases.push_back(normal_case("mean", "all_3x5x7", {{3, 5, 7}},
                              [](const Inputs& x) { return mean(x[0]); }));
  cases.push_back(normal_case("mean", "dims_2_3_3x5x7x9", {{3, 5, 7, 9}},
                              [](const Inputs& x) { return mean(x[0], {2, 3}); }));
  cases.push_back(normal_case("mean", "dims_0_keepdim_3x5x7", {{3, 5, 7}},
                              [](const Inputs& x) { return mean(x[0], {0}, true); }));
}

void add_shape_cases(std::vector<GradcheckCase>& cases) {
  cases.push_back(normal_case("reshape", "3x5x7_to_5x-1", {{3, 5, 7}}, [](const Inputs& x) {
    // Multiply after the view so the gradient has to find its way back through it.
    return mul(reshape(x[0], {5, -1}), reshape(x[0], {5, 21}));
  }));
  cases.push_back(normal_case("concat", "dim0_2x3_1x3_4x3", {{2, 3}, {1, 3}, {4, 3}},
                              [](const Inputs& x) { return concat(x, 0); }));
  cases.push_back(normal_case("concat", "dim1_3x2x5_3x7x5", {{3, 2, 5}, {3, 7, 5}},
                              [](const Inputs& x) { return concat(x, 1); }));
  cases.push_back({"concat", "dim-1_one_input_constant",
                   [](DType dt, std::mt19937_64& rng) {
                     return Inputs{leaf(Tensor::randn({3, 5, 2}, rng, dt)),
                                   Tensor::randn({3, 5, 3}, rng, dt)};
                   },
                   [](const Inputs& x) { return concat(x, -1); }});
  cases.push_back(normal_case("narrow", "dim0_rows_1_to_3_of_5x4", {{5, 4}},
                              [](const Inputs& x) { return narrow(x[0], 0, 1, 3); }));
  cases.push_back(normal_case("narrow", "dim1_2_of_3x6x5", {{3, 6, 5}},
                              [](const Inputs& x) { return narrow(x[0], 1, 4, 2); }));
  cases.push_back(normal_case("narrow", "dim-1_last_entry_2x3x4", {{2, 3, 4}},
                              [](const Inputs& x) { return narrow(x[0], -1, 3, 1); }));
}

void add_loss_cases(std::vector<GradcheckCase>& cases) {
  auto logits_and_targets = [](Shape shape, bool hard) {
    return [shape, hard](DType dt, std::mt19937_64& rng) {
      Tensor x = Tensor::randn(shape, rng, DType::f64);
      std::vector<double> y = Tensor::uniform(shape, 0.0, 1.0, rng, DType::f64).to_vector();
      if (hard)
        for (double& v : y) v = v < 0.5 ? 0.0 : 1.0;
      return Inputs{leaf(mul_scalar(x, 4.0).to(dt)), Tensor::from_vector(y, shape, dt)};
    };
  };
  auto bce = [](const Inputs& x) { return bce_with_logits(x[0], x[1]); };
  auto mlsm = [](const Inputs& x) { return multilabel_soft_margin(x[0], x[1]); };
  cases.push_back({"bce_with_logits", "3x5x7_soft_targets", logits_and_targets({3, 5, 7}, false),
                   bce});
  cases.push_back({"bce_with_logits", "3x20_hard_targets", logits_and_targets({3, 20}, true),
                   bce});
  cases.push_back({"multilabel_soft_margin", "3x20", logits_and_targets({3, 20}, true), mlsm});
  cases.push_back({"multilabel_soft_margin", "1x7_soft", logits_and_targets({1, 7}, false), mlsm});
}

}  // namespace

void add_elementwise_cases(std::vector<GradcheckCase>& cases) {
  add_binary_cases(cases);
  add_unary_cases(cases);
  add_reduce_cases(cases);
  add_shape_cases(cases);
  add_loss_cases(cases);
}

}  // namespace prm
