// The stored (uncompressed) entries of a zip archive held in memory: what torch.save's files
// need (PyTorch >= 1.6 writes every record stored, aligned to 64 bytes by padding in the local
// header's extra field, sizes in a trailing data descriptor, and a ZIP64 end record always).
// Written here rather than linked from libzip or minizip: reading stored entries is only
// locating bytes (the end record, the central directory, each local header), a few hundred lines
// that are easier to check, fuzz (tools/fuzz/fuzz_pth.cpp) and keep strict than a general library
// with a decompressor we would never call; docs/weights.md says more.
//
// The reader trusts the central directory (sizes, local header offsets), as zip readers do, and
// checks every number against the archive's bytes before using it. CRC-32s are not checked, as
// torch.load does not check them: torch >= 2.4 can write archives without them
// (torch.serialization.set_crc32_options), which must still load. It throws prm::Error
// naming the archive (and the entry) when: there is no end-of-central-directory record (not a
// zip, or truncated); the archive spans several disks; the central directory, a local header or
// an entry's bytes run outside the archive (or the entry's bytes into the central directory);
// a ZIP64 field is needed but missing; a name appears twice, or the local header names another
// entry; an entry is compressed (deflate or any other method) or encrypted.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/archive.h"

namespace prm {

// The entries of the archive in `bytes`, in central-directory order; `name` (usually the file's
// path) is used in error messages.
std::vector<ArchiveEntry> read_zip_entries(std::string_view bytes, const std::string& name);

// An entry's bytes (read_zip_entries checked that they lie within the archive).
std::string_view zip_entry_bytes(std::string_view archive, const ArchiveEntry& entry,
                                 const std::string& name);

}  // namespace prm
