// libFuzzer target for the two .npy readers: data/npy.h (float32/float64/int64 tensors) and the
// uint8/bool segment proposals reader of prm/proposal_files.h (which takes a path: each input is
// written to a scratch file). Any input must either load or throw prm::Error; a tensor that
// parses must write and parse back to the same dtype, shape and bytes. Crashes, hangs, leaks,
// sanitizer reports and a failed round trip are bugs. Build with build.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "data/npy.h"
#include "fuzz_util.h"
#include "prm/proposal_files.h"
#include "tensor/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const prm::Tensor t = prm::parse_npy(bytes, "fuzz.npy");
    const prm::Tensor back = prm::parse_npy(prm::encode_npy(t), "round trip");
    const size_t n = static_cast<size_t>(t.numel()) * prm::dtype_size(t.dtype());
    if (back.dtype() != t.dtype() || back.shape() != t.shape() ||
        (n > 0 && std::memcmp(back.raw_data(), t.raw_data(), n) != 0))
      std::abort();
  } catch (const prm::Error&) {
  }
  static const std::string path = prm_fuzz::scratch_dir() + "/proposals.npy";
  prm_fuzz::write_bytes(path, bytes);
  try {
    const std::vector<prm::Mask> masks = prm::load_proposals_npy(path);
    for (const prm::Mask& m : masks)
      if (m.data.size() != static_cast<size_t>(m.height) * m.width) std::abort();
  } catch (const prm::Error&) {
  }
  return 0;
}
