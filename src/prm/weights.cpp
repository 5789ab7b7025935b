#include "prm/weights.h"

#include <algorithm>
#include <cstdio>

#include "data/files.h"
#include "data/json.h"
#include "data/pth.h"

namespace prm {

WeightsFormat weights_format(std::string_view bytes) {
  if (is_pth_zip(bytes)) return WeightsFormat::pth_zip;
  if (is_pth_legacy(bytes)) return WeightsFormat::pth_legacy;
  if (is_pth_tar(bytes)) return WeightsFormat::pth_tar;
  return WeightsFormat::safetensors;
}

const char* weights_format_name(WeightsFormat format) {
  switch (format) {
    case WeightsFormat::pth_zip: return "PyTorch zip";
    case WeightsFormat::pth_legacy: return "PyTorch legacy";
    case WeightsFormat::pth_tar: return "PyTorch tar";
    default: return "safetensors";
  }
}

SafetensorsContents load_weights_file(const std::string& path, WeightsFormat* format_out) {
  const std::string bytes = read_file_bytes(path);
  const WeightsFormat format = weights_format(bytes);
  if (format_out) *format_out = format;
  if (format == WeightsFormat::safetensors) return parse_safetensors(bytes, path);
  return SafetensorsContents{parse_pth(bytes, path), {}};
}

LoadReport load_weights(Module& module, const std::string& path, const LoadOptions& options) {
  return module.load_state_dict(load_weights_file(path).tensors, options, path);
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

Metadata weights_metadata(const WeightsInfo& info) {
  Json classes = Json::array();
  for (const std::string& c : info.classes) classes.push_back(Json(c));
  const Json j = Json::object({{"arch", Json(info.arch)},
                               {"width", Json(info.width)},
                               {"size", Json(info.size)},
                               {"classes", classes},
                               {"head", info.head.to_json()}});
  return {{kWeightsInfoKey, write_json(j)}};
}

namespace {

WeightsInfo read_info(const Metadata& metadata, const std::string& path) {
  WeightsInfo info;
  auto it = metadata.find(kWeightsInfoKey);
  if (it == metadata.end()) return info;
  try {
    const Json j = parse_json(it->second, path);
    info.arch = j.at("arch").as_string();
    info.width = j.at("width").as_int64();
    info.size = j.at("size").as_int64();
    for (const Json& c : j.at("classes").items()) info.classes.push_back(c.as_string());
    info.head = PrmHead::from_json(j.at("head"), path);
  } catch (const Error& e) {
    throw Error(str_cat(path, ": damaged weights description (metadata '", kWeightsInfoKey,
                        "'): ", e.what()));
  }
  info.present = true;
  return info;
}

}  // namespace

namespace {

// The torchvision architecture whose block counts the tensor names show ("" when none fits).
std::string arch_of_names(const TensorMap& tensors) {
  int blocks[4] = {0, 0, 0, 0};
  bool bottleneck = false;
  for (const auto& [name, t] : tensors) {
    int l = 0, b = 0;
    char rest[64] = {};
    if (std::sscanf(name.c_str(), "layer%d.%d.%63s", &l, &b, rest) == 3 && l >= 1 && l <= 4) {
      blocks[l - 1] = std::max(blocks[l - 1], b + 1);
      bottleneck = bottleneck || std::string(rest).rfind("conv3.", 0) == 0;
    }
  }
  const std::vector<int> got(blocks, blocks + 4);
  if (got == std::vector<int>{2, 2, 2, 2} && !bottleneck) return "resnet18";
  if (got == std::vector<int>{3, 4, 6, 3}) return bottleneck ? "resnet50" : "resnet34";
  if (got == std::vector<int>{3, 4, 23, 3} && bottleneck) return "resnet101";
  return "";
}

}  // namespace

std::string weights_setting(const std::string& flag, const std::string& given,
                            const std::string& in_file, const std::string& fallback,
                            const std::string& path) {
  if (!given.empty()) {
    PRM_CHECK(in_file.empty() || given == in_file, "--", flag, " ", given, " differs from ", path,
              ", which says ", in_file, " (leave the flag out to take the file's)");
    return given;
  }
  return in_file.empty() ? fallback : in_file;
}

std::unique_ptr<ResNet> load_classifier(const std::string& arch, const std::string& path,
                                        DType dtype, Device device, WeightsInfo* info_out) {
  SafetensorsContents weights = load_weights_file(path);
  const WeightsInfo info = read_info(weights.metadata, path);
  if (info_out) *info_out = info;
  ResNetOptions options;
  // A file that does not say: the architecture its tensor names show (torchvision's files).
  const std::string by_names = arch_of_names(weights.tensors);
  options.arch = weights_setting("arch", arch, info.present ? info.arch : by_names, "resnet50",
                                 path);
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
