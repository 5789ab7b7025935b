#include "data/tar.h"

#include <unordered_set>

#include "tensor/error.h"

namespace prm {

namespace {

constexpr uint64_t kBlock = 512;

bool all_zero(std::string_view block) {
  for (char c : block)
    if (c != 0) return false;
  return true;
}

// A NUL-terminated text field.
std::string text_field(std::string_view field) {
  return std::string(field.substr(0, field.find('\0')));
}

// An octal number field as Python's tarfile writes it (digits, then NUL or space; leading spaces
// allowed; empty means 0). Base-256 fields (sizes over 8 GB) are not accepted.
bool octal_field(std::string_view field, uint64_t* out) {
  field = field.substr(0, field.find('\0'));
  while (!field.empty() && field.front() == ' ') field.remove_prefix(1);
  while (!field.empty() && field.back() == ' ') field.remove_suffix(1);
  uint64_t v = 0;
  for (char c : field) {
    if (c < '0' || c > '7') return false;
    v = v * 8 + static_cast<uint64_t>(c - '0');  // at most 12 digits: no overflow
  }
  *out = v;
  return true;
}

// The records of a pax extended header, "<length> <key>=<value>\n" each; the two that matter
// for locating the next member (its path and size) are returned.
void read_pax(std::string_view data, std::string* path, bool* has_size, uint64_t* size,
              const std::string& name) {
  while (!data.empty()) {
    const size_t space = data.find(' ');
    uint64_t length = 0;
    bool ok = space != std::string_view::npos && space > 0 && space <= 20;
    for (size_t i = 0; ok && i < space; ++i) {
      ok = data[i] >= '0' && data[i] <= '9';
      length = length * 10 + static_cast<uint64_t>(data[i] - '0');
    }
    ok = ok && length > space + 1 && length <= data.size() && data[length - 1] == '\n';
    const std::string_view record = ok ? data.substr(space + 1, length - space - 2) : "";
    const size_t eq = record.find('=');
    PRM_CHECK(ok && eq != std::string_view::npos, "tar: ", name, ": a damaged pax header");
    const std::string_view key = record.substr(0, eq), value = record.substr(eq + 1);
    if (key == "path") *path = std::string(value);
    if (key == "size") {
      *has_size = !value.empty() && value.size() <= 19;
      *size = 0;
      for (char c : value) {
        PRM_CHECK(c >= '0' && c <= '9' && *has_size, "tar: ", name, ": a damaged pax size");
        *size = *size * 10 + static_cast<uint64_t>(c - '0');
      }
    }
    data.remove_prefix(length);
  }
}

void check_header_sum(std::string_view h, uint64_t at, const std::string& name) {
  uint64_t stored = 0;
  PRM_CHECK(octal_field(h.substr(148, 8), &stored), "tar: ", name, ": the header at byte ", at,
            " has no checksum (not a tar archive, or damaged)");
  uint64_t sum = 0;
  for (uint64_t i = 0; i < kBlock; ++i)
    sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
  PRM_CHECK(sum == stored, "tar: ", name, ": the header at byte ", at,
            " does not match its checksum (damaged archive)");
}

}  // namespace

bool is_tar(std::string_view bytes) {
  return bytes.size() >= kBlock && bytes.substr(257, 5) == "ustar";
}

std::vector<ArchiveEntry> read_tar_entries(std::string_view bytes, const std::string& name) {
  std::vector<ArchiveEntry> out;
  std::unordered_set<std::string> names;
  std::string next_path;  // from a pax header, for the member after it
  bool has_next_size = false;
  uint64_t next_size = 0;
  for (uint64_t at = 0;;) {
    PRM_CHECK(bytes.size() - at >= kBlock, "tar: ", name,
              ": the archive ends without its two zero blocks (truncated file)");
    const std::string_view h = bytes.substr(at, kBlock);
    if (all_zero(h)) {
      PRM_CHECK(bytes.size() - at >= 2 * kBlock && all_zero(bytes.substr(at + kBlock, kBlock)),
                "tar: ", name, ": the archive ends after one zero block of two (truncated file)");
      return out;  // what follows (padding to tarfile's record size) is not read
    }
    check_header_sum(h, at, name);
    uint64_t size = 0;
    PRM_CHECK(octal_field(h.substr(124, 12), &size), "tar: ", name, ": the header at byte ", at,
              " has a size that is not octal (a member over 8 GB, or damage)");
    std::string member = text_field(h.substr(0, 100));
    if (h.substr(257, 6) == std::string_view("ustar\0", 6) && h[345] != 0)
      member = text_field(h.substr(345, 155)) + "/" + member;
    if (!next_path.empty()) member = next_path;
    if (has_next_size) size = next_size;
    next_path.clear();
    has_next_size = false;
    const uint64_t data = at + kBlock;
    PRM_CHECK(size <= bytes.size() - data, "tar: ", name, ": member '", member, "' (", size,
              " bytes) runs past the end of the archive (truncated file)");
    const uint64_t padded = size + (kBlock - size % kBlock) % kBlock;  // size < file size
    PRM_CHECK(padded <= bytes.size() - data, "tar: ", name, ": member '", member,
              "' is not padded to a whole block (truncated file)");
    const char type = h[156];
    if (type == 'x') {
      read_pax(bytes.substr(data, size), &next_path, &has_next_size, &next_size, name);
    } else if (type == '0' || type == '\0') {
      PRM_CHECK(names.insert(member).second, "tar: ", name, ": member '", member,
                "' appears twice");
      out.push_back({member, data, size});
    }
    at = data + padded;
  }
}

}  // namespace prm
