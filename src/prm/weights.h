// Weights files: a module's state dict (layers/module.h) read from .safetensors
// (data/safetensors.h) or PyTorch's torch.save files (data/pth.h), written as .safetensors. This
// is the one place that composes the two, so that layers/ knows no file format and data/ knows no
// module. Errors name the file.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/safetensors.h"
#include "layers/module.h"
#include "layers/resnet.h"
#include "prm/head.h"

namespace prm {

// Which reader a weights file needs, from its first bytes, never its name: a zip archive, a
// pickle (torch's magic number) or a tar archive is a PyTorch file (data/pth.h), anything else
// .safetensors.
enum class WeightsFormat { safetensors, pth_zip, pth_legacy, pth_tar };
WeightsFormat weights_format(std::string_view bytes);
const char* weights_format_name(WeightsFormat format);  // "safetensors", "PyTorch zip", ...

// The tensors (and, for .safetensors, the metadata) of any weights file prm reads, chosen by
// content; *format (when given) receives which it was. Every command that reads weights (--weights,
// --pretrained, prm convert) goes through here.
SafetensorsContents load_weights_file(const std::string& path, WeightsFormat* format = nullptr);

// Reads a weights file (load_weights_file) into a module by name (see LoadOptions).
LoadReport load_weights(Module& module, const std::string& path, const LoadOptions& options = {});
// Writes the module's state dict as .safetensors (atomically).
void save_weights(const Module& module, const std::string& path, const Metadata& metadata = {});

// load_weights with resnet_load_options (torchvision names, `fc.*` ignored, optionally a fresh
// classifier).
LoadReport load_resnet_weights(ResNet& net, const std::string& path, bool fresh_classifier,
                               bool strict = true);

// What weights written by `prm train` say about themselves, in their metadata entry "prm": the
// network, the class names, the training input size and the PRM head. `present` is false for
// files from elsewhere (torchvision's, older runs').
struct WeightsInfo {
  bool present = false;
  std::string arch;
  int64_t width = 0, size = 0;
  std::vector<std::string> classes;
  PrmHead head;
};
constexpr const char* kWeightsInfoKey = "prm";
Metadata weights_metadata(const WeightsInfo& info);

// A setting a command takes from a weights file: the flag's value when given (refused, naming
// both, when the file says otherwise), else the file's, else `fallback`.
std::string weights_setting(const std::string& flag, const std::string& given,
                            const std::string& in_file, const std::string& fallback,
                            const std::string& path);

// A trained classifier from its weights file: width and class count read from the weights
// (conv1.weight, classifier.weight), fc.* ignored, in eval mode, of `dtype` on `device`. `arch`
// "" takes the file's architecture (resnet50 for a file that does not say); a given one must
// agree with the file's. *info (when given) receives what the file says about itself.
std::unique_ptr<ResNet> load_classifier(const std::string& arch, const std::string& path,
                                        DType dtype, Device device, WeightsInfo* info = nullptr);

}  // namespace prm
