// prm convert: any weights file prm reads (.safetensors, PyTorch's zip or legacy torch.save
// files, chosen by content) written as .safetensors, names kept, for those who want one format.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"
#include "data/safetensors.h"
#include "prm/weights.h"
#include "tensor/error.h"

namespace prm {

namespace {

const char* const kHelp =
    "usage: prm convert IN OUT.safetensors\n"
    "Writes the weights in IN as .safetensors, tensor names kept (torchvision's stay\n"
    "torchvision's). IN is any weights file prm reads, recognised by its content, not its\n"
    "name: .safetensors, or a PyTorch torch.save file in the zip format (torch >= 1.6) or\n"
    "the legacy one (torch < 1.6) holding a state_dict, or a dict holding one under\n"
    "state_dict, model_state_dict or model. PyTorch files are read by a restricted\n"
    "unpickler that runs nothing: a file asking for anything but tensors is refused.\n"
    "float16 and bfloat16 tensors become float32; a .safetensors file's metadata is kept.\n"
    "OUT is written atomically (a temp file renamed over it) and must end in .safetensors.\n"
    "Prints what it read, and how long reading took, on stderr.\n";

bool ends_with(const std::string& s, const std::string& end) {
  return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}

}  // namespace

int cmd_convert(int argc, char** argv) {
  std::vector<std::string> paths;
  for (int i = 0; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::fputs(kHelp, stdout);
      return 0;
    }
    PRM_CHECK(std::strncmp(argv[i], "--", 2) != 0, "unknown flag ", argv[i],
              " (see prm convert --help)");
    paths.push_back(argv[i]);
  }
  PRM_CHECK(paths.size() == 2, "expects two paths, IN and OUT.safetensors; got ", paths.size(),
            " (see prm convert --help)");
  const std::string& in = paths[0];
  const std::string& out = paths[1];
  PRM_CHECK(ends_with(out, ".safetensors"), "the output '", out,
            "' must end in .safetensors (so that IN and OUT are not swapped by mistake)");

  const auto start = std::chrono::steady_clock::now();
  WeightsFormat format;
  const SafetensorsContents weights = load_weights_file(in, &format);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  size_t bytes = 0;
  for (const auto& [name, t] : weights.tensors) bytes += t.numel() * dtype_size(t.dtype());
  save_safetensors(out, weights.tensors, weights.metadata);
  std::fprintf(stderr, "prm convert: %zu tensors (%.1f MB) from %s (%s, read in %.3f s) -> %s\n",
               weights.tensors.size(), bytes / 1e6, in.c_str(), weights_format_name(format),
               seconds, out.c_str());
  return 0;
}

}  // namespace prm
