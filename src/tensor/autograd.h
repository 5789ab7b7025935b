// The autograd engine (micrograd-sized): every differentiable op's forward, when any input
// requires grad and grad mode is on, attaches a Node to its output. A Node holds the op's inputs
// (the graph edges) and a backward function that maps the gradient of the output to one gradient
// per input (an undefined Tensor where that input needs none). Tensor::backward sorts the graph
// topologically and runs the nodes in reverse order, summing gradients that meet at a tensor.
//
// Rule: gradients reaching a leaf are ADDED to leaf.grad (accumulation across backward calls);
// every backward function WRITES fresh gradient tensors for its inputs, never aliasing them.
// Backward functions run with grad mode off, so they may call differentiable ops freely.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace prm {

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string name;            // op name, for error messages
  std::vector<Tensor> inputs;  // edges, in the order backward() returns their gradients
  BackwardFn backward;         // released (with inputs) after use unless retain_graph
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

// True when grad mode is on and any of the tensors requires grad.
bool needs_grad(const std::vector<Tensor>& inputs);

// Called by an op after computing `output`: records the node when needs_grad(inputs).
void attach_grad_fn(Tensor& output, const char* name, std::vector<Tensor> inputs,
                    BackwardFn backward);

// The engine behind Tensor::backward.
void run_backward(const Tensor& root, const Tensor& grad_root, bool retain_graph);

}  // namespace prm
