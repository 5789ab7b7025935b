#include "tensor/gradcheck/gradcheck.h"

#include <algorithm>
#include <cmath>

#include "tensor/autograd.h"

namespace prm {

namespace {

std::vector<double> random_projection(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<double> r(n);
  for (double& x : r) x = dist(rng);
  return r;
}

double projected_loss(const TensorFn& f, const std::vector<Tensor>& inputs,
                      const std::vector<double>& r) {
  NoGradGuard no_grad;
  std::vector<double> y = f(inputs).to_vector();
  double loss = 0.0;
  for (size_t i = 0; i < y.size(); ++i) loss += y[i] * r[i];
  return loss;
}

void set_element(const Tensor& t, int64_t index, double value) {
  if (!t.is_cuda()) {
    t.data<double>()[index] = value;
    return;
  }
  std::vector<double> host = t.to_vector();
  host[index] = value;
  Tensor(t).copy_(Tensor::from_vector(host, t.shape(), DType::f64, Device::cpu));
}

}  // namespace

GradcheckResult gradcheck(const TensorFn& f, const std::vector<Tensor>& inputs, double eps,
                          double tol, uint64_t seed) {
  for (const Tensor& x : inputs)
    PRM_CHECK(!x.requires_grad() || x.dtype() == DType::f64,
              "gradcheck: inputs to check must be float64, got ", x.describe());
  for (const Tensor& x : inputs)
    if (x.requires_grad()) Tensor(x).zero_grad();

  Tensor y = f(inputs);
  const std::vector<double> r = random_projection(y.numel(), seed);
  y.backward(Tensor::from_vector(r, y.shape(), y.dtype(), y.device()));

  GradcheckResult result;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    PRM_CHECK(x.grad().defined(), "gradcheck: input ", k, " received no gradient");
    const std::vector<double> analytic = x.grad().to_vector();
    const std::vector<double> values = x.to_vector();
    for (int64_t j = 0; j < x.numel(); ++j) {
      set_element(x, j, values[j] + eps);
      const double plus = projected_loss(f, inputs, r);
      set_element(x, j, values[j] - eps);
      const double minus = projected_loss(f, inputs, r);
      set_element(x, j, values[j]);
      const double numeric = (plus - minus) / (2 * eps);
      const double a = analytic[j];
      const double err = std::abs(a - numeric) / std::max({std::abs(a), std::abs(numeric), 1.0});
      ++result.checked;
      if (err > result.max_error || std::isnan(err)) {
        result.max_error = std::isnan(err) ? INFINITY : err;
        result.worst = str_cat("input ", k, " element ", j, ": analytic ", a, " numeric ", numeric);
      }
    }
  }
  result.ok = result.max_error <= tol;
  return result;
}

std::vector<Tensor> inputs_on(const std::vector<Tensor>& inputs, Device device) {
  std::vector<Tensor> out;
  for (const Tensor& x : inputs) {
    Tensor moved = x.to(device).detach();
    if (x.requires_grad()) moved.set_requires_grad(true);
    out.push_back(moved);
  }
  return out;
}

ParityResult cuda_parity(const TensorFn& f, const std::vector<Tensor>& cpu_inputs, double tol,
                         uint64_t seed) {
  std::vector<Tensor> on_cpu = inputs_on(cpu_inputs, Device::cpu);
  std::vector<Tensor> on_cuda = inputs_on(cpu_inputs, Device::cuda);
  Tensor y_cpu = f(on_cpu);
  Tensor y_cuda = f(on_cuda);
  ParityResult result;
  auto compare = [&](const std::string& what, const Tensor& expected, const Tensor& actual) {
    PRM_CHECK(expected.shape() == actual.shape(), "parity: ", what, " shape ", actual.shape_str(),
              " on cuda vs ", expected.shape_str(), " on cpu");
    const std::vector<double> e = expected.to_vector();
    const std::vector<double> a = actual.to_vector();
    double scale = 1.0;
    for (double v : e) scale = std::max(scale, std::abs(v));
    for (size_t i = 0; i < e.size(); ++i) {
      const double err = std::abs(a[i] - e[i]) / scale;
      if (err > result.max_error || std::isnan(err)) {
        result.max_error = std::isnan(err) ? INFINITY : err;
        result.worst = str_cat(what, " element ", i, ": cuda ", a[i], " cpu ", e[i]);
      }
    }
  };
  compare("output", y_cpu, y_cuda);
  if (y_cpu.requires_grad()) {
    const std::vector<double> r = random_projection(y_cpu.numel(), seed);
    y_cpu.backward(Tensor::from_vector(r, y_cpu.shape(), y_cpu.dtype(), Device::cpu));
    y_cuda.backward(Tensor::from_vector(r, y_cuda.shape(), y_cuda.dtype(), Device::cuda));
    for (size_t k = 0; k < on_cpu.size(); ++k)
      if (on_cpu[k].requires_grad())
        compare(str_cat("grad of input ", k), on_cpu[k].grad(), on_cuda[k].grad());
  }
  result.ok = result.max_error <= tol;
  return result;
}

const std::vector<GradcheckCase>& gradcheck_cases() {
  static const std::vector<GradcheckCase> cases = [] {
    std::vector<GradcheckCase> all;
    add_core_cases(all);
    add_elementwise_cases(all);
    add_conv_cases(all);
    add_nn_cases(all);
    add_prm_cases(all);
    return all;
  }();
  return cases;
}

const std::vector<std::string>& required_gradcheck_ops() {
  static const std::vector<std::string> ops = {
      "to_dtype", "clone", "reshape", "concat", "narrow",
      "add", "sub", "mul", "div", "add_scalar", "mul_scalar", "pow_scalar", "sum", "mean", "relu",
      "bce_with_logits", "multilabel_soft_margin",
      "matmul", "conv2d",
      "batch_norm", "batch_norm_act", "max_pool2d", "adaptive_avg_pool2d", "upsample_bilinear",
      "peak_stimulation"};
  return ops;
}

}  // namespace prm
