// Weights files: a module's state dict (layers/module.h) read from and written to .safetensors
// (data/safetensors.h). This is the one place that composes the two, so that layers/ knows no
// file format and data/ knows no module. Errors name the file.
#pragma once
#include <memory>
#include <string>

#include "data/safetensors.h"
#include "layers/module.h"
#include "layers/resnet.h"

namespace prm {

// Reads a .safetensors file into a module by name (see LoadOptions).
LoadReport load_weights(Module& module, const std::string& path, const LoadOptions& options = {});
// Writes the module's state dict as .safetensors (atomically).
void save_weights(const Module& module, const std::string& path, const Metadata& metadata = {});

// load_weights with resnet_load_options (torchvision names, `fc.*` ignored, optionally a fresh
// classifier).
LoadReport load_resnet_weights(ResNet& net, const std::string& path, bool fresh_classifier,
                               bool strict = true);

// A trained classifier from its weights file: width and class count read from the weights
// (conv1.weight, classifier.weight), fc.* ignored, in eval mode, of `dtype` on `device`.
std::unique_ptr<ResNet> load_classifier(const std::string& arch, const std::string& path,
                                        DType dtype, Device device);

}  // namespace prm
