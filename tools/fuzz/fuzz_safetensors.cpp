// libFuzzer target for the .safetensors reader (data/safetensors.h): any input must either parse
// or throw prm::Error. What parses must write and parse back to the same names, dtypes, shapes,
// bytes and metadata. Crashes, hangs, leaks, sanitizer reports and a failed round trip are bugs.
// Build with build.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "data/safetensors.h"
#include "tensor/error.h"

namespace {

bool same(const prm::Tensor& a, const prm::Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const size_t n = static_cast<size_t>(a.numel()) * prm::dtype_size(a.dtype());
  return n == 0 || std::memcmp(a.raw_data(), b.raw_data(), n) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  prm::SafetensorsContents first;
  try {
    first = prm::parse_safetensors(bytes, "fuzz.safetensors");
  } catch (const prm::Error&) {
    return 0;
  }
  const prm::SafetensorsContents second = prm::parse_safetensors(
      prm::encode_safetensors(first.tensors, first.metadata), "round trip");
  if (second.metadata != first.metadata || second.tensors.size() != first.tensors.size())
    std::abort();
  for (const auto& [name, tensor] : first.tensors) {
    auto it = second.tensors.find(name);
    if (it == second.tensors.end() || !same(tensor, it->second)) std::abort();
  }
  return 0;
}
