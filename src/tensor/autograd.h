// The autograd engine (micrograd-sized). Every differentiable op is three things, declared in its
// header: X_forward (the computation, no graph), X_backward (a named function from the output's
// gradient and what the forward saved to the inputs' gradients) and X itself, which runs
// X_forward and, when any input requires grad and grad mode is on, attaches a Node to the output
// whose backward closure only calls X_backward. Tensor::backward sorts the graph topologically
// and runs the nodes in reverse order, summing gradients that meet at a tensor.
//
// The rules, written once here:
// - What a node keeps. `inputs` are the graph edges (the op's inputs, in the order backward
//   returns their gradients). The backward closure keeps what X_backward reads, and nothing else:
//   sizes and flags by value, and tensors (inputs, outputs, saved statistics such as a batch
//   mean or a max-pool argmax) DETACHED, as plain values with no graph. A saved output with its
//   graph would own the node that owns it (a reference cycle); a saved input with its graph would
//   keep the whole forward graph alive after this node was released.
// - Who clones. Nobody but the engine. Gradients are immutable values: an X_backward may return
//   its grad_output itself or a view of it (add does, for both inputs) and never writes into it.
//   The engine writes only into storage nothing else can see: the first gradient stored into a
//   leaf's .grad is a copy (later backward calls ADD into .grad); the sum of two gradients that
//   meet at one tensor goes over one of them when the engine holds its only handle and no other
//   tensor shares its storage, into new storage otherwise (either may be shared: a returned
//   grad_output, the caller's seed).
// - X_backward runs with grad mode off (under the engine), so it may call differentiable ops
//   freely; activation gradients are WRITTEN, leaf gradients ACCUMULATE across backward calls.
#pragma once
#include <any>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace prm {

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string name;            // op name, for error messages and `prm graph`
  std::string backward_name;   // the named backward function(s) the closure calls
  std::vector<Tensor> inputs;  // edges, in the order backward() returns their gradients
  BackwardFn backward;         // released (with inputs) after use unless retain_graph
  std::any saved;              // what backward reads, for a BackwardOverride (ops that allow
                               // one set it; e.g. Conv2dSaved); released with backward
  Shape output_shape;          // the gradient fed in must have this shape
  DType output_dtype = DType::f32;
  Device output_device = Device::cpu;
  bool released = false;
};

bool grad_mode_enabled();

// RAII: no graph is recorded inside the scope (inference, optimizers, backward itself).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Batched cotangents, the switch behind batched peak back-propagation (docs/peak_backprop.md):
// inside the scope, the gradients flowing backward carry K cotangents as their leading dimension
// wherever the forward had batch 1 (a [1, C, H, W] activation gets [K, C, H, W] gradients). The
// forward ran once; each X_backward reads its saved batch-1 tensors and broadcasts them over the
// K cotangents, so one backward pass propagates K seeds. Only activation gradients are batched:
// parameters must not require grad inside the scope.
class BatchedCotangents {
 public:
  explicit BatchedCotangents(int64_t k);
  ~BatchedCotangents();
  BatchedCotangents(const BatchedCotangents&) = delete;
  BatchedCotangents& operator=(const BatchedCotangents&) = delete;

 private:
  int64_t previous_;
};

// K inside a BatchedCotangents scope, 0 outside.
int64_t cotangent_batch();

// The shape of the gradient of a tensor of `shape`: {K, shape[1:]} inside a BatchedCotangents
// scope when shape[0] == 1, else `shape` itself. Every X_backward sizes its results with it.
Shape grad_shape(const Shape& shape);

// True when grad mode is on and any of the tensors requires grad.
bool needs_grad(const std::vector<Tensor>& inputs);

// Called by an op after computing `output`: records the node when needs_grad(inputs).
// `backward_name` names the X_backward function(s) the closure calls (for `prm graph`).
// `saved` (optional) exposes what the closure keeps to a BackwardOverride of this op.
void attach_grad_fn(Tensor& output, const char* name, const char* backward_name,
                    std::vector<Tensor> inputs, BackwardFn backward, std::any saved = {});

// Sees every node as backward runs it, with the gradient that flowed into its output, before the
// node is released (for `prm graph` and other study tools).
using BackwardObserver = std::function<void(const Node& node, const Tensor& grad_output)>;

// Called once per leaf that requires grad and is reached by the graph, as soon as every node that
// feeds it has run: its .grad holds this backward's final contribution (data-parallel training
// starts reducing a bucket of gradients while the rest of the backward runs).
using LeafReadyFn = std::function<void(const Tensor& leaf)>;

// A backward rule put in place of an op's own for one backward pass, chosen by the caller of
// that pass (peak back-propagation's excitation rule for conv2d, prm/peak_backprop.h): called
// with the node's `saved` and its output's gradient, it returns the inputs' gradients as the op's
// own backward would. Only ops that set Node::saved can be overridden (an error otherwise).
using OverrideFn =
    std::function<std::vector<Tensor>(const std::any& saved, const Tensor& grad_output)>;
using BackwardOverrides = std::map<std::string, OverrideFn>;  // op name -> rule

// The engine behind Tensor::backward.
void run_backward(const Tensor& root, const Tensor& grad_root, bool retain_graph,
                  const BackwardObserver& observer = nullptr,
                  const LeafReadyFn& on_leaf_ready = nullptr,
                  const BackwardOverrides& overrides = {});

}  // namespace prm
