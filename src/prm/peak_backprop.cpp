#include "prm/peak_backprop.h"

#include "tensor/autograd.h"
#include "tensor/ops.h"

namespace prm {

namespace {

// One-hot seeds [K, C, H, W] (K = 1 for a single peak k) for the chosen peaks.
Tensor one_hot_seeds(const PeakResponse& r, int64_t first, int64_t count, const Tensor& crm) {
  const int64_t C = crm.size(1), H = crm.size(2), W = crm.size(3);
  std::vector<double> seeds(static_cast<size_t>(count * C * H * W), 0.0);
  for (int64_t k = 0; k < count; ++k) {
    const Peak& p = r.peaks[first + k];
    seeds[((k * C + p.c) * H + p.y) * W + p.x] = 1.0;
  }
  return Tensor::from_vector(seeds, {count, C, H, W}, crm.dtype(), crm.device());
}

}  // namespace

BackwardOverrides excitation_backprop_overrides() {
  OverrideFn conv = [](const std::any& saved, const Tensor& g) {
    const Conv2dSaved& s = std::any_cast<const Conv2dSaved&>(saved);
    std::vector<Tensor> grads{
        s.need_x ? conv2d_backward_input_excitation(g, s.x, s.weight, s.opt) : Tensor(),
        s.need_w ? conv2d_backward_weight(g, s.x, s.weight.shape(), s.opt) : Tensor()};
    if (s.has_bias) grads.push_back(s.need_b ? conv2d_backward_bias(g) : Tensor());
    return grads;
  };
  return {{"conv2d", conv}};
}

// PRM = max(sum over channels of g, 0) / its sum, per map; g [K, 3, H, W] -> [K, H, W].
Tensor prms_from_gradients(const Tensor& g) {
  const int64_t K = g.size(0), H = g.size(2), W = g.size(3);
  Tensor summed = relu_forward(sum(g, {1}));
  std::vector<double> v = summed.to_vector();  // one copy per image, not per peak
  for (int64_t k = 0; k < K; ++k) {
    double total = 0;
    for (int64_t i = 0; i < H * W; ++i) total += v[k * H * W + i];
    if (total > 0)
      for (int64_t i = 0; i < H * W; ++i) v[k * H * W + i] /= total;
  }
  return Tensor::from_vector(v, {K, H, W}, g.dtype(), g.device());
}

FrozenParameters::FrozenParameters(Module& net) : params_(net.parameters()) {
  for (Tensor& p : params_) {
    flags_.push_back(p.requires_grad());
    p.set_requires_grad(false);
  }
}

FrozenParameters::~FrozenParameters() {
  for (size_t i = 0; i < params_.size(); ++i) params_[i].set_requires_grad(flags_[i]);
}

PeakGraph peak_forward(Module& net, const Tensor& image, const PeakBackpropOptions& opts) {
  PRM_CHECK(image.dim() == 4 && image.size(0) == 1 && image.size(1) == 3,
            "peak_response_maps: image must be [1, 3, H, W], got ", image.shape_str());
  net.eval();
  PeakGraph g;
  g.input = image.detach().set_requires_grad(true);
  g.crm_graph = opts.head.upsampled(net.forward(g.input));
  PeakResponse& r = g.response;
  r.crm = g.crm_graph.detach();
  PrmHead::Stimulated found = opts.head.stimulate(r.crm);
  r.scores = found.scores;
  const std::vector<double> scores = r.scores.to_vector();
  for (const Peak& p : found.peaks) {
    if (scores[p.c] < opts.class_threshold || !(p.value > opts.peak_threshold)) continue;
    if (opts.max_peaks > 0 && r.count() == opts.max_peaks) break;
    r.peaks.push_back(p);
  }
  return g;
}

void back_propagate_peaks(PeakGraph& g, bool batched) {
  PeakResponse& r = g.response;
  const int64_t K = r.count();
  const Tensor& x = g.input;
  if (K == 0) {
    r.prms = Tensor::zeros({0, x.size(2), x.size(3)}, x.dtype(), x.device());
    return;
  }
  const BackwardOverrides excitation = excitation_backprop_overrides();
  if (batched) {
    BatchedCotangents cotangents(K);
    run_backward(g.crm_graph, one_hot_seeds(r, 0, K, g.crm_graph), /*retain_graph=*/false,
                 nullptr, nullptr, excitation);
    r.prms = prms_from_gradients(x.grad());
  } else {
    std::vector<Tensor> maps;
    for (int64_t k = 0; k < K; ++k) {
      x.impl().grad = nullptr;
      run_backward(g.crm_graph, one_hot_seeds(r, k, 1, g.crm_graph), /*retain_graph=*/k + 1 < K,
                   nullptr, nullptr, excitation);
      maps.push_back(prms_from_gradients(x.grad()));
    }
    r.prms = concat(maps, 0);
  }
  x.impl().grad = nullptr;
}

PeakResponse peak_response_maps(Module& net, const Tensor& image, const PeakBackpropOptions& opts) {
  FrozenParameters frozen(net);
  PeakGraph g = peak_forward(net, image, opts);
  back_propagate_peaks(g, opts.batched);
  return g.response;
}

}  // namespace prm
