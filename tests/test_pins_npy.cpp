// Pins of issue 20 for the tensor .npy reader (data/npy.h): version 2.0 files, whose header
// length takes 4 bytes, read correctly also when that length needs more than 2 of them, and the
// versions outside 1.0 / 2.0 refused. (Version 3.0 only differs from 2.0 by a UTF-8 header,
// which NumPy writes only for structured dtypes with non-Latin-1 field names; this reader takes
// float32 / float64 / int64 only and documents 3.0 as unsupported. The proposal reader takes
// 3.0: tests/test_pins_proposals.cpp.) Files written byte by byte here.
#include <string>
#include <vector>

#include "data/npy.h"
#include "helpers.h"

using namespace prm;

namespace {

std::string npy_file(int major, int minor, const std::string& dict, size_t pad,
                     const std::string& data) {
  const std::string header = dict + std::string(pad, ' ') + "\n";
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back(static_cast<char>(minor));
  const int len_bytes = major == 1 ? 2 : 4;
  for (int i = 0; i < len_bytes; ++i)
    out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  return out + header + data;
}

std::string error_of(const std::string& bytes) {
  try {
    parse_npy(bytes, "pin.npy");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("npy: a version 2.0 file whose header is longer than 65535 bytes") {
  // Header of 70,001 bytes (0x011171): the third length byte is 0x01. Reading only two bytes
  // would take 0x1171 = 4465 bytes of header and fail or misread the data.
  const std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }";
  const std::string bytes =
      npy_file(2, 0, dict, 70000 - dict.size(), raw_bytes<double>({1.5, -2, 1e300}));
  REQUIRE(static_cast<unsigned char>(bytes[10]) == 0x01);
  const Tensor t = parse_npy(bytes, "big.npy");
  CHECK(t.dtype() == DType::f64);
  CHECK(t.shape() == Shape{3});
  CHECK(t.to_vector() == std::vector<double>{1.5, -2, 1e300});

  // The same array as version 1.0 with a short header, and as 2.0 with a short one.
  const Tensor a = parse_npy(npy_file(1, 0, dict, 5, raw_bytes<double>({1.5, -2, 1e300})), "a");
  const Tensor b = parse_npy(npy_file(2, 0, dict, 5, raw_bytes<double>({1.5, -2, 1e300})), "b");
  CHECK(a.to_vector() == t.to_vector());
  CHECK(b.to_vector() == t.to_vector());

  // int64 [2, 2] as 2.0.
  const Tensor i = parse_npy(
      npy_file(2, 0, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }", 0,
               raw_bytes<int64_t>({1, -2, 3, 1099511627776})),
      "i.npy");
  CHECK(i.dtype() == DType::i64);
  CHECK(i.shape() == Shape{2, 2});
  CHECK(i.to_vector() == std::vector<double>{1, -2, 3, 1099511627776.0});
}

TEST_CASE("npy: versions other than 1.0 and 2.0 are refused, naming the file and the version") {
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const std::string data = raw_bytes<float>({1, 2});
  REQUIRE(error_of(npy_file(1, 0, dict, 4, data)) == "no error");
  REQUIRE(error_of(npy_file(2, 0, dict, 4, data)) == "no error");
  struct Version {
    int major, minor;
    const char* text;
  };
  for (const Version& v : {Version{0, 0, "0.0"}, Version{3, 0, "3.0"}, Version{4, 0, "4.0"},
                           Version{1, 1, "1.1"}, Version{2, 1, "2.1"}, Version{255, 0, "255.0"}}) {
    CAPTURE(v.text);
    const std::string e = error_of(npy_file(v.major, v.minor, dict, 4, data));
    CHECK(e.find("pin.npy") != std::string::npos);
    CHECK(e.find(std::string("version ") + v.text) != std::string::npos);
  }
}
