// The regular files of a tar archive held in memory: what torch.save wrote before PyTorch 0.1.10
// (2017; torchvision's first ImageNet weights, resnet50-19c8e357.pth among them, are such
// archives): ustar headers as Python's tarfile writes them in PAX format, a pax extended header
// ('x') before a member whose mtime (or path, or size) does not fit the ustar fields. Written here
// for the same reasons as data/zip.h: locating bytes only, strictly, fuzzed.
//
// Throws prm::Error naming the archive (and the member) when: a header's checksum is wrong; a
// size is not octal (or is base-256, over 8 GB); a member's bytes, or its padding to 512 bytes,
// run past the end; a pax record is malformed; a name appears twice; the two zero blocks that end
// an archive are missing (a truncated file). Directories, links and other member types are skipped.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/archive.h"

namespace prm {

// By content: a ustar header's magic "ustar" at byte 257.
bool is_tar(std::string_view bytes);

std::vector<ArchiveEntry> read_tar_entries(std::string_view bytes, const std::string& name);

}  // namespace prm
