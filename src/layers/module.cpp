#include "layers/module.h"

#include <algorithm>
#include <set>

#include "tensor/autograd.h"

namespace prm {

namespace {

bool starts_with_any(const std::string& s, const std::vector<std::string>& prefixes) {
  for (const std::string& p : prefixes)
    if (s.compare(0, p.size(), p) == 0) return true;
  return false;
}

bool ends_with_any(const std::string& s, const std::vector<std::string>& suffixes) {
  for (const std::string& x : suffixes)
    if (s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0) return true;
  return false;
}

void check_name(const std::string& name) {
  PRM_CHECK(!name.empty() && name.find('.') == std::string::npos, "Module: bad name '", name,
            "' (must be non-empty, without '.')");
}

}  // namespace

// One line, so that a command-line error stays one line: each kind of problem with its first
// few names and a count of the rest.
std::string LoadReport::summary() const {
  auto list = [](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return std::string();
    std::string out = str_cat("; ", what, ": ");
    const size_t shown = std::min<size_t>(names.size(), 4);
    for (size_t i = 0; i < shown; ++i) out += (i ? ", " : "") + names[i];
    if (names.size() > shown) out += str_cat(" and ", names.size() - shown, " more");
    return out;
  };
  if (ok()) return str_cat("all ", loaded.size(), " tensors loaded");
  return str_cat(loaded.size(), " tensors loaded", list("missing", missing),
                 list("unexpected", unexpected), list("shape mismatch", shape_mismatch));
}

Tensor Module::forward(const Tensor&) {
  throw Error("Module::forward: this module has no single-input forward");
}

void Module::register_parameter(const std::string& name, Tensor* slot) {
  check_name(name);
  PRM_CHECK(slot && slot->defined(), "Module: parameter '", name, "' is undefined");
  slot->set_requires_grad(true);
  params_.emplace_back(name, slot);
}

void Module::register_buffer(const std::string& name, Tensor* slot) {
  check_name(name);
  PRM_CHECK(slot && slot->defined(), "Module: buffer '", name, "' is undefined");
  buffers_.emplace_back(name, slot);
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_name(name);
  PRM_CHECK(module != nullptr, "Module: child '", name, "' is null");
  for (const auto& c : children_)
    PRM_CHECK(c.first != name, "Module: duplicate child '", name, "'");
  module->train(training_);
  children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix, bool buffers,
                     std::vector<std::pair<std::string, Tensor*>>& out) const {
  for (const auto& [name, slot] : buffers ? buffers_ : params_)
    out.emplace_back(prefix + name, slot);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", buffers, out);
}

NamedTensors Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", false, slots);
  NamedTensors out;
  for (const auto& [name, slot] : slots) out.emplace_back(name, *slot);
  return out;
}

NamedTensors Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, slots);
  NamedTensors out;
  for (const auto& [name, slot] : slots) out.emplace_back(name, *slot);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  for (auto& [name, slot] : params_) {
    if (slot->device() == device) continue;
    *slot = slot->detach().to(device);
    slot->set_requires_grad(true);
  }
  for (auto& [name, slot] : buffers_) *slot = slot->detach().to(device);
  for (auto& [name, child] : children_) child->to(device);
}

void Module::to(DType dtype) {
  PRM_CHECK(dtype != DType::i64, "Module::to: parameters must stay floating point");
  NoGradGuard no_grad;
  for (auto& [name, slot] : params_) {
    if (slot->dtype() == dtype) continue;
    *slot = slot->detach().to(dtype);
    slot->set_requires_grad(true);
  }
  for (auto& [name, slot] : buffers_)
    if (slot->dtype() != DType::i64) *slot = slot->detach().to(dtype);
  for (auto& [name, child] : children_) child->to(dtype);
}

void Module::notify_loaded() {
  after_load();
  for (auto& [name, child] : children_) child->notify_loaded();
}

void Module::zero_grad() {
  for (auto& [name, slot] : params_) slot->zero_grad();
  for (auto& [name, child] : children_) child->zero_grad();
}

TensorMap Module::state_dict() const {
  TensorMap out;
  for (auto& [name, t] : named_parameters()) out[name] = t;
  for (auto& [name, t] : named_buffers()) out[name] = t;
  return out;
}

LoadReport Module::load_state_dict(const TensorMap& tensors, const LoadOptions& options,
                                   const std::string& source) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", false, slots);
  collect("", true, slots);

  LoadReport report;
  std::set<std::string> known;
  std::vector<std::pair<Tensor*, const Tensor*>> to_copy;
  for (const auto& [name, slot] : slots) {
    known.insert(name);
    if (starts_with_any(name, options.skip_prefixes)) {
      report.skipped.push_back(name);
      continue;
    }
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      if (!ends_with_any(name, options.optional_suffixes)) report.missing.push_back(name);
      continue;
    }
    if (it->second.shape() != slot->shape()) {
      report.shape_mismatch.push_back(str_cat(name, ": ", source, " has ", it->second.shape_str(),
                                              ", the module ", slot->shape_str()));
      continue;
    }
    to_copy.emplace_back(slot, &it->second);
    report.loaded.push_back(name);
  }
  for (const auto& [name, t] : tensors) {
    if (known.count(name)) continue;
    if (starts_with_any(name, options.skip_prefixes))
      report.skipped.push_back(name);
    else
      report.unexpected.push_back(name);
  }
  PRM_CHECK(!options.strict || report.ok(), "load_state_dict: ", source, ": ", report.summary());

  {
    NoGradGuard no_grad;
    for (auto& [slot, src] : to_copy) slot->copy_(*src);
  }
  notify_loaded();
  return report;
}

}  // namespace prm
