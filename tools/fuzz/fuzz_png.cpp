// libFuzzer target for the indexed-PNG decoder (VOC segmentation masks): any input must decode or
// throw prm::Error. Build with build.sh.
#include <cstddef>
#include <cstdint>

#include "data/image.h"
#include "tensor/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    prm::decode_indexed_png(data, size, "fuzz.png");
  } catch (const prm::Error&) {
  }
  return 0;
}
