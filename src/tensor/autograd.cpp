#include "tensor/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "kernels/basic.h"
#include "kernels/elementwise.h"

namespace prm {

namespace {
thread_local bool g_grad_mode = true;
thread_local int64_t g_cotangent_batch = 0;

// out += inp, outside autograd; both same shape, dtype and device.
void accumulate_into(const Tensor& out, const Tensor& inp) {
  const int64_t n = out.numel();
  PRM_DISPATCH_FLOAT(out.dtype(), "accumulate", {
    launch<Axpy, scalar_t>(out.device(), out.data<scalar_t>(), scalar_t(1), inp.data<scalar_t>(),
                           n);
  });
}

// True when this handle is the tensor's only one and no other tensor shares its storage: then
// nothing else can see a write into it.
bool unshared(const Tensor& t) {
  return t.impl_ptr().use_count() == 1 && t.impl().storage.use_count() == 1 && !t.impl().grad_fn;
}

// The sum of two gradients meeting at one tensor: written over one of them when nothing else
// holds it (a gradient a backward has just made), else into fresh storage (either may be shared:
// a backward may return its grad_output, or the caller's seed). The same sum either way.
Tensor sum_of(Tensor a, Tensor b) {
  const bool into_a = unshared(a), into_b = !into_a && unshared(b);
  Tensor out = into_a ? a : into_b ? b : Tensor::empty(a.shape(), a.dtype(), a.device());
  Strides flat;  // one pass: out = a + b (same shape, contiguous)
  flat.ndim = 1;
  flat.size[0] = a.numel();
  flat.stride[0] = 1;
  PRM_DISPATCH_FLOAT(a.dtype(), "accumulate", {
    launch<Binary, scalar_t>(a.device(), BinaryOp::add, out.data<scalar_t>(), a.data<scalar_t>(),
                             flat, b.data<scalar_t>(), flat, a.numel());
  });
  return out;
}

void check_grad_matches(const char* what, const std::string& name, const Tensor& grad,
                        const Shape& shape, DType dtype, Device device) {
  PRM_CHECK(grad.shape() == shape, "backward of ", name, ": ", what, " gradient has shape ",
            grad.shape_str(), ", expected ", shape_str(shape));
  PRM_CHECK(grad.dtype() == dtype && grad.device() == device, "backward of ", name, ": ", what,
            " gradient is ", grad.describe(), ", expected ", dtype_name(dtype), " ",
            device_name(device));
}

// Post-order DFS over the graph; iterative so deep networks cannot overflow the stack. Holds
// every node by shared_ptr, so releasing a node's inputs mid-backward frees saved tensors but
// never a node still to be visited.
std::vector<std::shared_ptr<Node>> topological_order(const std::shared_ptr<Node>& root) {
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> visited{root.get()};
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      std::shared_ptr<Node> child = node->inputs[next++].impl().grad_fn;
      if (child && visited.insert(child.get()).second) stack.push_back({child, 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  return order;  // children before parents
}

// The first gradient of a leaf is copied into .grad: later backward calls add into .grad, and
// `grad` may be shared (a backward may return its grad_output, or one tensor for two inputs).
// Taking it instead when nothing else holds it (as torch's AccumulateGrad does) was 1 % faster on
// a ResNet-50 training step but raised its peak resident memory from 681 to 798 MB: the kept
// weight gradients, allocated amid the activation gradients of the backward, split the heap's
// free space. The copy runs on all threads (device_copy), which recovered most of that time.
void accumulate_leaf(const Tensor& leaf, const Tensor& grad) {
  TensorImpl& impl = leaf.impl();
  if (impl.grad) {
    accumulate_into(Tensor(impl.grad), grad);
    return;
  }
  impl.grad = grad.detach().clone().impl_ptr();
}

}  // namespace

bool grad_mode_enabled() { return g_grad_mode; }

BatchedCotangents::BatchedCotangents(int64_t k) : previous_(g_cotangent_batch) {
  PRM_CHECK(k >= 1, "BatchedCotangents: K must be at least 1, got ", k);
  g_cotangent_batch = k;
}
BatchedCotangents::~BatchedCotangents() { g_cotangent_batch = previous_; }

int64_t cotangent_batch() { return g_cotangent_batch; }

Shape grad_shape(const Shape& shape) {
  if (g_cotangent_batch == 0 || shape.empty() || shape[0] != 1) return shape;
  Shape batched = shape;
  batched[0] = g_cotangent_batch;
  return batched;
}

NoGradGuard::NoGradGuard() : previous_(g_grad_mode) { g_grad_mode = false; }
NoGradGuard::~NoGradGuard() { g_grad_mode = previous_; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_mode) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void attach_grad_fn(Tensor& output, const char* name, const char* backward_name,
                    std::vector<Tensor> inputs, BackwardFn backward, std::any saved) {
  if (!needs_grad(inputs)) return;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->backward_name = backward_name;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  node->saved = std::move(saved);
  node->output_shape = output.shape();
  node->output_dtype = output.dtype();
  node->output_device = output.device();
  output.impl().grad_fn = std::move(node);
  output.impl().requires_grad = true;
}

void run_backward(const Tensor& root, const Tensor& grad_root, bool retain_graph,
                  const BackwardObserver& observer, const LeafReadyFn& on_leaf_ready,
                  const BackwardOverrides& overrides) {
  PRM_CHECK(root.requires_grad(), "backward: tensor ", root.describe(),
            " does not require grad and has no grad_fn");
  Tensor seed = grad_root;
  if (!seed.defined()) {
    PRM_CHECK(root.numel() == 1, "backward: a gradient must be given for a non-scalar output ",
              root.describe());
    seed = Tensor::full(root.shape(), 1.0, root.dtype(), root.device());
  }
  check_grad_matches("seed", "backward()", seed, grad_shape(root.shape()), root.dtype(),
                     root.device());

  NoGradGuard no_grad;
  if (root.is_leaf()) {
    accumulate_leaf(root, seed);
    if (on_leaf_ready) on_leaf_ready(root);
    return;
  }
  std::vector<std::shared_ptr<Node>> order = topological_order(root.grad_fn());
  // For on_leaf_ready: how many graph edges still lead into each leaf. A leaf is done when the
  // last node that feeds it has run (or was skipped because no gradient reached it).
  std::unordered_map<TensorImpl*, int> leaf_edges;
  if (on_leaf_ready)
    for (const auto& n : order)
      for (const Tensor& input : n->inputs)
        if (input.requires_grad() && input.is_leaf()) ++leaf_edges[&input.impl()];
  auto leaf_edges_done = [&](const Node& n) {
    if (!on_leaf_ready) return;
    for (const Tensor& input : n.inputs) {
      if (!input.requires_grad() || !input.is_leaf()) continue;
      if (--leaf_edges[&input.impl()] == 0) on_leaf_ready(input);
    }
  };
  std::unordered_map<Node*, Tensor> pending{{root.grad_fn().get(), seed}};
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = it->get();
    auto found = pending.find(node);
    if (found == pending.end()) {  // no gradient reached this node
      leaf_edges_done(*node);
      continue;
    }
    Tensor grad_output = std::move(found->second);
    pending.erase(found);
    PRM_CHECK(!node->released, "backward: the graph through op '", node->name,
              "' was already freed; pass retain_graph=true to the first backward");
    check_grad_matches("output", node->name, grad_output, grad_shape(node->output_shape),
                       node->output_dtype, node->output_device);
    if (observer) observer(*node, grad_output);
    const auto rule = overrides.find(node->name);
    std::vector<Tensor> grads;
    if (rule == overrides.end()) {
      grads = node->backward(grad_output);
    } else {
      PRM_CHECK(node->saved.has_value(), "backward: op '", node->name,
                "' keeps no saved state, so its backward cannot be overridden");
      grads = rule->second(node->saved, grad_output);
    }
    PRM_CHECK(grads.size() == node->inputs.size(), "backward of ", node->name, " returned ",
              grads.size(), " gradients for ", node->inputs.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const Tensor& input = node->inputs[i];
      if (!grads[i].defined() || !input.requires_grad()) continue;
      check_grad_matches("input", node->name, grads[i], grad_shape(input.shape()), input.dtype(),
                         input.device());
      if (Node* next = input.grad_fn().get()) {
        auto slot = pending.find(next);
        if (slot == pending.end()) {
          pending.emplace(next, std::move(grads[i]));
        } else {
          slot->second = sum_of(std::move(slot->second), std::move(grads[i]));
        }
      } else {
        accumulate_leaf(input, grads[i]);
      }
    }
    leaf_edges_done(*node);
    if (!retain_graph) {
      node->backward = nullptr;
      node->saved.reset();
      node->inputs.clear();
      node->released = true;
    }
  }
}

}  // namespace prm
