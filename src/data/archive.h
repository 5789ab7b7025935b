// A member of an archive that stores its members' bytes as they are (data/zip.h, data/tar.h): its
// name and where its bytes lie in the archive.
#pragma once
#include <cstdint>
#include <string>

namespace prm {

struct ArchiveEntry {
  std::string name;
  uint64_t offset = 0;  // of the member's bytes in the archive
  uint64_t size = 0;
};

}  // namespace prm
