#include "data/safetensors.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "data/files.h"
#include "data/json.h"

namespace prm {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // as the reference implementation
// Nesting allowed in the header; {name: {"shape": [...]}} needs 3.
constexpr int kMaxJsonDepth = 16;

// ---- Element types ----

enum class FileDType { f32, f64, i64, f16, bf16 };

bool file_dtype_from_name(const std::string& s, FileDType& out) {
  if (s == "F32")
    out = FileDType::f32;
  else if (s == "F64")
    out = FileDType::f64;
  else if (s == "I64")
    out = FileDType::i64;
  else if (s == "F16")
    out = FileDType::f16;
  else if (s == "BF16")
    out = FileDType::bf16;
  else
    return false;
  return true;
}
size_t file_dtype_size(FileDType t) {
  return t == FileDType::f16 || t == FileDType::bf16 ? 2 : t == FileDType::f32 ? 4 : 8;
}
const char* file_dtype_name(DType t) {
  return t == DType::f32 ? "F32" : t == DType::f64 ? "F64" : "I64";
}

Tensor make_tensor(const char* data, const Shape& shape, FileDType t) {
  switch (t) {
    case FileDType::f32:
      return Tensor::from_data(data, shape, DType::f32);
    case FileDType::f64:
      return Tensor::from_data(data, shape, DType::f64);
    case FileDType::i64:
      return Tensor::from_data(data, shape, DType::i64);
    default:
      break;
  }
  Tensor out = Tensor::empty(shape, DType::f32);
  float* o = out.data<float>();
  for (int64_t i = 0; i < out.numel(); ++i) {
    uint16_t h;
    std::memcpy(&h, data + 2 * i, 2);
    o[i] = t == FileDType::f16 ? half_to_float(h) : bf16_to_float(h);
  }
  return out;
}

// ---- Header validation ----

uint64_t json_uint(const Json& v, const std::string& file, const std::string& tensor,
                   const char* what) {
  uint64_t n = 0;
  PRM_CHECK(v.get_uint64(n), "safetensors: ", file, ": tensor '", tensor, "': ", what,
            " must hold non-negative integers, found ",
            v.is_number() ? "'" + v.number_text() + "'" : json_kind_name(v.kind()));
  return n;
}

struct Entry {
  std::string name;
  FileDType dtype;
  Shape shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& name, const Json& v, const std::string& file) {
  const std::string where = str_cat("safetensors: ", file, ": tensor '", name, "': ");
  PRM_CHECK(v.is_object(), where, "expected an object");
  const Json *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
  for (const auto& [key, value] : v.fields()) {
    if (key == "dtype")
      dtype = &value;
    else if (key == "shape")
      shape = &value;
    else if (key == "data_offsets")
      offsets = &value;
    else
      throw Error(str_cat(where, "unknown field \"", key, "\""));
  }
  PRM_CHECK(dtype && shape && offsets, where, "needs \"dtype\", \"shape\" and \"data_offsets\"");
  Entry e{name, FileDType::f32, {}, 0, 0};
  PRM_CHECK(dtype->is_string(), where, "\"dtype\" must be a string");
  PRM_CHECK(file_dtype_from_name(dtype->as_string(), e.dtype), where, "unsupported dtype '",
            dtype->as_string(),
            "' (supported: F32, F64, I64; F16 and BF16 are converted to float32)");
  PRM_CHECK(shape->is_array() && shape->size() <= 16, where,
            "\"shape\" must be an array of at most 16 dimensions");
  uint64_t bytes = file_dtype_size(e.dtype);
  for (const Json& d : shape->items()) {
    const uint64_t n = json_uint(d, file, name, "\"shape\"");
    PRM_CHECK(n <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
                  (n == 0 || bytes <= std::numeric_limits<uint64_t>::max() / n),
              where, "shape is too large");
    bytes *= n;
    e.shape.push_back(static_cast<int64_t>(n));
  }
  PRM_CHECK(offsets->is_array() && offsets->size() == 2, where,
            "\"data_offsets\" must be [begin, end]");
  e.begin = json_uint(offsets->items()[0], file, name, "\"data_offsets\"");
  e.end = json_uint(offsets->items()[1], file, name, "\"data_offsets\"");
  PRM_CHECK(e.begin <= e.end, where, "data_offsets [", e.begin, ", ", e.end, "] run backwards");
  PRM_CHECK(e.end - e.begin == bytes, where, "shape ", shape_str(e.shape), " ", dtype->as_string(),
            " needs ", bytes, " bytes but data_offsets [", e.begin, ", ", e.end, "] hold ",
            e.end - e.begin);
  return e;
}

// The byte ranges, in order of their begin, must tile [0, buffer) exactly.
void check_layout(std::vector<Entry>& entries, uint64_t buffer, const std::string& file) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    PRM_CHECK(e.end <= buffer, "safetensors: ", file, ": tensor '", e.name, "': data_offsets [",
              e.begin, ", ", e.end, "] run past the end of the data (", buffer,
              " bytes): truncated file or lying header");
    PRM_CHECK(e.begin >= at, "safetensors: ", file, ": tensor '", e.name, "' (bytes [", e.begin,
              ", ", e.end, ")) overlaps tensor '", previous ? previous->name : "", "'");
    PRM_CHECK(e.begin == at, "safetensors: ", file, ": a gap of ", e.begin - at,
              " unused bytes before tensor '", e.name, "'");
    at = e.end;
    previous = &e;
  }
  PRM_CHECK(at == buffer, "safetensors: ", file, ": ", buffer - at,
            " bytes at the end of the data belong to no tensor");
}

}  // namespace

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal half: normalise
    exp = 113;
    while (!(mant & 0x400)) {
      mant <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}


uint32_t crc32_of(const void* data, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

namespace {

std::string hex32(uint32_t v) {
  char text[9];
  std::snprintf(text, sizeof text, "%08x", v);
  return text;
}

// The metadata entries other than the checksum's, as "key\0value\0" in key order.
uint32_t metadata_crc(const Metadata& metadata) {
  std::string all;
  for (const auto& [k, v] : metadata) {
    if (k == kChecksumKey) continue;
    all += k;
    all.push_back('\0');
    all += v;
    all.push_back('\0');
  }
  return crc32_of(all.data(), all.size());
}

// Checks a file's "prm.crc32" entry against its metadata and tensor bytes; removes the entry.
void verify_checksums(SafetensorsContents& out, const std::vector<Entry>& entries,
                      const char* data, const std::string& name) {
  auto it = out.metadata.find(kChecksumKey);
  if (it == out.metadata.end()) return;
  const Json sums = parse_json(it->second, str_cat("safetensors: ", name, ": ", kChecksumKey));
  PRM_CHECK(sums.is_object(), "safetensors: ", name, ": ", kChecksumKey, " is not an object");
  const Json* meta = sums.find("__metadata__");
  PRM_CHECK(meta && meta->is_string() && meta->as_string() == hex32(metadata_crc(out.metadata)),
            "safetensors: ", name, ": the metadata does not match its checksum (the file is "
            "damaged: a changed byte in the header)");
  size_t checked = 0;
  for (const Entry& e : entries) {
    const Json* want = sums.find(e.name);
    PRM_CHECK(want && want->is_string(), "safetensors: ", name, ": tensor '", e.name,
              "' has no checksum (the file is damaged, or a tensor was added by another tool)");
    PRM_CHECK(want->as_string() == hex32(crc32_of(data + e.begin, e.end - e.begin)),
              "safetensors: ", name, ": tensor '", e.name, "' does not match its checksum (the "
              "file is damaged: bit rot or an edited byte)");
    ++checked;
  }
  PRM_CHECK(checked + 1 == sums.fields().size(), "safetensors: ", name, ": the checksums name ",
            sums.fields().size() - 1, " tensors but the file has ", checked,
            " (the file is damaged)");
  out.metadata.erase(it);
}

}  // namespace

SafetensorsContents parse_safetensors(const std::string& bytes, const std::string& name) {
  PRM_CHECK(bytes.size() >= 8, "safetensors: ", name, ": truncated file (", bytes.size(),
            " bytes, the header length alone takes 8)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  PRM_CHECK(n <= kMaxHeaderBytes, "safetensors: ", name, ": header length ", n,
            " is larger than the limit (", kMaxHeaderBytes, ") : corrupt file?");
  PRM_CHECK(n <= bytes.size() - 8, "safetensors: ", name, ": header length ", n,
            " runs past the end of the file (", bytes.size(), " bytes): truncated or corrupt");
  const std::string header = bytes.substr(8, n);
  PRM_CHECK(!header.empty() && header[0] == '{', "safetensors: ", name,
            ": the header does not start with '{': corrupt file?");
  const Json root = parse_json(header, str_cat("safetensors: ", name, ": header"), kMaxJsonDepth);
  PRM_CHECK(root.is_object(), "safetensors: ", name, ": the header is not a JSON object");

  SafetensorsContents out;
  std::vector<Entry> entries;
  for (const auto& [key, value] : root.fields()) {
    if (key == "__metadata__") {
      PRM_CHECK(value.is_object(), "safetensors: ", name,
                ": \"__metadata__\" must be an object of strings");
      for (const auto& [mk, mv] : value.fields()) {
        PRM_CHECK(mv.is_string(), "safetensors: ", name, ": \"__metadata__\" entry '", mk,
                  "' is not a string");
        out.metadata[mk] = mv.as_string();
      }
      continue;
    }
    entries.push_back(parse_entry(key, value, name));
  }
  const uint64_t buffer = bytes.size() - 8 - n;
  check_layout(entries, buffer, name);
  const char* data = bytes.data() + 8 + n;
  verify_checksums(out, entries, data, name);
  for (const Entry& e : entries)
    out.tensors[e.name] = make_tensor(data + e.begin, e.shape, e.dtype);
  return out;
}

std::string encode_safetensors(const TensorMap& tensors, const Metadata& metadata) {
  // 8-byte dtypes first so that every tensor is aligned to its element size.
  std::vector<const std::pair<const std::string, Tensor>*> order;
  for (const auto& kv : tensors) {
    PRM_CHECK(kv.first != "__metadata__", "safetensors: '__metadata__' is not a tensor name");
    PRM_CHECK(kv.second.defined(), "safetensors: tensor '", kv.first, "' is undefined");
    order.push_back(&kv);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return dtype_size(a->second.dtype()) > dtype_size(b->second.dtype());
  });
  Json root = Json::object();
  Json sums = Json::object();
  sums.set("__metadata__", hex32(metadata_crc(metadata)));
  std::string data;
  for (const auto* kv : order) {
    const Tensor host = kv->second.detach().to(Device::cpu);
    const size_t begin = data.size();
    data.append(static_cast<const char*>(host.raw_data()), host.numel() * dtype_size(host.dtype()));
    sums.set(kv->first, hex32(crc32_of(data.data() + begin, data.size() - begin)));
    Json shape = Json::array();
    for (int64_t d : host.shape()) shape.push_back(d);
    root.set(kv->first, Json::object({{"dtype", file_dtype_name(host.dtype())},
                                      {"shape", std::move(shape)},
                                      {"data_offsets", Json::array({begin, data.size()})}}));
  }
  Json meta = Json::object();
  for (const auto& [k, v] : metadata)
    if (k != kChecksumKey) meta.set(k, v);
  meta.set(kChecksumKey, write_json(sums));
  root.set("__metadata__", meta);
  std::string header = write_json(root);
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

SafetensorsContents load_safetensors(const std::string& path) {
  return parse_safetensors(read_file_bytes(path), path);
}

void save_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata) {
  write_file_atomic(path, encode_safetensors(tensors, metadata));
}

}  // namespace prm
