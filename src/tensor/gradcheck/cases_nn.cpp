// Gradient-check cases for the nn ops: batch norm, pooling, bilinear upsampling. Sizes are
// awkward on purpose (odd H and W, C not a multiple of 32, batch 3) and small (gradcheck is
// O(numel^2)).
#include <algorithm>
#include <memory>
#include <numeric>

#include "tensor/gradcheck/gradcheck.h"
#include "tensor/ops.h"

namespace prm {

namespace {

using Inputs = std::vector<Tensor>;

Tensor leaf(Tensor t) { return t.set_requires_grad(true); }

// A random permutation of distinct values 0.05 apart: no max-pool window has a tie, and no
// finite-difference step (eps << 0.05) changes which element wins.
Tensor distinct_values(const Shape& shape, DType dt, std::mt19937_64& rng) {
  std::vector<double> v(shape_numel(shape));
  std::iota(v.begin(), v.end(), 0.0);
  std::shuffle(v.begin(), v.end(), rng);
  for (double& x : v) x = 0.05 * x - 1.0;
  return Tensor::from_vector(v, shape, dt);
}

// x, weight, bias, running_mean, running_var; only x (and the affine pair) are checked.
Inputs batch_norm_inputs(const Shape& shape, bool affine, DType dt, std::mt19937_64& rng) {
  const int64_t C = shape[1];
  Inputs in{leaf(Tensor::randn(shape, rng, dt))};
  in.push_back(affine ? leaf(Tensor::uniform({C}, 0.5, 1.5, rng, dt)) : Tensor());
  in.push_back(affine ? leaf(Tensor::randn({C}, rng, dt)) : Tensor());
  in.push_back(Tensor::randn({C}, rng, dt));
  in.push_back(Tensor::uniform({C}, 0.5, 2.0, rng, dt));
  return in;
}

// inputs_on and the registry want defined tensors; an undefined weight travels as a [0] tensor.
Tensor or_undefined(const Tensor& t) { return t.defined() && t.numel() > 0 ? t : Tensor(); }

// Synchronised batch norm through a group of one rank that holds the whole batch: the pooled
// statistics and the group's sums (tensor/ops/batch_norm.h) must reduce to batch norm's own, and
// the gradient through that path must check. (Two and three ranks: tests/test_dist.cpp.)
struct WholeBatchGroup : BatchNormGroup {
  explicit WholeBatchGroup(int64_t n) : n(n) {}
  void sum(Tensor&) override {}
  int64_t local_samples() const override { return n; }
  int64_t group_samples() const override { return n; }
  int64_t n;
};

void add_batch_norm_cases(std::vector<GradcheckCase>& cases) {
  {
    const Shape shape{3, 4, 3, 5};
    auto group = std::make_shared<WholeBatchGroup>(shape[0]);
    cases.push_back({"batch_norm", "sync_one_rank_3x4x3x5",
                     [shape](DType dt, std::mt19937_64& rng) {
                       return batch_norm_inputs(shape, true, dt, rng);
                     },
                     [group](const Inputs& x) {
                       return batch_norm(x[0], x[1], x[2], x[3], x[4], true, 0.1, 1e-5,
                                         group.get());
                     },
                     1e-6, 1e-5, 5e-5});
  }
  struct Variant {
    const char* name;
    Shape shape;
    bool affine, training;
  };
  const Variant variants[] = {
      {"train_affine_3x5x3x5", {3, 5, 3, 5}, true, true},
      {"train_plain_2x3x5x3", {2, 3, 5, 3}, false, true},
      {"train_affine_2d_6x7", {6, 7}, true, true},
      {"eval_affine_3x5x3x5", {3, 5, 3, 5}, true, false},
      {"eval_plain_2x3x3x3", {2, 3, 3, 3}, false, false},
  };
  for (const Variant& v : variants) {
    const Shape shape = v.shape;
    const bool affine = v.affine, training = v.training;
    cases.push_back({"batch_norm", v.name,
                     [shape, affine](DType dt, std::mt19937_64& rng) {
                       Inputs in = batch_norm_inputs(shape, affine, dt, rng);
                       if (!affine) in[1] = in[2] = Tensor::zeros({0}, dt);
                       return in;
                     },
                     [training](const Inputs& x) {
                       // Running buffers move in training but do not change the output.
                       return batch_norm(x[0], or_undefined(x[1]), or_undefined(x[2]), x[3], x[4],
                                         training, 0.1, 1e-5);
                     },
                     1e-6, 1e-5, 5e-5});
  }
}

// batch_norm_act: batch_norm's inputs then the residual. Where there is one, the residual is
// moved so that no ReLU input bn(x) + residual lies within 0.05 of the kink (bn(x) by
// batch_norm_forward in float64), far beyond what a finite-difference step can move it; the
// variant without a residual relies on its random bn(x) missing the kink by more than the step.
void add_batch_norm_act_cases(std::vector<GradcheckCase>& cases) {
  struct Variant {
    const char* name;
    Shape shape;
    bool residual, relu, training;
  };
  const Variant variants[] = {
      {"train_add_relu_3x5x3x5", {3, 5, 3, 5}, true, true, true},
      {"train_relu_2x3x5x3", {2, 3, 5, 3}, false, true, true},
      {"train_add_2x4x3x3", {2, 4, 3, 3}, true, false, true},
      {"eval_add_relu_3x5x3x5", {3, 5, 3, 5}, true, true, false},
  };
  for (const Variant& v : variants) {
    const Shape shape = v.shape;
    const bool residual = v.residual, relu = v.relu, training = v.training;
    cases.push_back(
        {"batch_norm_act", v.name,
         [shape, residual, training](DType dt, std::mt19937_64& rng) {
           Inputs in = batch_norm_inputs(shape, true, dt, rng);
           if (!residual) return in;
           const Tensor bn = batch_norm_forward(in[0].to(DType::f64), in[1].to(DType::f64),
                                                in[2].to(DType::f64), in[3].to(DType::f64),
                                                in[4].to(DType::f64), training, 0.1, 1e-5,
                                                nullptr);
           std::vector<double> b = bn.to_vector(), r = Tensor::randn(shape, rng).to_vector();
           for (size_t i = 0; i < r.size(); ++i) {
             const double z = b[i] + r[i];
             if (std::abs(z) < 0.05) r[i] += z >= 0 ? 0.1 : -0.1;
           }
           in.push_back(leaf(Tensor::from_vector(r, shape, dt)));
           return in;
         },
         [residual, relu, training](const Inputs& x) {
           return batch_norm_act(x[0], x[1], x[2], x[3], x[4], training,
                                 {residual ? x[5] : Tensor(), relu}, 0.1, 1e-5);
         },
         1e-6, 1e-5, 5e-5});
  }
}

void add_pooling_cases(std::vector<GradcheckCase>& cases) {
  struct MaxVariant {
    const char* name;
    Shape shape;
    int64_t kernel, stride, padding;
  };
  const MaxVariant max_variants[] = {
      {"k3_s2_p1_3x2x7x9", {3, 2, 7, 9}, 3, 2, 1},
      {"k2_s2_p0_2x3x6x5", {2, 3, 6, 5}, 2, 2, 0},
      {"k3_s1_p1_1x2x5x4", {1, 2, 5, 4}, 3, 1, 1},
  };
  for (const MaxVariant& v : max_variants) {
    const Shape shape = v.shape;
    const int64_t k = v.kernel, s = v.stride, p = v.padding;
    cases.push_back({"max_pool2d", v.name,
                     [shape](DType dt, std::mt19937_64& rng) {
                       return Inputs{leaf(distinct_values(shape, dt, rng))};
                     },
                     [k, s, p](const Inputs& x) { return max_pool2d(x[0], k, s, p); }});
  }

  struct AvgVariant {
    const char* name;
    Shape shape;
    int64_t out_h, out_w;  // 0: global_avg_pool2d
  };
  const AvgVariant avg_variants[] = {
      {"7x7_to_3x3", {2, 3, 7, 7}, 3, 3},
      {"5x7_to_2x3", {3, 2, 5, 7}, 2, 3},
      {"3x4_to_5x6_upsizing", {1, 2, 3, 4}, 5, 6},
      {"global_5x3", {2, 5, 5, 3}, 0, 0},
  };
  for (const AvgVariant& v : avg_variants) {
    const Shape shape = v.shape;
    const int64_t oh = v.out_h, ow = v.out_w;
    cases.push_back({"adaptive_avg_pool2d", v.name,
                     [shape](DType dt, std::mt19937_64& rng) {
                       return Inputs{leaf(Tensor::randn(shape, rng, dt))};
                     },
                     [oh, ow](const Inputs& x) {
                       return oh == 0 ? global_avg_pool2d(x[0]) : adaptive_avg_pool2d(x[0], oh, ow);
                     }});
  }
}

void add_upsample_cases(std::vector<GradcheckCase>& cases) {
  struct Variant {
    const char* name;
    Shape shape;
    int64_t out_h, out_w;  // 0: use scale
    double scale;
    bool align_corners;
  };
  const Variant variants[] = {
      {"size_3x5_to_7x8_align", {3, 2, 3, 5}, 7, 8, 0, true},
      {"size_3x5_to_7x8_noalign", {3, 2, 3, 5}, 7, 8, 0, false},
      {"size_5x4_to_3x3_down_noalign", {1, 3, 5, 4}, 3, 3, 0, false},
      {"scale8_align_2x3", {1, 2, 2, 3}, 0, 0, 8.0, true},
      {"scale2.5_noalign_3x3", {2, 1, 3, 3}, 0, 0, 2.5, false},
      {"scale1.7_align_3x5", {1, 2, 3, 5}, 0, 0, 1.7, true},
  };
  for (const Variant& v : variants) {
    const Shape shape = v.shape;
    const int64_t oh = v.out_h, ow = v.out_w;
    const double scale = v.scale;
    const bool align = v.align_corners;
    cases.push_back({"upsample_bilinear", v.name,
                     [shape](DType dt, std::mt19937_64& rng) {
                       return Inputs{leaf(Tensor::randn(shape, rng, dt))};
                     },
                     [oh, ow, scale, align](const Inputs& x) {
                       return oh == 0 ? upsample_bilinear_scale(x[0], scale, align)
                                      : upsample_bilinear(x[0], oh, ow, align);
                     }});
  }
}

}  // namespace

void add_nn_cases(std::vector<GradcheckCase>& cases) {
  add_batch_norm_cases(cases);
  add_batch_norm_act_cases(cases);
  add_pooling_cases(cases);
  add_upsample_cases(cases);
}

}  // namespace prm
