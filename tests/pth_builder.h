// torch.save files built byte by byte, for tests/test_pth.cpp: a pickle written opcode by opcode
// (the opcodes Python's pickler writes at protocol 2), a zip archive of stored entries, and the
// two torch.save layouts around them. Small enough to read against docs/weights.md; every bad
// file of the tests is one of these with one thing changed.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "data/safetensors.h"  // crc32_of

namespace pth_builder {

inline std::string le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

struct Pickle {
  std::string out = std::string("\x80\x02", 2);
  Pickle& op(unsigned char c) {
    out.push_back(static_cast<char>(c));
    return *this;
  }
  Pickle& raw(const std::string& bytes) {
    out += bytes;
    return *this;
  }
  Pickle& mark() { return op('('); }
  Pickle& tuple() { return op('t'); }
  Pickle& text(const std::string& s) { return op('X').raw(le(s.size(), 4)).raw(s); }
  Pickle& py2_text(const std::string& s) { return op('U').raw(le(s.size(), 1)).raw(s); }
  Pickle& integer(int64_t v) {  // LONG1 of 8 bytes: any value
    return op(0x8a).raw(le(8, 1)).raw(le(static_cast<uint64_t>(v), 8));
  }
  Pickle& global(const std::string& module, const std::string& name) {
    return op('c').raw(module + "\n" + name + "\n");
  }
  Pickle& ints(const std::vector<int64_t>& v) {
    mark();
    for (int64_t x : v) integer(x);
    return tuple();
  }
  Pickle& empty_ordered_dict() { return global("collections", "OrderedDict").op(')').op('R'); }
  std::string done() const { return out + "."; }
};

// One tensor of a state_dict: _rebuild_tensor_v2 over the storage `key`.
struct TensorSpec {
  std::string name;
  std::string key = "0";
  std::string type = "FloatStorage";
  int64_t numel = 4;  // the storage's element count, as the persistent id says
  int64_t offset = 0;
  std::vector<int64_t> size = {4}, stride = {1};
};

// The persistent id of a storage: ('storage', torch.<type>, key, 'cpu', numel[, None]).
inline void storage_id(Pickle& p, const TensorSpec& t, bool legacy) {
  p.mark().text("storage").global("torch", t.type).text(t.key).text("cpu").integer(t.numel);
  if (legacy) p.op('N');
  p.tuple().op('Q');
}

inline void rebuild_tensor(Pickle& p, const TensorSpec& t, bool legacy) {
  p.global("torch._utils", "_rebuild_tensor_v2").mark();
  storage_id(p, t, legacy);
  p.integer(t.offset).ints(t.size).ints(t.stride).op(0x89).empty_ordered_dict().tuple().op('R');
}

// An OrderedDict state_dict of the tensors, as torch.save pickles one.
inline std::string state_dict_pickle(const std::vector<TensorSpec>& tensors, bool legacy) {
  Pickle p;
  p.empty_ordered_dict().mark();
  for (const TensorSpec& t : tensors) {
    p.text(t.name);
    rebuild_tensor(p, t, legacy);
  }
  return p.op('u').done();
}

// A zip archive of stored entries (no ZIP64, no data descriptors), in the given order; with_crc
// false writes 0 for every CRC-32, as torch >= 2.4 does after set_crc32_options(False).
inline std::string zip_stored(const std::vector<std::pair<std::string, std::string>>& entries,
                              bool with_crc = true) {
  std::string out, central;
  for (const auto& [name, data] : entries) {
    const uint32_t crc = with_crc ? prm::crc32_of(data.data(), data.size()) : 0;
    const std::string common = le(0, 2) + le(0, 2) + le(0, 4) + le(crc, 4) + le(data.size(), 4) +
                               le(data.size(), 4) + le(name.size(), 2) + le(0, 2);
    central += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + common + le(0, 2) + le(0, 2) +
               le(0, 2) + le(0, 4) + le(out.size(), 4) + name;
    out += le(0x04034b50, 4) + le(20, 2) + common + name + data;
  }
  const size_t offset = out.size();
  return out + central + le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(entries.size(), 2) +
         le(entries.size(), 2) + le(central.size(), 4) + le(offset, 4) + le(0, 2);
}

// torch.save's zip layout: archive/data.pkl, archive/data/<key> for each storage, archive/version.
inline std::string pth_zip(const std::string& pickle,
                           const std::vector<std::pair<std::string, std::string>>& storages,
                           bool with_crc = true) {
  std::vector<std::pair<std::string, std::string>> entries = {{"archive/data.pkl", pickle}};
  for (const auto& [key, bytes] : storages) entries.emplace_back("archive/data/" + key, bytes);
  entries.emplace_back("archive/version", "3\n");
  return zip_stored(entries, with_crc);
}

// The legacy layout: magic number, protocol 1001, system info, the object's pickle, the storage
// keys, then each storage as an int64 element count and its bytes.
struct LegacyStorage {
  std::string key;
  int64_t numel;
  std::string bytes;
};
inline std::string pth_legacy(const std::string& pickle, const std::vector<LegacyStorage>& storages,
                              bool little_endian = true) {
  std::string out("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
  out += std::string("\x80\x02M\xe9\x03.", 6);
  Pickle info;
  info.op('}').text("little_endian").op(little_endian ? 0x88 : 0x89).op('s');
  out += info.done() + pickle;
  Pickle keys;
  keys.op(']').mark();
  for (const LegacyStorage& s : storages) keys.text(s.key);
  out += keys.op('e').done();
  for (const LegacyStorage& s : storages) out += le(static_cast<uint64_t>(s.numel), 8) + s.bytes;
  return out;
}

// A ustar archive of regular files, as Python's tarfile writes one (without pax headers).
inline std::string tar_archive(const std::vector<std::pair<std::string, std::string>>& members) {
  std::string out;
  for (const auto& [name, data] : members) {
    std::string h(512, '\0');
    h.replace(0, name.size(), name);
    char field[16];
    std::snprintf(field, sizeof field, "%011o", static_cast<unsigned>(data.size()));
    h.replace(100, 7, "0000644");
    h.replace(124, 11, field);
    h.replace(136, 11, "13400000000");
    h[156] = '0';
    h.replace(257, 8, std::string("ustar\0" "00", 8));
    h.replace(148, 8, "        ");
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(field, sizeof field, "%06o", sum);
    h.replace(148, 7, std::string(field, 6) + '\0');
    out += h + data + std::string((512 - data.size() % 512) % 512, '\0');
  }
  return out + std::string(1024, '\0');
}

// torch.save before 0.1.10: one tensor "w" (key 1) over storage "s", in a tar archive.
struct TarSpec {
  std::string tensor_type = "FloatTensor", storage_type = "FloatStorage";
  std::string tensor_storage = "s";  // the storage (or view) the tensor's record names
  int64_t numel = 4;  // the storage's element count
  std::string bytes;  // its bytes
  std::vector<int64_t> size = {4}, stride = {1};
  int64_t offset = 0;
  std::string views = "]";  // the opcodes of the storage view list
};
inline std::string pth_tar(const TarSpec& t) {
  Pickle one, record, views, tensor, pickle;
  one.integer(1);
  record.mark().text("s").text("cpu").global("torch", t.storage_type).tuple();
  views.raw(t.views);
  std::string storages = one.done() + record.done() + le(t.numel, 8) + t.bytes + views.done();
  tensor.mark().integer(1).text(t.tensor_storage).global("torch", t.tensor_type).tuple();
  std::string tensors = one.done() + tensor.done() + le(t.size.size(), 4) + le(0, 4);
  for (int64_t d : t.size) tensors += le(static_cast<uint64_t>(d), 8);
  for (int64_t d : t.stride) tensors += le(static_cast<uint64_t>(d), 8);
  tensors += le(static_cast<uint64_t>(t.offset), 8);
  pickle.empty_ordered_dict().text("w").text("1").op('Q').op('s');
  return tar_archive({{"pickle", pickle.done()}, {"tensors", tensors}, {"storages", storages}});
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
  std::string s(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(&s[0], v.data(), s.size());
  return s;
}

}  // namespace pth_builder
