#include "prm/weights.h"

namespace prm {

LoadReport load_weights(Module& module, const std::string& path, const LoadOptions& options) {
  return module.load_state_dict(load_safetensors(path).tensors, options, path);
}

void save_weights(const Module& module, const std::string& path, const Metadata& metadata) {
  save_safetensors(path, module.state_dict(), metadata);
}

LoadReport load_resnet_weights(ResNet& net, const std::string& path, bool fresh_classifier,
                               bool strict) {
  return load_weights(net, path, resnet_load_options(fresh_classifier, strict));
}

}  // namespace prm
