// .npy reader and writer: files laid out by hand here (the format as NumPy's format.py writes
// it), round trips, and every kind of bad file named in the issue.
#include <cstdio>
#include <cstring>
#include <string>

#include "data/npy.h"
#include "helpers.h"
#include "references.h"

using namespace prm;

namespace {

std::string error_of(const std::string& bytes) {
  try {
    parse_npy(bytes, "bad.npy");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("npy: reads float32, float64 and int64 files laid out as NumPy writes them") {
  // numpy.save(np.arange(6, dtype='<f4').reshape(2, 3)) without the padding.
  Tensor a = parse_npy(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                                 raw_bytes<float>({0, 1, 2, 3, 4, 5})),
                       "a.npy");
  CHECK(a.dtype() == DType::f32);
  CHECK(a.shape() == Shape{2, 3});
  CHECK(a.to_vector() == std::vector<double>{0, 1, 2, 3, 4, 5});

  Tensor b = parse_npy(npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }   ",
                                 raw_bytes<double>({1.5, -2.25})),
                       "b.npy");
  CHECK(b.dtype() == DType::f64);
  CHECK(b.shape() == Shape{2});
  CHECK(b.to_vector() == std::vector<double>{1.5, -2.25});

  // Version 2.0 (4-byte header length), keys in another order, a scalar.
  Tensor c = parse_npy(
      npy_bytes(2, "{'shape': (), 'fortran_order': False, 'descr': '<i8'}", raw_bytes<int64_t>({-7})),
      "c.npy");
  CHECK(c.dtype() == DType::i64);
  CHECK(c.shape().empty());
  CHECK(c.item() == -7);

  Tensor empty = parse_npy(
      npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0, 3), }", ""), "e.npy");
  CHECK(empty.shape() == Shape{2, 0, 3});
}

TEST_CASE("npy: the writer's bytes follow the format and round-trip through files") {
  Tensor t = Tensor::from_vector({1, -2, 3.5, 4, 5, 6}, {3, 2}, DType::f64);
  const std::string bytes = encode_npy(t);
  REQUIRE(bytes.size() == 128 + 6 * 8);  // header padded to a 64-byte boundary
  CHECK(bytes.compare(0, 8, std::string("\x93NUMPY\x01\x00", 8)) == 0);
  const std::string header = bytes.substr(10, 118);
  CHECK(header.rfind("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", 0) == 0);
  CHECK(header.back() == '\n');
  double second;
  std::memcpy(&second, bytes.data() + 128 + 8, 8);
  CHECK(second == -2);

  const std::string path = "test_npy_roundtrip.npy";
  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    Tensor src = Tensor::from_vector({3, 1, 4, 1, 5, 9, 2}, {7}, dt);
    save_npy(path, src);
    Tensor back = load_npy(path);
    CHECK(back.dtype() == dt);
    CHECK(back.shape() == Shape{7});
    CHECK(back.to_vector() == src.to_vector());
  }
  save_npy(path, Tensor::full({}, 2.5, DType::f32));
  CHECK(load_npy(path).shape().empty());
  CHECK(encode_npy(Tensor::zeros({4})).find("'shape': (4,)") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("npy: bad files give an error naming the file") {
  const std::string good_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
  const std::string data = raw_bytes<float>({1, 2, 3, 4});
  REQUIRE(error_of(npy_bytes(1, good_header, data)) == "no error");

  SUBCASE("truncated data") {
    std::string e = error_of(npy_bytes(1, good_header, data.substr(0, 10)));
    CHECK(e.find("bad.npy") != std::string::npos);
    CHECK(e.find("truncated data") != std::string::npos);
  }
  SUBCASE("truncated header and empty file") {
    std::string full = npy_bytes(1, good_header, data);
    CHECK(error_of(full.substr(0, 30)).find("truncated header") != std::string::npos);
    CHECK(error_of(full.substr(0, 9)).find("truncated header") != std::string::npos);
    CHECK(error_of("").find("bad magic") != std::string::npos);
  }
  SUBCASE("a header that lies about the size") {
    // Shape says 3 elements, the data holds 4.
    std::string e =
        error_of(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", data));
    CHECK(e.find("header says shape [3]") != std::string::npos);
    // A header length beyond the end of the file.
    std::string bytes = npy_bytes(1, good_header, data);
    bytes[8] = static_cast<char>(0xff);
    bytes[9] = static_cast<char>(0x7f);
    CHECK(error_of(bytes).find("truncated header") != std::string::npos);
    // A shape whose byte count overflows.
    e = error_of(npy_bytes(1,
                           "{'descr': '<f8', 'fortran_order': False, 'shape': "
                           "(4611686018427387904, 4611686018427387904), }",
                           data));
    CHECK(e.find("too large") != std::string::npos);
  }
  SUBCASE("unsupported layouts and dtypes") {
    CHECK(error_of(npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", data))
              .find("Fortran") != std::string::npos);
    CHECK(
        error_of(npy_bytes(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", data))
            .find("big-endian") != std::string::npos);
    std::string e =
        error_of(npy_bytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", data));
    CHECK(e.find("unsupported dtype '<i4'") != std::string::npos);
    CHECK(e.find("bad.npy") != std::string::npos);
    CHECK(error_of(npy_bytes(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (8,), }", data))
              .find("unsupported dtype") != std::string::npos);
    std::string v3 = npy_bytes(2, good_header, data);
    v3[6] = 3;
    CHECK(error_of(v3).find("version 3.0") != std::string::npos);
  }
  SUBCASE("corrupt headers") {
    CHECK(error_of(npy_bytes(1, "{'descr': '<f4', 'shape': (2, 2), }", data)).find("must have") !=
          std::string::npos);
    CHECK(
        error_of(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -2), }", data))
            .find("bad header") != std::string::npos);
    CHECK(
        error_of(npy_bytes(1, "{'descr': '<f4', 'fortran_order': Fals", data)).find("bad header") !=
        std::string::npos);
    CHECK(error_of(npy_bytes(1, "{'descr': '<f4, 'fortran_order': False, 'shape': (4,)}", data))
              .find("bad header") != std::string::npos);
    std::string bad_magic = npy_bytes(1, good_header, data);
    bad_magic[1] = 'X';
    CHECK(error_of(bad_magic).find("not a .npy file") != std::string::npos);
  }
  SUBCASE("missing file") {
    CHECK_THROWS_WITH_AS(load_npy("no/such/file.npy"), doctest::Contains("no/such/file.npy"),
                         Error);
  }
}
