// libFuzzer target for the JSON reader and writer (data/json.h): any input must either parse or
// throw prm::Error; what parses must write (compact and readable) and parse back to an equal
// value. Crashes, hangs, sanitizer reports and a failed round trip are bugs. Build with build.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "data/json.h"
#include "tensor/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  prm::Json value;
  try {
    value = prm::parse_json(text, "fuzz.json");
  } catch (const prm::Error&) {
    return 0;
  }
  if (prm::parse_json(prm::write_json(value), "compact") != value) std::abort();
  if (prm::parse_json(prm::write_json_readable(value, 3), "readable") != value) std::abort();
  return 0;
}
