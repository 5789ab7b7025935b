#include "data/pth.h"

#include <unordered_map>

#include "data/files.h"
#include "data/pickle.h"
#include "data/pth_objects.h"
#include "data/tar.h"
#include "data/zip.h"
#include "tensor/error.h"

namespace prm {

namespace {

using Kind = PickleValue::Kind;
using namespace pth;

// torch.save's legacy magic number 0x1950a86a20f9469cfc6c, as LONG1's little-endian bytes.
const char kLegacyMagic[] = "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
constexpr int64_t kLegacyProtocol = 1001;

// One of the small pickles around the object's (headers, storage and tensor records), which may
// name only the type tags given.
PickleValue small_pickle(std::string_view bytes, size_t* pos, PickleHeap& heap,
                         const std::string& name, const std::vector<std::string>& tags = {}) {
  TagRules rules(name, tags);
  return unpickle(bytes, pos, heap, rules, name);
}

// The system info dict of the legacy and tar formats: only little-endian files are read.
void check_sys_info(const PickleHeap& heap, const PickleValue& info, const std::string& name) {
  PRM_CHECK(info.kind == Kind::dict, name, ": the system info is not a dict (damaged file)");
  for (const auto& [k, v] : heap.entries(info))
    PRM_CHECK(k.kind != Kind::text || heap.text(k) != "little_endian" ||
                  (v.kind == Kind::boolean && v.i == 1),
              name, ": written on a big-endian machine: only little-endian files are supported");
}

// A little-endian int64 of a storage or tensor record.
int64_t read_i64(std::string_view b, size_t* pos, const std::string& name, const char* what) {
  PRM_CHECK(b.size() - *pos >= 8, name, ": the file ends inside ", what, " (truncated file)");
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[*pos + i]);
  *pos += 8;
  return static_cast<int64_t>(v);
}

// A storage's element count, then its bytes: how the legacy and tar formats store a storage.
void read_storage_bytes(std::string_view b, size_t* pos, StorageInfo& s, const std::string& name) {
  const int64_t count = read_i64(b, pos, name, "a storage's element count");
  PRM_CHECK(count >= 0 && static_cast<uint64_t>(count) == s.numel, name, ": storage '", s.key,
            "' holds ", count, " elements but the pickle says ", s.numel, " (damaged file)");
  PRM_CHECK(s.numel <= b.size() - *pos, name, ": storage '", s.key, "' needs ", s.numel,
            " elements but the file has ", b.size() - *pos, " bytes left (truncated file)");
  const uint64_t size = s.numel * s.type->element_size;  // no overflow: numel <= file size
  PRM_CHECK(size <= b.size() - *pos, name, ": storage '", s.key, "' needs ", size,
            " bytes but the file has ", b.size() - *pos, " left (truncated file)");
  s.bytes = b.substr(*pos, size);
  s.have_bytes = true;
  *pos += size;
}

// ---- zip: torch >= 1.6 ----

TensorMap parse_zip(std::string_view bytes, const std::string& file) {
  const std::string name = "pth: " + file;
  const std::vector<ArchiveEntry> entries = read_zip_entries(bytes, file);
  PRM_CHECK(!entries.empty(), name, ": an empty zip archive, not a torch.save file");
  const std::string& first = entries.front().name;
  const size_t slash = first.find('/');
  PRM_CHECK(slash != std::string::npos, name, ": a zip archive whose first entry '", first,
            "' is in no folder: not a torch.save file");
  const std::string prefix = first.substr(0, slash + 1);
  std::unordered_map<std::string, const ArchiveEntry*> by_name;
  for (const ArchiveEntry& e : entries) by_name[e.name] = &e;
  auto entry = [&](const std::string& leaf) -> const ArchiveEntry* {
    auto it = by_name.find(prefix + leaf);
    return it == by_name.end() ? nullptr : it->second;
  };
  if (const ArchiveEntry* order = entry("byteorder")) {
    const std::string_view text = zip_entry_bytes(bytes, *order, file);
    PRM_CHECK(text == "little", name, ": byte order '", text.substr(0, 16), "': only "
              "little-endian files are supported");
  }
  const ArchiveEntry* pickle = entry("data.pkl");
  PRM_CHECK(pickle, name, ": a zip archive with no '", prefix, "data.pkl': not a torch.save file ",
            "(a TorchScript archive holds constants.pkl and code/ instead)");

  Objects objects(name, Layout::zip);
  objects.find_bytes = [&](StorageInfo& s) {
    const ArchiveEntry* e = entry("data/" + s.key);
    if (!e) objects.fail(str_cat("storage '", s.key, "' has no entry '", prefix, "data/", s.key,
                                 "' in the archive"));
    uint64_t size;
    if (__builtin_mul_overflow(s.numel, s.type->element_size, &size) || size != e->size)
      objects.fail(str_cat("storage '", s.key, "' should hold ", s.numel, " elements of ",
                           s.type->global, " but its entry has ", e->size, " bytes"));
    s.bytes = zip_entry_bytes(bytes, *e, file);
    s.have_bytes = true;
  };
  const std::string_view program = zip_entry_bytes(bytes, *pickle, file);
  PickleHeap heap;
  size_t pos = 0;
  const PickleValue root = unpickle(program, &pos, heap, objects, name);
  PRM_CHECK(pos == program.size(), name, ": ", program.size() - pos,
            " bytes follow the pickle in data.pkl (damaged file)");
  return state_dict_tensors(heap, objects, root, bytes.size(), name);
}

// ---- legacy: torch 0.1.10 to 1.5, and later with _use_new_zipfile_serialization=False ----

TensorMap parse_legacy(std::string_view bytes, const std::string& file) {
  const std::string name = "pth: " + file;
  PickleHeap heap;
  size_t pos = 0;
  const PickleValue magic = small_pickle(bytes, &pos, heap, name);
  PRM_CHECK(magic.kind == Kind::big_integer && heap.text(magic) == std::string(kLegacyMagic, 10),
            name, ": not a torch.save file: it starts with a pickle, but not torch's magic number");
  const PickleValue protocol = small_pickle(bytes, &pos, heap, name);
  PRM_CHECK(protocol.kind == Kind::integer && protocol.i == kLegacyProtocol, name,
            ": torch.save legacy protocol ", protocol.kind == Kind::integer ? protocol.i : -1,
            ", not 1001");
  check_sys_info(heap, small_pickle(bytes, &pos, heap, name), name);

  Objects objects(name, Layout::legacy);
  const PickleValue root = unpickle(bytes, &pos, heap, objects, name);
  const PickleValue keys = small_pickle(bytes, &pos, heap, name);
  PRM_CHECK(keys.kind == Kind::list, name, ": the storage key list is missing (damaged file)");
  for (const PickleValue& k : heap.items(keys)) {
    PRM_CHECK(k.kind == Kind::text, name, ": a storage key is not a string (damaged file)");
    auto it = objects.storage_by_key.find(heap.text(k));
    PRM_CHECK(it != objects.storage_by_key.end(), name, ": storage '", heap.text(k),
              "' is listed but no tensor uses it (damaged file)");
    StorageInfo& s = objects.storages[it->second];
    PRM_CHECK(!s.have_bytes, name, ": storage '", s.key, "' is listed twice");
    read_storage_bytes(bytes, &pos, s, name);
  }
  PRM_CHECK(pos == bytes.size(), name, ": ", bytes.size() - pos,
            " bytes follow the last storage (damaged file)");
  for (StorageInfo& s : objects.storages)  // views take their bytes from the storage they view
    if (s.root >= 0 && objects.storages[s.root].have_bytes) {
      const uint64_t size = s.type->element_size;
      s.bytes = objects.storages[s.root].bytes.substr(s.view_offset * size, s.numel * size);
      s.have_bytes = true;
    }
  return state_dict_tensors(heap, objects, root, bytes.size(), name);
}

// ---- tar: torch before 0.1.10 ----

// The `storages` member: their count; per storage a pickled (key, location, storage class), its
// element count and bytes; then the list of views (view key, storage key, offset, numel).
void read_tar_storages(std::string_view b, PickleHeap& heap, Objects& objects,
                       const std::string& name) {
  size_t pos = 0;
  const PickleValue count = small_pickle(b, &pos, heap, name);
  PRM_CHECK(count.kind == Kind::integer && count.i >= 0 &&
                static_cast<uint64_t>(count.i) <= b.size(),
            name, ": the storage count is not a small int (damaged file)");
  for (int64_t i = 0; i < count.i; ++i) {
    const PickleValue record = small_pickle(b, &pos, heap, name, storage_globals());
    PRM_CHECK(record.kind == Kind::tuple && heap.items(record).size() == 3 &&
                  heap.items(record)[2].kind == Kind::global,
              name, ": a storage record is not (key, location, type) (damaged file)");
    const auto& r = heap.items(record);
    const std::string key = key_text(heap, r[0], name);
    PRM_CHECK(objects.find_storage(key) < 0, name, ": storage '", key, "' is described twice");
    size_t peek = pos;  // the element count comes first: the storage is described by it
    const int64_t numel = read_i64(b, &peek, name, "a storage's element count");
    PRM_CHECK(numel >= 0, name, ": storage '", key, "' has a negative element count");
    StorageInfo& s = objects.storages[objects.storage(key, storage_type(heap.text(r[2])),
                                                  static_cast<uint64_t>(numel))];
    read_storage_bytes(b, &pos, s, name);
  }
  const PickleValue views = small_pickle(b, &pos, heap, name);
  PRM_CHECK(views.kind == Kind::list, name, ": the storage view list is missing (damaged file)");
  for (const PickleValue& v : heap.items(views)) {
    PRM_CHECK(v.kind == Kind::tuple && heap.items(v).size() == 4, name,
              ": a storage view is not (key, storage, offset, size) (damaged file)");
    const auto& f = heap.items(v);
    const int64_t root = objects.find_storage(key_text(heap, f[1], name));
    PRM_CHECK(root >= 0 && objects.storages[root].root < 0, name, ": storage view '",
              key_text(heap, f[0], name), "' views a storage the file lacks");
    PRM_CHECK(f[2].kind == Kind::integer && f[3].kind == Kind::integer, name,
              ": a storage view's offset or size is not an int (damaged file)");
    objects.storage_view(key_text(heap, f[0], name), static_cast<size_t>(root), f[2].i, f[3].i);
  }
  PRM_CHECK(pos == b.size(), name, ": ", b.size() - pos,
            " bytes follow the storages (damaged file)");
}

// The `tensors` member: their count; per tensor a pickled (key, storage key, tensor class), then
// int32 ndim, 4 bytes of padding, ndim int64 sizes, ndim int64 strides, the int64 offset.
void read_tar_tensors(std::string_view b, PickleHeap& heap, Objects& objects,
                      const std::string& name) {
  size_t pos = 0;
  const PickleValue count = small_pickle(b, &pos, heap, name);
  PRM_CHECK(count.kind == Kind::integer && count.i >= 0 &&
                static_cast<uint64_t>(count.i) <= b.size(),
            name, ": the tensor count is not a small int (damaged file)");
  for (int64_t i = 0; i < count.i; ++i) {
    const PickleValue record = small_pickle(b, &pos, heap, name, tensor_globals());
    PRM_CHECK(record.kind == Kind::tuple && heap.items(record).size() == 3 &&
                  heap.items(record)[2].kind == Kind::global,
              name, ": a tensor record is not (key, storage, type) (damaged file)");
    const auto& r = heap.items(record);
    const std::string key = key_text(heap, r[0], name);
    const int64_t storage = objects.find_storage(key_text(heap, r[1], name));
    PRM_CHECK(storage >= 0, name, ": tensor '", key, "' uses storage '", key_text(heap, r[1], name),
              "', which the file lacks");
    const StorageType* type = storage_type_of_tensor(heap.text(r[2]));
    PRM_CHECK(type && type->source == objects.storages[storage].type->source, name, ": tensor '",
              key, "' is a ", heap.text(r[2]), " over a ", objects.storages[storage].type->global);
    const int64_t header = read_i64(b, &pos, name, "a tensor's header");
    const int64_t ndim = static_cast<int32_t>(header & 0xFFFFFFFF);  // then 4 bytes of padding
    PRM_CHECK(ndim >= 0 && ndim <= 16, name, ": tensor '", key, "' has ", ndim,
              " dimensions (at most 16)");
    TensorRef t;
    t.storage = static_cast<size_t>(storage);
    for (int64_t d = 0; d < ndim; ++d) t.sizes.push_back(read_i64(b, &pos, name, "a tensor"));
    for (int64_t d = 0; d < ndim; ++d) t.strides.push_back(read_i64(b, &pos, name, "a tensor"));
    const int64_t offset = read_i64(b, &pos, name, "a tensor");
    PRM_CHECK(offset >= 0, name, ": tensor '", key, "' has a negative storage offset");
    t.offset = static_cast<uint64_t>(offset);
    check_dims(objects, t.sizes, t.strides);
    objects.add_tensor(key, std::move(t));
  }
  PRM_CHECK(pos == b.size(), name, ": ", b.size() - pos,
            " bytes follow the tensors (damaged file)");
}

TensorMap parse_tar(std::string_view bytes, const std::string& file) {
  const std::string name = "pth: " + file;
  std::unordered_map<std::string, std::string_view> members;
  for (const ArchiveEntry& e : read_tar_entries(bytes, file))
    members[e.name] = bytes.substr(e.offset, e.size);
  auto member = [&](const char* m) {
    auto it = members.find(m);
    PRM_CHECK(it != members.end(), name, ": a tar archive with no '", m, "' member: not a "
              "torch.save file");
    return it->second;
  };
  PickleHeap heap;
  if (members.count("sys_info")) {
    size_t pos = 0;
    check_sys_info(heap, small_pickle(members["sys_info"], &pos, heap, name), name);
  }
  Objects objects(name, Layout::tar);
  read_tar_storages(member("storages"), heap, objects, name);
  read_tar_tensors(member("tensors"), heap, objects, name);
  const std::string_view program = member("pickle");
  size_t pos = 0;
  const PickleValue root = unpickle(program, &pos, heap, objects, name);
  PRM_CHECK(pos == program.size(), name, ": ", program.size() - pos,
            " bytes follow the pickle (damaged file)");
  return state_dict_tensors(heap, objects, root, bytes.size(), name);
}

}  // namespace

bool is_pth_zip(std::string_view bytes) {
  return bytes.substr(0, 4) == std::string_view("PK\3\4", 4) ||
         bytes.substr(0, 4) == std::string_view("PK\5\6", 4);
}

bool is_pth_tar(std::string_view bytes) { return is_tar(bytes); }

bool is_pth_legacy(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x80 &&
         bytes[1] >= 2 && bytes[1] <= 5 && !(bytes.size() > 8 && bytes[8] == '{');
}

TensorMap parse_pth(std::string_view bytes, const std::string& name) {
  if (is_pth_zip(bytes)) return parse_zip(bytes, name);
  if (is_tar(bytes)) return parse_tar(bytes, name);
  PRM_CHECK(is_pth_legacy(bytes), "pth: ", name, ": not a torch.save file (neither a zip or tar ",
            "archive nor a pickle with torch's magic number)");
  return parse_legacy(bytes, name);
}

TensorMap load_pth(const std::string& path) { return parse_pth(read_file_bytes(path), path); }

const std::vector<std::string>& pth_allowed_globals() {
  static const std::vector<std::string> globals = [] {
    std::vector<std::string> g = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                  "torch._utils._rebuild_tensor",
                                  "torch._utils._rebuild_parameter"};
    for (const std::string& s : storage_globals()) g.push_back(s);
    return g;
  }();
  return globals;
}

}  // namespace prm
