// libFuzzer target for the PyTorch .pth reader (data/pth.h: the zip container, the restricted
// unpickler, storages and views): any input must either parse or throw prm::Error. What parses
// must be plain tensors whose every byte can be read (written as .safetensors and parsed back to
// the same names, dtypes, shapes and bytes). Crashes, hangs, leaks, sanitizer reports and a
// failed round trip are bugs. Build with build.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "data/pth.h"
#include "data/safetensors.h"
#include "tensor/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  prm::TensorMap tensors;
  try {
    tensors = prm::parse_pth(bytes, "fuzz.pth");
  } catch (const prm::Error&) {
    return 0;
  }
  std::string encoded;
  try {
    encoded = prm::encode_safetensors(tensors);
  } catch (const prm::Error&) {  // the one name safetensors reserves
    if (tensors.count("__metadata__")) return 0;
    std::abort();
  }
  const prm::TensorMap back = prm::parse_safetensors(encoded, "round trip").tensors;
  if (back.size() != tensors.size()) std::abort();
  for (const auto& [name, t] : tensors) {
    auto it = back.find(name);
    if (it == back.end() || it->second.dtype() != t.dtype() || it->second.shape() != t.shape())
      std::abort();
    const size_t n = static_cast<size_t>(t.numel()) * prm::dtype_size(t.dtype());
    if (n && std::memcmp(t.raw_data(), it->second.raw_data(), n) != 0) std::abort();
  }
  return 0;
}
