#include "prm/peak_backprop.h"

#include <unordered_map>
#include <unordered_set>

#include "tensor/allocator.h"
#include "tensor/autograd.h"
#include "tensor/ops.h"

namespace prm {

namespace {

// One-hot seeds [K, C, H, W] (K = 1 for a single peak k) for the chosen peaks: zeros made where
// the CRMs are, then K single elements written (not a host vector of K * C * H * W values
// converted and uploaded: 32 MB of doubles at 448 x 448 with 16 peaks and 20 classes).
Tensor one_hot_seeds(const PeakResponse& r, int64_t first, int64_t count, const Tensor& crm) {
  const int64_t C = crm.size(1), H = crm.size(2), W = crm.size(3);
  PRM_CHECK(crm.dtype() == DType::f32 || crm.dtype() == DType::f64,
            "peak back-propagation: float32 or float64 CRMs only, got ", crm.describe());
  Tensor seeds = Tensor::zeros({count, C, H, W}, crm.dtype(), crm.device());
  const float one_f = 1.0f;
  const double one_d = 1.0;
  const void* one = crm.dtype() == DType::f32 ? static_cast<const void*>(&one_f) : &one_d;
  const size_t bytes = dtype_size(crm.dtype());
  char* base = static_cast<char*>(seeds.raw_data());
  for (int64_t k = 0; k < count; ++k) {
    const Peak& p = r.peaks[first + k];
    const int64_t at = ((k * C + p.c) * H + p.y) * W + p.x;
    device_copy(base + static_cast<size_t>(at) * bytes, seeds.device(), one, Device::cpu, bytes);
  }
  return seeds;
}

// conv2d's excitation rule on cotangent g, with an eval-mode batch norm's scale still to apply
// to g per output channel when `channel_scale` is defined.
std::vector<Tensor> conv2d_excitation(const Conv2dSaved& s, const Tensor& g,
                                      const Tensor& channel_scale) {
  Tensor scaled_g = g;  // the weight and bias gradients need g itself
  Tensor deferred = channel_scale;
  if (deferred.defined() && (s.need_w || s.need_b)) {
    scaled_g = mul(g, reshape(deferred, {1, deferred.numel(), 1, 1}));
    deferred = Tensor();
  }
  std::vector<Tensor> grads{
      s.need_x ? conv2d_backward_input_excitation(scaled_g, s.x, s.weight, s.opt, deferred)
               : Tensor(),
      s.need_w ? conv2d_backward_weight(scaled_g, s.x, s.weight.shape(), s.opt) : Tensor()};
  if (s.has_bias) grads.push_back(s.need_b ? conv2d_backward_bias(scaled_g) : Tensor());
  return grads;
}

// The conv2d nodes under `root` whose output has exactly one use in the graph.
std::unordered_set<const Node*> single_use_convs(const Tensor& root) {
  std::unordered_map<const Node*, int> uses;
  std::vector<const Node*> stack;
  std::unordered_set<const Node*> seen;
  if (root.grad_fn()) stack.push_back(root.grad_fn().get());
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    for (const Tensor& input : n->inputs) {
      const Node* from = input.defined() ? input.grad_fn().get() : nullptr;
      if (from == nullptr) continue;
      ++uses[from];
      stack.push_back(from);
    }
  }
  std::unordered_set<const Node*> single;
  for (const auto& [n, count] : uses)
    if (count == 1 && n->name == "conv2d") single.insert(n);
  return single;
}

}  // namespace

BackwardOverrides excitation_backprop_overrides() {
  OverrideFn conv = [](const std::any& saved, const Tensor& g) {
    return conv2d_excitation(std::any_cast<const Conv2dSaved&>(saved), g, Tensor());
  };
  return {{"conv2d", conv}};
}

BackwardOverrides excitation_backprop_overrides(const Tensor& root) {
  struct State {
    std::unordered_set<const Node*> fusable;             // single-use conv2d nodes
    std::unordered_map<const std::any*, Tensor> scales;  // conv2d node's saved -> deferred scale
  };
  auto state = std::make_shared<State>();
  state->fusable = single_use_convs(root);
  OverrideFn conv = [state](const std::any& saved, const Tensor& g) {
    Tensor scale;
    auto found = state->scales.find(&saved);
    if (found != state->scales.end()) {
      scale = std::move(found->second);
      state->scales.erase(found);
    }
    return conv2d_excitation(std::any_cast<const Conv2dSaved&>(saved), g, scale);
  };
  OverrideFn bn = [state](const std::any& saved, const Tensor& g) {
    const BatchNormNodeSaved& s = std::any_cast<const BatchNormNodeSaved&>(saved);
    // Only K batched cotangents through eval mode, whose dx is d ⊙ scale (batch_norm_backward):
    // the other cases keep their own backward.
    const bool defer = !s.saved.training && s.saved.group == nullptr && !s.param_grads &&
                       g.shape() != s.x.shape() && state->fusable.count(s.producer) != 0;
    if (!defer) return batch_norm_node_backward(s, g);
    const Tensor d = s.saved.relu_out.defined() ? relu_backward(g, s.saved.relu_out) : g;
    state->scales[&s.producer->saved] = batch_norm_eval_scale(s.weight, s.saved);
    BatchNormGrads grads;
    grads.dx = d;
    if (s.saved.residual) grads.dresidual = d;
    return batch_norm_node_grads(s, grads);
  };
  BackwardOverrides rules{{"conv2d", conv}};
  for (const char* name :
       {"batch_norm", "batch_norm_relu", "batch_norm_add", "batch_norm_add_relu"})
    rules[name] = bn;
  return rules;
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
  if (batched) {
    const BackwardOverrides excitation = excitation_backprop_overrides(g.crm_graph);
    BatchedCotangents cotangents(K);
    run_backward(g.crm_graph, one_hot_seeds(r, 0, K, g.crm_graph), /*retain_graph=*/false,
                 nullptr, nullptr, excitation);
    r.prms = prms_from_gradients(x.grad());
  } else {
    const BackwardOverrides excitation = excitation_backprop_overrides();
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
