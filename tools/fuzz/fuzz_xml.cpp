// libFuzzer target for the XML reader and the VOC annotation parser: any input must either parse
// or throw prm::Error; crashes, hangs, leaks and sanitizer reports are bugs. Build with build.sh.
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/voc.h"
#include "data/xml.h"
#include "tensor/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    std::unique_ptr<prm::xml::Element> root = prm::xml::parse(text, "fuzz.xml");
    prm::parse_voc_annotation(*root, "fuzz.xml", prm::voc_class_names());
  } catch (const prm::Error&) {
  }
  return 0;
}
