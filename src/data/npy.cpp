#include "data/npy.h"

#include <cctype>
#include <cstring>
#include <limits>
#include <sstream>

#include "data/files.h"

namespace prm {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

bool host_is_little_endian() {
  const uint16_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

// The header is a Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// This parser accepts exactly that grammar: string keys; values that are strings, True/False,
// or tuples of non-negative integers.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& file) : s_(text), file_(file) {}

  void parse(std::string& descr, bool& fortran, Shape& shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') {
        ++pos_;
        break;
      }
      const std::string key = parse_string();
      expect(':');
      skip_space();
      if (key == "descr") {
        descr = parse_string();
        have_descr = true;
      } else if (key == "fortran_order") {
        fortran = parse_bool();
        have_fortran = true;
      } else if (key == "shape") {
        shape = parse_tuple();
        have_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}');
      break;
    }
    skip_space();
    if (pos_ != s_.size()) fail("unexpected text after the header dict");
    if (!have_descr || !have_fortran || !have_shape)
      fail("the header must have 'descr', 'fortran_order' and 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(str_cat("npy: ", file_, ": bad header (", what, " at offset ", pos_, "): ", s_));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(str_cat("expected '", c, "'"));
    ++pos_;
  }
  std::string parse_string() {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a string");
    const size_t end = s_.find(quote, pos_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return out;
  }
  bool parse_bool() {
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  Shape parse_tuple() {
    expect('(');
    Shape shape;
    while (true) {
      skip_space();
      if (peek() == ')') {
        ++pos_;
        break;
      }
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a dimension");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        const int d = s_[pos_++] - '0';
        if (v > (std::numeric_limits<int64_t>::max() - d) / 10) fail("dimension too large");
        v = v * 10 + d;
      }
      if (peek() == 'L') ++pos_;  // Python 2 long suffix
      shape.push_back(v);
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect(')');
      break;
    }
    return shape;
  }

  const std::string& s_;
  const std::string& file_;
  size_t pos_ = 0;
};

DType dtype_from_descr(const std::string& descr, const std::string& file) {
  if (descr == "<f4") return DType::f32;
  if (descr == "<f8") return DType::f64;
  if (descr == "<i8") return DType::i64;
  if (descr.size() == 3 && descr[0] == '>')
    throw Error(str_cat("npy: ", file, ": big-endian data ('", descr,
                        "') is not supported; save it little-endian"));
  throw Error(str_cat("npy: ", file, ": unsupported dtype '", descr,
                      "' (supported: '<f4' float32, '<f8' float64, '<i8' int64)"));
}

const char* descr_of(DType t) { return t == DType::f32 ? "<f4" : t == DType::f64 ? "<f8" : "<i8"; }

uint32_t read_le(const std::string& b, size_t at, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}

}  // namespace

Tensor parse_npy(const std::string& bytes, const std::string& name) {
  PRM_CHECK(host_is_little_endian(), "npy: ", name, ": this reader needs a little-endian host");
  PRM_CHECK(bytes.size() >= kMagicLen + 2 && bytes.compare(0, kMagicLen, kMagic, kMagicLen) == 0,
            "npy: ", name, ": not a .npy file (bad magic string)");
  const int major = static_cast<unsigned char>(bytes[6]);
  const int minor = static_cast<unsigned char>(bytes[7]);
  PRM_CHECK((major == 1 || major == 2) && minor == 0, "npy: ", name,
            ": unsupported format version ", major, ".", minor, " (supported: 1.0, 2.0)");
  const size_t len_bytes = major == 1 ? 2 : 4;
  const size_t prefix = kMagicLen + 2 + len_bytes;
  PRM_CHECK(bytes.size() >= prefix, "npy: ", name, ": truncated header (file is ", bytes.size(),
            " bytes)");
  const size_t header_len = read_le(bytes, kMagicLen + 2, static_cast<int>(len_bytes));
  PRM_CHECK(header_len <= bytes.size() - prefix, "npy: ", name, ": truncated header (header says ",
            header_len, " bytes, file has ", bytes.size() - prefix, " after the prefix)");
  const std::string header = bytes.substr(prefix, header_len);
  PRM_CHECK(!header.empty() && header.back() == '\n', "npy: ", name,
            ": bad header (does not end with a newline)");

  std::string descr;
  bool fortran = false;
  Shape shape;
  HeaderParser(header, name).parse(descr, fortran, shape);
  const DType dtype = dtype_from_descr(descr, name);
  PRM_CHECK(!fortran, "npy: ", name, ": Fortran-order arrays are not supported; save with C order");

  // numel * itemsize, refusing any product that overflows (a header lying about the size).
  const size_t item = dtype_size(dtype);
  size_t expected = item;
  for (int64_t d : shape) {
    PRM_CHECK(d == 0 || expected <= std::numeric_limits<size_t>::max() / static_cast<size_t>(d),
              "npy: ", name, ": shape ", shape_str(shape), " is too large");
    expected *= static_cast<size_t>(d);
  }
  const size_t available = bytes.size() - prefix - header_len;
  PRM_CHECK(available >= expected, "npy: ", name, ": truncated data: shape ", shape_str(shape), " ",
            dtype_name(dtype), " needs ", expected, " bytes, file has ", available);
  PRM_CHECK(available == expected, "npy: ", name, ": header says shape ", shape_str(shape), " ",
            dtype_name(dtype), " (", expected, " bytes) but the file has ", available,
            " bytes of data");
  return Tensor::from_data(bytes.data() + prefix + header_len, shape, dtype, Device::cpu);
}

std::string encode_npy(const Tensor& tensor) {
  PRM_CHECK(host_is_little_endian(), "npy: this writer needs a little-endian host");
  std::ostringstream dict;
  dict << "{'descr': '" << descr_of(tensor.dtype()) << "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < tensor.shape().size(); ++i)
    dict << tensor.shape()[i]
         << (tensor.shape().size() == 1      ? ","
             : i + 1 < tensor.shape().size() ? ", "
                                             : "");
  dict << "), }";
  std::string header = dict.str();
  // Pad with spaces, end with '\n', so that the data starts on a 64-byte boundary.
  const bool v2 = header.size() + 1 + kMagicLen + 4 > 65535;
  const size_t prefix = kMagicLen + 2 + (v2 ? 4 : 2);
  const size_t total = (prefix + header.size() + 1 + 63) / 64 * 64;
  header.append(total - prefix - header.size() - 1, ' ');
  header.push_back('\n');

  std::string out(kMagic, kMagicLen);
  out.push_back(static_cast<char>(v2 ? 2 : 1));
  out.push_back(0);
  const uint32_t len = static_cast<uint32_t>(header.size());
  for (size_t i = 0; i < (v2 ? 4u : 2u); ++i)
    out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  out += header;
  const Tensor host = tensor.detach().to(Device::cpu);
  out.append(static_cast<const char*>(host.raw_data()), host.numel() * dtype_size(host.dtype()));
  return out;
}

Tensor load_npy(const std::string& path) { return parse_npy(read_file_bytes(path), path); }

void save_npy(const std::string& path, const Tensor& tensor) {
  write_file_atomic(path, encode_npy(tensor));
}

}  // namespace prm
