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

namespace {

int64_t leading_dim(const TensorMap& tensors, const std::string& name, const std::string& path) {
  auto it = tensors.find(name);
  PRM_CHECK(it != tensors.end(), path, ": no tensor '", name, "' (needed to size the network)");
  PRM_CHECK(it->second.dim() == 4, path, ": tensor '", name, "' has shape ",
            it->second.shape_str(), ", expected 4 dims");
  return it->second.size(0);
}

}  // namespace

std::unique_ptr<ResNet> load_classifier(const std::string& arch, const std::string& path,
                                        DType dtype, Device device) {
  SafetensorsContents weights = load_safetensors(path);
  ResNetOptions options;
  options.arch = arch;
  options.width = leading_dim(weights.tensors, "conv1.weight", path);
  options.num_classes = leading_dim(weights.tensors, "classifier.weight", path);
  auto net = std::make_unique<ResNet>(options);
  net->load_state_dict(weights.tensors, resnet_load_options(/*fresh_classifier=*/false), path);
  net->to(dtype);
  net->to(device);
  net->eval();
  return net;
}

}  // namespace prm
