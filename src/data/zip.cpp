#include "data/zip.h"

#include <unordered_set>

#include "tensor/error.h"

namespace prm {

namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;      // "PK\3\4"
constexpr uint32_t kCentralHeader = 0x02014b50;    // "PK\1\2"
constexpr uint32_t kEndRecord = 0x06054b50;        // "PK\5\6"
constexpr uint32_t kZip64EndRecord = 0x06064b50;   // "PK\6\6"
constexpr uint32_t kZip64Locator = 0x07064b50;     // "PK\6\7"
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint64_t kEndRecordSize = 22, kZip64LocatorSize = 20, kZip64EndRecordSize = 56;
constexpr uint64_t kLocalHeaderSize = 30, kCentralHeaderSize = 46;

// Little-endian fields at a position already checked to lie inside the bytes.
uint64_t le(std::string_view b, uint64_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}

// [at, at + n) lies inside [0, limit), without overflow.
bool inside(uint64_t at, uint64_t n, uint64_t limit) { return at <= limit && n <= limit - at; }

struct Directory {
  uint64_t entries = 0, offset = 0, size = 0;
  uint64_t end = 0;  // where the end records begin: the central directory must stop before
};

// The end-of-central-directory record: the last "PK\5\6" whose comment runs exactly to the end.
uint64_t find_end_record(std::string_view b, const std::string& name) {
  PRM_CHECK(b.size() >= kEndRecordSize, "zip: ", name, ": ", b.size(),
            " bytes are too few for a zip archive (truncated?)");
  const uint64_t last = b.size() - kEndRecordSize;
  const uint64_t first = last > 0xFFFF ? last - 0xFFFF : 0;
  for (uint64_t at = last + 1; at-- > first;)
    if (le(b, at, 4) == kEndRecord && le(b, at + 20, 2) == b.size() - at - kEndRecordSize)
      return at;
  throw Error(str_cat("zip: ", name,
                      ": no end-of-central-directory record (not a zip archive, or truncated)"));
}

Directory read_directory(std::string_view b, const std::string& name) {
  const uint64_t eocd = find_end_record(b, name);
  Directory d;
  const uint64_t disk = le(b, eocd + 4, 2), cd_disk = le(b, eocd + 6, 2);
  const uint64_t on_disk = le(b, eocd + 8, 2);
  d.entries = le(b, eocd + 10, 2);
  d.size = le(b, eocd + 12, 4);
  d.offset = le(b, eocd + 16, 4);
  d.end = eocd;
  const bool has_locator =
      eocd >= kZip64LocatorSize && le(b, eocd - kZip64LocatorSize, 4) == kZip64Locator;
  if (!has_locator) {
    PRM_CHECK(d.entries != 0xFFFF && d.size != 0xFFFFFFFF && d.offset != 0xFFFFFFFF, "zip: ",
              name, ": the end record defers to a ZIP64 record that is missing (truncated?)");
    PRM_CHECK(disk == 0 && cd_disk == 0 && on_disk == d.entries, "zip: ", name,
              ": archives split over several disks are not supported");
    return d;
  }
  const uint64_t locator = eocd - kZip64LocatorSize;
  const uint64_t record = le(b, locator + 8, 8);
  PRM_CHECK(le(b, locator + 4, 4) == 0 && le(b, locator + 16, 4) <= 1, "zip: ", name,
            ": archives split over several disks are not supported");
  PRM_CHECK(inside(record, kZip64EndRecordSize, locator) && le(b, record, 4) == kZip64EndRecord,
            "zip: ", name, ": the ZIP64 locator points to no ZIP64 end record (damaged archive)");
  PRM_CHECK(le(b, record + 16, 4) == 0 && le(b, record + 20, 4) == 0 &&
                le(b, record + 24, 8) == le(b, record + 32, 8),
            "zip: ", name, ": archives split over several disks are not supported");
  d.entries = le(b, record + 32, 8);
  d.size = le(b, record + 40, 8);
  d.offset = le(b, record + 48, 8);
  d.end = record;
  return d;
}

// The 64-bit values of the ZIP64 extra field (id 1) for the 32-bit fields that hold 0xFFFFFFFF,
// in the order the format fixes: uncompressed size, compressed size, local header offset.
void apply_zip64_extra(std::string_view b, uint64_t extra, uint64_t extra_len, uint64_t* fields[3],
                       const std::string& entry, const std::string& name) {
  bool found = false;
  for (uint64_t at = extra; at + 4 <= extra + extra_len;) {
    const uint64_t id = le(b, at, 2), len = le(b, at + 2, 2);
    PRM_CHECK(inside(at + 4, len, extra + extra_len), "zip: ", name, ": entry '", entry,
              "': an extra field runs past its header");
    if (id == kZip64ExtraId && !found) {
      found = true;
      uint64_t pos = at + 4;
      for (int i = 0; i < 3; ++i) {
        if (*fields[i] != 0xFFFFFFFF) continue;
        PRM_CHECK(pos + 8 <= at + 4 + len, "zip: ", name, ": entry '", entry,
                  "': its ZIP64 extra field is too short");
        *fields[i] = le(b, pos, 8);
        pos += 8;
      }
    }
    at += 4 + len;
  }
  for (int i = 0; i < 3; ++i)
    PRM_CHECK(found || *fields[i] != 0xFFFFFFFF, "zip: ", name, ": entry '", entry,
              "' needs a ZIP64 extra field and has none");
}

const char* method_name(uint64_t method) {
  switch (method) {
    case 8: return "deflate";
    case 9: return "deflate64";
    case 12: return "bzip2";
    case 14: return "lzma";
    case 93: return "zstd";
    default: return "compressed";
  }
}

// One central-directory header at `at`; returns the position of the next one.
uint64_t read_entry(std::string_view b, uint64_t at, const Directory& d, ArchiveEntry& e,
                    const std::string& name) {
  const uint64_t cd_end = d.offset + d.size;
  PRM_CHECK(inside(at, kCentralHeaderSize, cd_end) && le(b, at, 4) == kCentralHeader, "zip: ",
            name, ": the central directory is damaged (no entry header at byte ", at, ")");
  const uint64_t flags = le(b, at + 8, 2), method = le(b, at + 10, 2);
  uint64_t compressed = le(b, at + 20, 4), size = le(b, at + 24, 4);
  const uint64_t name_len = le(b, at + 28, 2), extra_len = le(b, at + 30, 2);
  const uint64_t comment_len = le(b, at + 32, 2);
  const uint64_t disk = le(b, at + 34, 2);
  uint64_t local = le(b, at + 42, 4);
  const uint64_t next = at + kCentralHeaderSize + name_len + extra_len + comment_len;
  PRM_CHECK(next <= cd_end, "zip: ", name, ": the central directory is damaged (an entry runs ",
            "past its end)");
  e.name.assign(b.data() + at + kCentralHeaderSize, name_len);
  uint64_t* fields[3] = {&size, &compressed, &local};
  apply_zip64_extra(b, at + kCentralHeaderSize + name_len, extra_len, fields, e.name, name);
  PRM_CHECK(disk == 0 || disk == 0xFFFF, "zip: ", name,
            ": archives split over several disks are not supported");
  PRM_CHECK(!(flags & 1), "zip: ", name, ": entry '", e.name, "' is encrypted");
  PRM_CHECK(method == 0, "zip: ", name, ": entry '", e.name, "' is ", method_name(method),
            " (method ", method, "); prm reads only stored entries, as torch.save writes them "
            "(was the file re-zipped?)");
  PRM_CHECK(compressed == size, "zip: ", name, ": entry '", e.name, "' is stored but its sizes ",
            "differ (", compressed, " and ", size, ")");
  // The local header: its name must be this entry's; its sizes may be 0 (data descriptor), so
  // the central directory's are the ones used.
  PRM_CHECK(inside(local, kLocalHeaderSize, d.offset) && le(b, local, 4) == kLocalHeader, "zip: ",
            name, ": entry '", e.name, "': no local header at byte ", local, " (damaged archive)");
  const uint64_t local_name = le(b, local + 26, 2), local_extra = le(b, local + 28, 2);
  PRM_CHECK(le(b, local + 8, 2) == 0, "zip: ", name, ": entry '", e.name,
            "' is stored in the central directory but not in its local header");
  PRM_CHECK(local_name == name_len &&
                inside(local + kLocalHeaderSize, local_name, d.offset) &&
                b.compare(local + kLocalHeaderSize, local_name, e.name) == 0,
            "zip: ", name, ": entry '", e.name, "': its local header names another entry");
  e.offset = local + kLocalHeaderSize + local_name + local_extra;
  e.size = size;
  PRM_CHECK(inside(e.offset, e.size, d.offset), "zip: ", name, ": entry '", e.name, "' (", size,
            " bytes at byte ", e.offset, ") runs past the data into the central directory ",
            "(truncated or damaged archive)");
  return next;
}

}  // namespace

std::vector<ArchiveEntry> read_zip_entries(std::string_view bytes, const std::string& name) {
  const Directory d = read_directory(bytes, name);
  PRM_CHECK(inside(d.offset, d.size, d.end), "zip: ", name, ": the central directory (", d.size,
            " bytes at byte ", d.offset, ") runs outside the archive (truncated or damaged)");
  PRM_CHECK(d.entries <= d.size / kCentralHeaderSize, "zip: ", name, ": ", d.entries,
            " entries cannot fit in a central directory of ", d.size, " bytes (damaged archive)");
  std::vector<ArchiveEntry> entries(d.entries);
  std::unordered_set<std::string> names;
  uint64_t at = d.offset;
  for (ArchiveEntry& e : entries) {
    at = read_entry(bytes, at, d, e, name);
    PRM_CHECK(names.insert(e.name).second, "zip: ", name, ": entry '", e.name, "' appears twice");
  }
  return entries;
}

std::string_view zip_entry_bytes(std::string_view archive, const ArchiveEntry& entry,
                                 const std::string& name) {
  PRM_CHECK(inside(entry.offset, entry.size, archive.size()), "zip: ", name, ": entry '",
            entry.name, "' runs past the end of the archive");
  return archive.substr(entry.offset, entry.size);
}

}  // namespace prm
