// .safetensors reader and writer: files laid out by hand here (the format's specification:
// u64 header length, JSON header, byte buffer), round trips, and every kind of bad file.
#include <cstdio>
#include <cstring>
#include <string>

#include "data/safetensors.h"
#include "helpers.h"

using namespace prm;

namespace {

std::string st_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string error_of(const std::string& bytes) {
  try {
    parse_safetensors(bytes, "bad.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Two tensors: "a" float32 [2] at [0, 8), "b" int64 [1] at [8, 16).
const std::string kGoodHeader =
    R"({"__metadata__":{"format":"pt"},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},)"
    R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

}  // namespace

TEST_CASE("safetensors: reads a hand-made file") {
  const std::string data = raw_bytes<float>({1.5f, -2.0f}) + raw_bytes<int64_t>({42});
  SafetensorsContents c = parse_safetensors(st_bytes(kGoodHeader + "   ", data), "x");
  REQUIRE(c.tensors.size() == 2);
  CHECK(c.tensors.at("a").dtype() == DType::f32);
  CHECK(c.tensors.at("a").to_vector() == std::vector<double>{1.5, -2.0});
  CHECK(c.tensors.at("b").dtype() == DType::i64);
  CHECK(c.tensors.at("b").item() == 42);
  CHECK(c.metadata.at("format") == "pt");

  // Escapes in names, an empty file, a scalar and an empty tensor.
  c = parse_safetensors(
      st_bytes(R"({"la\u00e9yer.\"w\"":{"dtype":"F64","shape":[],"data_offsets":[0,8]},)"
               R"("e":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]}})",
               raw_bytes<double>({0.25})),
      "x");
  CHECK(c.tensors.at("la\xc3\xa9yer.\"w\"").item() == 0.25);
  CHECK(c.tensors.at("e").shape() == Shape{0, 3});
  CHECK(parse_safetensors(st_bytes("{}", ""), "x").tensors.empty());
}

TEST_CASE("safetensors: F16 and BF16 are converted to float32") {
  // half: 1, -2, 65504 (max), 2^-24 (smallest subnormal), 0.5 + 2^-11 (mantissa bit); bf16: 1, -5.
  const std::string data =
      raw_bytes<uint16_t>({0x3C00, 0xC000, 0x7BFF, 0x0001, 0x3801}) + raw_bytes<uint16_t>({0x3F80, 0xC0A0});
  SafetensorsContents c =
      parse_safetensors(st_bytes(R"({"h":{"dtype":"F16","shape":[5],"data_offsets":[0,10]},)"
                                 R"("g":{"dtype":"BF16","shape":[2],"data_offsets":[10,14]}})",
                                 data),
                        "x");
  CHECK(c.tensors.at("h").dtype() == DType::f32);
  CHECK(c.tensors.at("h").to_vector() ==
        std::vector<double>{1, -2, 65504, std::ldexp(1.0, -24), 0.5 + std::ldexp(1.0, -11)});
  CHECK(c.tensors.at("g").to_vector() == std::vector<double>{1, -5});
}

TEST_CASE("safetensors: the writer's files follow the format and round-trip") {
  TensorMap m;
  m["conv.weight"] = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {1, 2, 3, 1}, DType::f32);
  m["bn.num_batches_tracked"] = Tensor::from_vector({3}, {}, DType::i64);
  m["z"] = Tensor::from_vector({-0.5, 0.125}, {2}, DType::f64);
  const std::string bytes = encode_safetensors(m, {{"note", "a \"b\"\n"}});
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  REQUIRE(bytes.size() == 8 + n + 8 + 16 + 24);
  // 8-byte dtypes first (names in order), then float32.
  const std::string header = bytes.substr(8, n);
  CHECK(contains(header,
                 R"("bn.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]})"));
  CHECK(contains(header, R"("z":{"dtype":"F64","shape":[2],"data_offsets":[8,24]})"));
  CHECK(contains(header,
                 R"("conv.weight":{"dtype":"F32","shape":[1,2,3,1],"data_offsets":[24,48]})"));
  CHECK(contains(header, R"("__metadata__":{"note":"a \"b\"\u000a","prm.crc32":)"));

  const std::string path = "test_safetensors_roundtrip.safetensors";
  save_safetensors(path, m, {{"note", "a \"b\"\n"}});
  SafetensorsContents c = load_safetensors(path);
  std::remove(path.c_str());
  CHECK(c.metadata.at("note") == "a \"b\"\n");
  REQUIRE(c.tensors.size() == 3);
  for (const auto& [name, t] : m) {
    CHECK(c.tensors.at(name).dtype() == t.dtype());
    CHECK(c.tensors.at(name).shape() == t.shape());
    CHECK(c.tensors.at(name).to_vector() == t.to_vector());
  }
}

TEST_CASE("safetensors: bad files give an error naming the file and the tensor") {
  const std::string data = raw_bytes<float>({1.5f, -2.0f}) + raw_bytes<int64_t>({42});
  const std::string good = st_bytes(kGoodHeader, data);
  REQUIRE(error_of(good) == "no error");

  SUBCASE("truncated") {
    CHECK(contains(error_of(good.substr(0, 5)), "truncated file"));
    CHECK(contains(error_of(good.substr(0, 40)), "runs past the end of the file"));
    std::string e = error_of(good.substr(0, good.size() - 3));
    CHECK(contains(e, "bad.safetensors"));
    CHECK(contains(e, "tensor 'b'"));
    CHECK(contains(e, "run past the end of the data"));
  }
  SUBCASE("a header length that lies") {
    std::string b = good;
    b[0] = static_cast<char>(b[0] + 4);  // header swallows part of the data
    CHECK(contains(error_of(b), "bad.safetensors"));
    b = good;
    b[6] = 1;  // ~2^48 bytes
    CHECK(contains(error_of(b), "larger than the limit"));
  }
  SUBCASE("corrupt JSON") {
    CHECK(contains(error_of(st_bytes(R"({"a":{"dtype":"F32",)", "")), "corrupt JSON"));
    CHECK(contains(error_of(st_bytes(R"({"a" {}})", "")), "corrupt JSON"));
    CHECK(contains(error_of(st_bytes("[1, 2]", "")), "does not start with '{'"));
    CHECK(contains(error_of(st_bytes(R"({"a":"x"} extra)", "")), "after the JSON value"));
    CHECK(contains(error_of(st_bytes(std::string(100, '{'), "")), "corrupt JSON"));
    std::string e = error_of(st_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                      raw_bytes<float>({1, 2})));
    CHECK(contains(e, "duplicate name \"a\""));
    CHECK(contains(
        error_of(st_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}})",
                          raw_bytes<float>({1}))),
        "unknown field \"extra\""));
    CHECK(contains(error_of(st_bytes(R"({"__metadata__":{"k":3}})", "")), "not a string"));
    CHECK(contains(error_of(st_bytes(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
                                     raw_bytes<float>({1}))),
                   "non-negative integers"));
  }
  SUBCASE("unsupported dtype") {
    std::string e = error_of(st_bytes(R"({"w":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})",
                                      raw_bytes<int32_t>({1, 2})));
    CHECK(contains(e, "bad.safetensors"));
    CHECK(contains(e, "tensor 'w'"));
    CHECK(contains(e, "unsupported dtype 'I32'"));
    CHECK(contains(error_of(st_bytes(R"({"w":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})",
                                     raw_bytes<int32_t>({1, 2}))),
                   "unsupported dtype 'U8'"));
  }
  SUBCASE("a shape that disagrees with its bytes") {
    std::string e = error_of(
        st_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", raw_bytes<float>({1, 2})));
    CHECK(contains(e, "tensor 'w'"));
    CHECK(contains(e, "needs 12 bytes"));
    CHECK(contains(
        error_of(st_bytes(
            R"({"w":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,8]}})",
            raw_bytes<float>({1, 2}))),
        "too large"));
  }
  SUBCASE("overlapping, gapped or partial byte ranges") {
    const std::string two = raw_bytes<float>({1, 2});
    CHECK(contains(error_of(st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                     two)),
                   "overlaps tensor 'a'"));
    CHECK(contains(
        error_of(st_bytes(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", two)),
        "gap of 4 unused bytes before tensor 'b'"));
    CHECK(contains(
        error_of(st_bytes(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", two)),
        "4 bytes at the end of the data belong to no tensor"));
    CHECK(contains(
        error_of(st_bytes(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", two)),
        "run backwards"));
  }
  SUBCASE("missing file") {
    CHECK_THROWS_WITH_AS(load_safetensors("no/such.safetensors"),
                         doctest::Contains("no/such.safetensors"), Error);
  }
}

TEST_CASE("safetensors: checksums of every tensor and of the metadata, checked on load") {
  CHECK(crc32_of("123456789", 9) == 0xCBF43926u);  // CRC-32's published check value
  CHECK(crc32_of("", 0) == 0u);
  TensorMap m;
  m["a"] = Tensor::from_vector({1, 2, 3, 4}, {4}, DType::f32);
  m["b"] = Tensor::from_vector({0.5}, {1}, DType::f64);
  const std::string good = encode_safetensors(m, {{"epoch", "2"}});
  uint64_t n;
  std::memcpy(&n, good.data(), 8);
  const SafetensorsContents c = parse_safetensors(good, "good");
  CHECK(c.metadata.size() == 1);  // the checksum entry is not handed out
  CHECK(c.metadata.at("epoch") == "2");
  // One bit flipped in tensor a's bytes (float32 data lies after b's 8 bytes).
  std::string bad = good;
  bad[8 + n + 8 + 5] ^= 0x10;
  CHECK_THROWS_WITH_AS(parse_safetensors(bad, "f.safetensors"),
                       doctest::Contains("f.safetensors: tensor 'a' does not match its checksum"),
                       Error);
  // The epoch digit of the metadata changed.
  bad = good;
  const size_t at = bad.find("\"epoch\":\"2\"");
  REQUIRE(at != std::string::npos);
  bad[at + 9] = '3';
  CHECK_THROWS_WITH_AS(parse_safetensors(bad, "f.safetensors"),
                       doctest::Contains("the metadata does not match its checksum"), Error);
  // A file from elsewhere (no checksum entry) loads as it is.
  std::string header = R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string file(8, '\0');
  file[0] = static_cast<char>(header.size());
  file += header + std::string("\x00\x00\x80\x3f", 4);
  const SafetensorsContents p = parse_safetensors(file, "plain");
  CHECK(p.tensors.at("x").to_vector() == std::vector<double>{1.0});
  CHECK(p.metadata.empty());
}
