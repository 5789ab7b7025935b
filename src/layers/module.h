// Module: a layer with named parameters (trainable leaves) and buffers (state such as batch-norm
// running statistics), named child modules, and a train/eval mode, as torch.nn.Module.
// Names are dotted paths through the children ("layer1.0.conv1.weight"), so a state dict uses
// exactly torchvision's names.
//
// A derived layer keeps its tensors as members and registers them by address:
//   Conv2d() { register_parameter("weight", &weight); ... }
// The registry holds pointers to those members, so `to(device)` and `load_state_dict` update the
// members themselves. Modules are therefore neither copyable nor movable; hold them by
// shared_ptr. Create an optimizer AFTER moving a module to its device and dtype (the optimizer
// holds the parameter tensors).
//
// Modules do no file I/O: state_dict() and load_state_dict() work on a plain TensorMap, and the
// weights files (.safetensors) are read and written a level up (prm/weights.h), so that layers/
// does not depend on data/.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"
#include "tensor/tensor_map.h"

namespace prm {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct LoadOptions {
  // Throw prm::Error (listing every problem) when a name is missing, unexpected, or of the wrong
  // shape. When false, what matches is loaded and the rest is only reported.
  bool strict = true;
  // Names starting with one of these are neither loaded nor reported, in the file or in the
  // module (e.g. {"fc."} for torchvision's ImageNet head; add "classifier." to keep a fresh
  // classifier when loading a backbone).
  std::vector<std::string> skip_prefixes;
  // Module names ending with one of these may be absent from the file without being "missing"
  // (torchvision files made before BN counted batches have no num_batches_tracked).
  std::vector<std::string> optional_suffixes = {"num_batches_tracked"};
};

struct LoadReport {
  std::vector<std::string> loaded;          // copied into the module
  std::vector<std::string> missing;         // in the module, not in the source
  std::vector<std::string> unexpected;      // in the source, not in the module
  std::vector<std::string> shape_mismatch;  // "name: source [a, b] vs module [c, d]"
  std::vector<std::string> skipped;         // matched a skip prefix (source or module)
  bool ok() const { return missing.empty() && unexpected.empty() && shape_mismatch.empty(); }
  std::string summary() const;  // one line per problem, or "all N tensors loaded"
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The layer's computation; modules without one (containers of several inputs) throw.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const {
    return children_;
  }

  // Mode for this module and all its children (batch norm: batch statistics vs running ones).
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves every parameter and buffer (parameters stay leaves requiring grad); to(DType) converts
  // floating-point tensors only (integer buffers keep their type).
  void to(Device device);
  void to(DType dtype);
  void zero_grad();

  // Parameters and buffers by dotted name (shared handles, not copies, as torch's).
  TensorMap state_dict() const;
  // Copies tensors by name into this module's parameters and buffers (converting dtype and
  // device as needed). `source` names the origin (a file path) in the report and errors.
  LoadReport load_state_dict(const TensorMap& tensors, const LoadOptions& options = {},
                             const std::string& source = "state dict");

 protected:
  // Register a member tensor (already initialised) under `name`.
  void register_parameter(const std::string& name, Tensor* slot);
  void register_buffer(const std::string& name, Tensor* slot);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }
  // Called on every module after load_state_dict has copied tensors in (e.g. to refresh host
  // copies of a buffer).
  virtual void after_load() {}

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void notify_loaded();
  void collect(const std::string& prefix, bool buffers,
               std::vector<std::pair<std::string, Tensor*>>& out) const;

  std::vector<std::pair<std::string, Tensor*>> params_;
  std::vector<std::pair<std::string, Tensor*>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace prm
