// Inputs found by the libFuzzer targets of tools/fuzz/ that once crashed or misbehaved, each
// kept as a test so that the defect stays fixed. The files are built here byte by byte.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "prm/proposal_files.h"

namespace fs = std::filesystem;

namespace {

std::string scratch(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("prm-fuzz-regressions-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// A version 1.0 .npy file: magic, version, little-endian header length, the header dict padded
// with spaces to a 64-byte boundary and ended by '\n', then `data`.
std::string npy_file(const std::string& dict, const std::string& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

}  // namespace

TEST_CASE("fuzz regression: a [0, H, W] proposals .npy with a huge H x W allocates nothing") {
  // fuzz_npy: the reader built P copies of one prototype H x W mask, so a file with no data whose
  // header says 0 masks of 1000000 x 1000000 asked for 10^12 bytes (out of memory; std::bad_alloc
  // or an OOM kill instead of the defined result, no proposals).
  const std::string path = scratch("zero_huge.npy");
  write_file(path,
             npy_file("{'descr': '|u1', 'fortran_order': False, 'shape': (0, 1000000, 1000000), }",
                      ""));
  std::vector<prm::Mask> masks{prm::Mask(1, 1)};
  CHECK_NOTHROW(masks = prm::load_proposals_npy(path));
  CHECK(masks.empty());
  CHECK_NOTHROW(masks = prm::load_proposals_npy(path, 5, 7));  // sizes unchecked without masks
  CHECK(masks.empty());
  // The same header with masks still reads them (2 masks of 1 x 3, hand-made bytes).
  const std::string small = scratch("two.npy");
  write_file(small, npy_file("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1, 3), }",
                             std::string("\x00\x07\x00\x01\x00\xff", 6)));
  masks = prm::load_proposals_npy(small);
  REQUIRE(masks.size() == 2);
  CHECK(masks[0].data == std::vector<uint8_t>{0, 1, 0});
  CHECK(masks[1].data == std::vector<uint8_t>{1, 0, 1});
  fs::remove_all(fs::path(path).parent_path());
}
