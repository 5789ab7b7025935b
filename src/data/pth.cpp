#include "data/pth.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_map>

#include "data/files.h"
#include "data/pickle.h"
#include "data/zip.h"
#include "tensor/error.h"

namespace prm {

namespace {

using Kind = PickleValue::Kind;

// ---- Element types: the storage classes a pickle may name ----

enum class Source { f32, f64, f16, bf16, i64 };

struct StorageType {
  const char* global;
  Source source;
  uint64_t element_size;
};

const StorageType kStorageTypes[] = {
    {"torch.FloatStorage", Source::f32, 4},       {"torch.DoubleStorage", Source::f64, 8},
    {"torch.HalfStorage", Source::f16, 2},        {"torch.BFloat16Storage", Source::bf16, 2},
    {"torch.LongStorage", Source::i64, 8},        {"torch.cuda.FloatStorage", Source::f32, 4},
    {"torch.cuda.DoubleStorage", Source::f64, 8}, {"torch.cuda.HalfStorage", Source::f16, 2},
    {"torch.cuda.BFloat16Storage", Source::bf16, 2}, {"torch.cuda.LongStorage", Source::i64, 8},
};

const StorageType* storage_type(const std::string& global) {
  for (const StorageType& t : kStorageTypes)
    if (global == t.global) return &t;
  return nullptr;
}

constexpr const char* kOrderedDict = "collections.OrderedDict";
constexpr const char* kRebuildTensorV2 = "torch._utils._rebuild_tensor_v2";
constexpr const char* kRebuildTensor = "torch._utils._rebuild_tensor";
constexpr const char* kRebuildParameter = "torch._utils._rebuild_parameter";

// Keys under which a checkpoint-style dict holds the state_dict, in the order they are tried.
const char* const kWrapperKeys[] = {"state_dict", "model_state_dict", "model"};

// torch.save's legacy magic number 0x1950a86a20f9469cfc6c, as LONG1's little-endian bytes.
const char kLegacyMagic[] = "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
constexpr int64_t kLegacyProtocol = 1001;

constexpr size_t kMaxDims = 16;
constexpr uint64_t kSlackBytes = 16ull << 20;  // what tensors may take beyond 4x the file

// IEEE half -> float, exact (subnormals, infinities and NaN included), as safetensors.cpp.
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

// ---- What the pickle's objects stand for ----

struct Storage {
  std::string key;
  const StorageType* type = nullptr;
  uint64_t numel = 0;            // elements, as the pickle says
  std::string_view bytes;        // numel * element_size bytes, once known
  bool have_bytes = false;
  int64_t root = -1;             // legacy storage views: the storage viewed, and where
  uint64_t view_offset = 0;
};

struct TensorRef {
  size_t storage = 0;
  uint64_t offset = 0;
  std::vector<int64_t> sizes, strides;
};

// A view's element count and one past the largest element index it touches, overflow-checked;
// false when they do not fit in 64 bits.
bool view_extent(const TensorRef& t, uint64_t* numel, uint64_t* end) {
  uint64_t n = 1, last = t.offset;
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    const uint64_t size = static_cast<uint64_t>(t.sizes[d]);
    if (__builtin_mul_overflow(n, size, &n)) return false;
    uint64_t reach;
    if (size > 0 && (__builtin_mul_overflow(size - 1, static_cast<uint64_t>(t.strides[d]), &reach) ||
                     __builtin_add_overflow(last, reach, &last)))
      return false;
  }
  *numel = n;
  *end = n == 0 ? 0 : last + 1;
  return *end != 0 || n == 0;
}

std::string shape_text(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// ---- The rules for a pickle with no globals (the legacy format's small pickles) ----

class PlainRules : public PickleRules {
 public:
  bool allows(const std::string&) const override { return false; }
  PickleValue call(PickleHeap&, const std::string& global, const PickleValue&) override {
    throw Error("internal: call of " + global);
  }
  PickleValue persistent(PickleHeap&, const PickleValue&) override {
    throw Error("a persistent id where none belongs (damaged file)");
  }
};

// ---- The rules for the object's pickle: the allow-list, storages and tensors ----

class PthRules : public PickleRules {
 public:
  PthRules(const std::string& name, bool legacy) : name_(name), legacy_(legacy) {}

  bool allows(const std::string& global) const override {
    const auto& allowed = pth_allowed_globals();
    return std::find(allowed.begin(), allowed.end(), global) != allowed.end();
  }
  PickleValue call(PickleHeap& heap, const std::string& global, const PickleValue& args) override;
  PickleValue persistent(PickleHeap& heap, const PickleValue& id) override;

  // Zip format: where the storages' bytes are. Legacy: set_bytes once the pickle is read.
  std::unordered_map<std::string, const ZipEntry*> zip_entries;
  std::string zip_prefix;
  std::string_view archive;
  std::string archive_name;  // the file, for the zip reader's messages

  std::vector<Storage> storages;
  std::vector<TensorRef> tensors;
  std::unordered_map<std::string, size_t> storage_by_key;

  bool is_tensor(const PickleValue& v) const {
    return v.kind == Kind::object && objects_[v.i].tensor;
  }
  const TensorRef& tensor(const PickleValue& v) const { return tensors[objects_[v.i].index]; }

 private:
  struct Object {
    bool tensor;
    size_t index;
  };
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(str_cat(name_, ": ", what));
  }
  PickleValue add_object(bool tensor, size_t index) {
    objects_.push_back({tensor, index});
    return PickleValue{Kind::object, static_cast<int64_t>(objects_.size() - 1), 0};
  }
  int64_t as_int(const PickleHeap& heap, const PickleValue& v, const char* what) const;
  std::vector<int64_t> as_dims(const PickleHeap& heap, const PickleValue& v, const char* what) const;
  size_t root_storage(const PickleHeap& heap, const std::vector<PickleValue>& id);
  PickleValue rebuild_tensor(const PickleHeap& heap, const std::vector<PickleValue>& a, bool v2);
  PickleValue ordered_dict(PickleHeap& heap, const std::vector<PickleValue>& a);

  const std::string& name_;
  bool legacy_;
  std::vector<Object> objects_;
  std::unordered_map<std::string, size_t> view_by_key_;
};

int64_t PthRules::as_int(const PickleHeap&, const PickleValue& v, const char* what) const {
  if (v.kind != Kind::integer) fail(str_cat(what, " is ", pickle_kind_name(v.kind), ", not an int"));
  return v.i;
}

std::vector<int64_t> PthRules::as_dims(const PickleHeap& heap, const PickleValue& v,
                                       const char* what) const {
  if (v.kind != Kind::tuple) fail(str_cat(what, " is ", pickle_kind_name(v.kind), ", not a tuple"));
  const auto& items = heap.items(v);
  if (items.size() > kMaxDims) fail(str_cat(what, " has ", items.size(), " dimensions (at most ", kMaxDims, ")"));
  std::vector<int64_t> dims;
  for (const PickleValue& d : items) {
    dims.push_back(as_int(heap, d, what));
    if (dims.back() < 0) fail(str_cat(what, " ", dims.back(), " is negative"));
  }
  return dims;
}

PickleValue PthRules::ordered_dict(PickleHeap& heap, const std::vector<PickleValue>& a) {
  const PickleValue dict = heap.add_dict();
  if (a.empty()) return dict;
  // Python 2's OrderedDict.__reduce__: one argument, the list of [key, value] pairs.
  if (a.size() != 1 || a[0].kind != Kind::list)
    fail("collections.OrderedDict is called with arguments other than () or a list of pairs");
  for (const PickleValue& pair : heap.items(a[0])) {
    if ((pair.kind != Kind::list && pair.kind != Kind::tuple) || heap.items(pair).size() != 2)
      fail("collections.OrderedDict is given an item that is not a (key, value) pair");
    heap.dicts[dict.i].emplace_back(heap.items(pair)[0], heap.items(pair)[1]);
  }
  return dict;
}

PickleValue PthRules::rebuild_tensor(const PickleHeap& heap, const std::vector<PickleValue>& a,
                                     bool v2) {
  const char* fn = v2 ? kRebuildTensorV2 : kRebuildTensor;
  if (v2 ? (a.size() != 6 && a.size() != 7) : a.size() != 4)
    fail(str_cat(fn, " is called with ", a.size(), " arguments"));
  if (a[0].kind != Kind::object || objects_[a[0].i].tensor)
    fail(str_cat(fn, "'s first argument is ", pickle_kind_name(a[0].kind), ", not a storage"));
  TensorRef t;
  t.storage = objects_[a[0].i].index;
  const int64_t offset = as_int(heap, a[1], "a tensor's storage offset");
  if (offset < 0) fail(str_cat("a tensor's storage offset ", offset, " is negative"));
  t.offset = static_cast<uint64_t>(offset);
  t.sizes = as_dims(heap, a[2], "a tensor's size");
  t.strides = as_dims(heap, a[3], "a tensor's stride");
  if (t.sizes.size() != t.strides.size())
    fail(str_cat("a tensor has size ", shape_text(t.sizes), " but stride ", shape_text(t.strides)));
  if (v2) {
    if (a[4].kind != Kind::boolean) fail("a tensor's requires_grad is not a bool");
    if (a[5].kind != Kind::dict || !heap.entries(a[5]).empty())
      fail("a tensor comes with backward hooks, which a state_dict does not hold");
    if (a.size() == 7 && a[6].kind != Kind::none &&
        (a[6].kind != Kind::dict || !heap.entries(a[6]).empty()))
      fail("a tensor comes with metadata (a quantized or conjugated view?), not supported");
  }
  tensors.push_back(std::move(t));
  return add_object(true, tensors.size() - 1);
}

PickleValue PthRules::call(PickleHeap& heap, const std::string& global, const PickleValue& args) {
  const std::vector<PickleValue> a = heap.items(args);  // a copy: the heap may grow below
  if (global == kOrderedDict) return ordered_dict(heap, a);
  if (global == kRebuildTensorV2 || global == kRebuildTensor)
    return rebuild_tensor(heap, a, global == kRebuildTensorV2);
  if (global == kRebuildParameter) {
    if (a.size() != 3 || !is_tensor(a[0]) || a[1].kind != Kind::boolean)
      fail(str_cat(kRebuildParameter, " is called with other arguments than (tensor, bool, hooks)"));
    if (a[2].kind != Kind::dict || !heap.entries(a[2]).empty())
      fail("a parameter comes with backward hooks, which a state_dict does not hold");
    return a[0];
  }
  fail(str_cat("the pickle calls '", global, "', a type that only names a storage's elements"));
}

// A storage's persistent id: ('storage', type, key, location, numel), and in the legacy format a
// sixth item, None or a view (view_key, offset, numel) of that storage.
PickleValue PthRules::persistent(PickleHeap& heap, const PickleValue& id) {
  if (id.kind != Kind::tuple) fail("a persistent id that is not a tuple (damaged file)");
  const std::vector<PickleValue> items = heap.items(id);
  if (items.empty() || items[0].kind != Kind::text || heap.text(items[0]) != "storage")
    fail("refused: a persistent id other than a storage (a pickled module's source?)");
  if (items.size() != (legacy_ ? 6u : 5u))
    fail(str_cat("a storage's persistent id has ", items.size(), " items, not ", legacy_ ? 6 : 5));
  const size_t root = root_storage(heap, items);
  if (!legacy_ || items[5].kind == Kind::none) return add_object(false, root);
  // A legacy view of the storage (torch before 0.4 could save storage slices).
  const PickleValue view = items[5];
  if (view.kind != Kind::tuple || heap.items(view).size() != 3 ||
      heap.items(view)[0].kind != Kind::text)
    fail("a storage view is not (key, offset, size)");
  const std::string key = heap.text(heap.items(view)[0]);
  const int64_t offset = as_int(heap, heap.items(view)[1], "a storage view's offset");
  const int64_t numel = as_int(heap, heap.items(view)[2], "a storage view's size");
  const Storage& r = storages[root];
  if (offset < 0 || numel < 0 || static_cast<uint64_t>(offset) > r.numel ||
      static_cast<uint64_t>(numel) > r.numel - static_cast<uint64_t>(offset))
    fail(str_cat("storage view '", key, "' (", numel, " elements at ", offset,
                 ") runs past its storage '", r.key, "' (", r.numel, " elements)"));
  auto it = view_by_key_.find(key);
  if (it != view_by_key_.end()) {
    const Storage& s = storages[it->second];
    if (s.root != static_cast<int64_t>(root) || s.view_offset != static_cast<uint64_t>(offset) ||
        s.numel != static_cast<uint64_t>(numel))
      fail(str_cat("storage view '", key, "' is described twice, differently"));
    return add_object(false, it->second);
  }
  Storage s;
  s.key = key;
  s.type = r.type;
  s.numel = static_cast<uint64_t>(numel);
  s.root = static_cast<int64_t>(root);
  s.view_offset = static_cast<uint64_t>(offset);
  storages.push_back(std::move(s));
  view_by_key_[key] = storages.size() - 1;
  return add_object(false, storages.size() - 1);
}

// The storage a persistent id names: its type and element count, and in the zip format its
// entry, which must hold exactly numel elements.
size_t PthRules::root_storage(const PickleHeap& heap, const std::vector<PickleValue>& id) {
  if (id[1].kind != Kind::global) fail("a storage's type is not a torch storage class");
  const StorageType* type = storage_type(heap.text(id[1]));
  if (!type)
    fail(str_cat("storage type ", heap.text(id[1]), " is not supported (Float, Double, Half, "
                 "BFloat16 and Long storages are)"));
  if (id[2].kind != Kind::text || id[3].kind != Kind::text)
    fail("a storage's key or location is not a string");
  const std::string key = heap.text(id[2]);
  const int64_t numel = as_int(heap, id[4], "a storage's element count");
  if (numel < 0) fail(str_cat("storage '", key, "' has a negative element count"));
  auto it = storage_by_key.find(key);
  if (it != storage_by_key.end()) {
    const Storage& s = storages[it->second];
    if (s.type != type || s.numel != static_cast<uint64_t>(numel))
      fail(str_cat("storage '", key, "' is described twice, differently (", s.type->global, " of ",
                   s.numel, " and ", type->global, " of ", numel, ")"));
    return it->second;
  }
  Storage s;
  s.key = key;
  s.type = type;
  s.numel = static_cast<uint64_t>(numel);
  if (!legacy_) {
    const std::string entry = zip_prefix + "data/" + key;
    auto e = zip_entries.find(entry);
    if (e == zip_entries.end())
      fail(str_cat("storage '", key, "' has no entry '", entry, "' in the archive"));
    uint64_t bytes;
    if (__builtin_mul_overflow(s.numel, type->element_size, &bytes) || bytes != e->second->size)
      fail(str_cat("storage '", key, "' should hold ", numel, " elements of ", type->global,
                   " but its entry has ", e->second->size, " bytes"));
    s.bytes = zip_entry_bytes(archive, *e->second, archive_name);
    s.have_bytes = true;
  }
  storages.push_back(std::move(s));
  storage_by_key[key] = storages.size() - 1;
  return storages.size() - 1;
}

// ---- Tensors out of storages ----

// Copies the view's elements, row-major, through `load` (one source element -> one output).
template <typename Out, typename Load>
void gather(Out* out, const char* base, uint64_t element_size, const TensorRef& t, Load load) {
  const size_t nd = t.sizes.size();
  if (nd == 0) {
    out[0] = load(base + t.offset * element_size);
    return;
  }
  const int64_t inner = t.sizes[nd - 1], step = t.strides[nd - 1];
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < nd; ++d) rows *= t.sizes[d];
  std::vector<int64_t> index(nd, 0);
  uint64_t row_start = t.offset;
  for (int64_t r = 0; r < rows; ++r) {
    const char* p = base + row_start * element_size;
    for (int64_t j = 0; j < inner; ++j) out[j] = load(p + j * step * element_size);
    out += inner;
    for (size_t d = nd - 1; d-- > 0;) {  // the next row: an odometer over the outer dimensions
      row_start += t.strides[d];
      if (++index[d] < t.sizes[d]) break;
      row_start -= t.strides[d] * t.sizes[d];
      index[d] = 0;
    }
  }
}

template <typename T>
T load_as(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

bool is_contiguous(const TensorRef& t) {
  int64_t expected = 1;
  for (size_t d = t.sizes.size(); d-- > 0;) {
    if (t.sizes[d] != 1 && t.strides[d] != expected) return false;
    expected *= t.sizes[d];
  }
  return true;
}

Tensor make_tensor(const TensorRef& t, const Storage& s, uint64_t numel) {
  const char* base = s.bytes.data();
  const Shape shape(t.sizes.begin(), t.sizes.end());
  const Source src = s.type->source;
  const DType dtype = src == Source::f64 ? DType::f64 : src == Source::i64 ? DType::i64 : DType::f32;
  Tensor out = Tensor::empty(shape, dtype);
  if (numel == 0) return out;
  const uint64_t size = s.type->element_size;
  if ((src == Source::f32 || src == Source::f64 || src == Source::i64) && is_contiguous(t)) {
    std::memcpy(out.raw_data(), base + t.offset * size, numel * size);
    return out;
  }
  switch (src) {
    case Source::f32: gather(out.data<float>(), base, size, t, load_as<float>); break;
    case Source::f64: gather(out.data<double>(), base, size, t, load_as<double>); break;
    case Source::i64: gather(out.data<int64_t>(), base, size, t, load_as<int64_t>); break;
    case Source::f16:
      gather(out.data<float>(), base, size, t,
             [](const char* p) { return half_to_float(load_as<uint16_t>(p)); });
      break;
    case Source::bf16:
      gather(out.data<float>(), base, size, t, [](const char* p) {
        const uint32_t bits = static_cast<uint32_t>(load_as<uint16_t>(p)) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
      });
      break;
  }
  return out;
}

// ---- The state_dict in the unpickled object ----

bool all_tensors(const PickleHeap& heap, const PthRules& rules, const PickleValue& dict) {
  for (const auto& [k, v] : heap.entries(dict))
    if (!rules.is_tensor(v)) return false;
  return true;
}

PickleValue find_state_dict(const PickleHeap& heap, const PthRules& rules, const PickleValue& root,
                            const std::string& name) {
  PRM_CHECK(root.kind == Kind::dict, name, ": the file holds ", pickle_kind_name(root.kind),
            ", not a state_dict (a dict of tensors)");
  if (all_tensors(heap, rules, root)) return root;
  for (const char* key : kWrapperKeys)
    for (const auto& [k, v] : heap.entries(root))
      if (k.kind == Kind::text && heap.text(k) == key && v.kind == Kind::dict) return v;
  throw Error(str_cat(name, ": the file holds a dict that is not a state_dict (not all its values "
                      "are tensors) and has none of the keys state_dict, model_state_dict, model "
                      "with one"));
}

TensorMap state_dict_tensors(const PickleHeap& heap, const PthRules& rules, const PickleValue& dict,
                             uint64_t budget, const std::string& name) {
  std::vector<std::pair<std::string, const TensorRef*>> named;
  for (const auto& [k, v] : heap.entries(dict)) {
    PRM_CHECK(k.kind == Kind::text, name, ": a state_dict key is ", pickle_kind_name(k.kind),
              ", not a string");
    const std::string& key = heap.text(k);
    PRM_CHECK(rules.is_tensor(v), name, ": state_dict entry '", key, "' is ",
              pickle_kind_name(v.kind), ", not a tensor");
    named.emplace_back(key, &rules.tensor(v));
  }
  // Every check before the first copy: names, bounds, the memory all tensors take.
  std::vector<uint64_t> numels;
  uint64_t total = 0;
  std::map<std::string, int> seen;
  for (const auto& [key, t] : named) {
    PRM_CHECK(seen[key]++ == 0, name, ": state_dict key '", key, "' appears twice");
    const Storage& s = rules.storages[t->storage];
    PRM_CHECK(s.have_bytes, name, ": tensor '", key, "': its storage '", s.key,
              "' is not in the file");
    uint64_t numel = 0, end = 0;
    PRM_CHECK(view_extent(*t, &numel, &end) && end <= s.numel, name, ": tensor '", key,
              "' (size ", shape_text(t->sizes), ", stride ", shape_text(t->strides), ", offset ",
              t->offset, ") reaches past the end of its storage '", s.key, "' (", s.numel,
              " elements)");
    const uint64_t out_size = s.type->element_size == 8 ? 8 : 4;  // total <= budget throughout
    PRM_CHECK(numel <= (budget - total) / out_size, name, ": the tensors would take more than ",
              budget, " bytes, 4x the file's size and 16 MiB (a storage repeated or broadcast ",
              "with stride 0 too often); refused");
    total += numel * out_size;
    numels.push_back(numel);
  }
  TensorMap out;
  for (size_t i = 0; i < named.size(); ++i)
    out[named[i].first] = make_tensor(*named[i].second, rules.storages[named[i].second->storage],
                                      numels[i]);
  return out;
}

// ---- The two containers ----

uint64_t tensor_budget(std::string_view bytes) {
  return bytes.size() > (~0ull - kSlackBytes) / 4 ? ~0ull : 4 * bytes.size() + kSlackBytes;
}

TensorMap parse_zip(std::string_view bytes, const std::string& file) {
  const std::string name = "pth: " + file;
  const std::vector<ZipEntry> entries = read_zip_entries(bytes, file);
  PRM_CHECK(!entries.empty(), name, ": an empty zip archive, not a torch.save file");
  PthRules rules(name, /*legacy=*/false);
  rules.archive = bytes;
  rules.archive_name = file;
  const std::string& first = entries.front().name;
  const size_t slash = first.find('/');
  PRM_CHECK(slash != std::string::npos, name, ": a zip archive whose first entry '", first,
            "' is in no folder: not a torch.save file");
  rules.zip_prefix = first.substr(0, slash + 1);
  for (const ZipEntry& e : entries) rules.zip_entries[e.name] = &e;
  auto entry = [&](const std::string& leaf) -> const ZipEntry* {
    auto it = rules.zip_entries.find(rules.zip_prefix + leaf);
    return it == rules.zip_entries.end() ? nullptr : it->second;
  };
  if (const ZipEntry* order = entry("byteorder")) {
    const std::string_view text = zip_entry_bytes(bytes, *order, file);
    PRM_CHECK(text == "little", name, ": byte order '", text.substr(0, 16), "': only "
              "little-endian files are supported");
  }
  const ZipEntry* pickle = entry("data.pkl");
  PRM_CHECK(pickle, name, ": a zip archive with no '", rules.zip_prefix, "data.pkl': not a ",
            "torch.save file (a TorchScript archive holds constants.pkl and code/ instead)");
  const std::string_view program = zip_entry_bytes(bytes, *pickle, file);
  PickleHeap heap;
  size_t pos = 0;
  const PickleValue root = unpickle(program, &pos, heap, rules, name);
  PRM_CHECK(pos == program.size(), name, ": ", program.size() - pos,
            " bytes follow the pickle in data.pkl (damaged file)");
  return state_dict_tensors(heap, rules, find_state_dict(heap, rules, root, name),
                            tensor_budget(bytes), name);
}

// One of the legacy format's small header pickles.
PickleValue header_pickle(std::string_view bytes, size_t* pos, PickleHeap& heap,
                          const std::string& name) {
  PlainRules plain;
  return unpickle(bytes, pos, heap, plain, name);
}

TensorMap parse_legacy(std::string_view bytes, const std::string& file) {
  const std::string name = "pth: " + file;
  PickleHeap heap;
  size_t pos = 0;
  const PickleValue magic = header_pickle(bytes, &pos, heap, name);
  PRM_CHECK(magic.kind == Kind::big_integer && heap.text(magic) == std::string(kLegacyMagic, 10),
            name, ": not a torch.save file: it starts with a pickle, but not torch's magic number");
  const PickleValue protocol = header_pickle(bytes, &pos, heap, name);
  PRM_CHECK(protocol.kind == Kind::integer && protocol.i == kLegacyProtocol, name,
            ": torch.save legacy protocol ", protocol.kind == Kind::integer ? protocol.i : -1,
            ", not 1001");
  const PickleValue info = header_pickle(bytes, &pos, heap, name);
  PRM_CHECK(info.kind == Kind::dict, name, ": the system info is not a dict (damaged file)");
  for (const auto& [k, v] : heap.entries(info))
    PRM_CHECK(k.kind != Kind::text || heap.text(k) != "little_endian" ||
                  (v.kind == Kind::boolean && v.i == 1),
              name, ": written on a big-endian machine: only little-endian files are supported");

  PthRules rules(name, /*legacy=*/true);
  const PickleValue root = unpickle(bytes, &pos, heap, rules, name);
  const PickleValue keys = header_pickle(bytes, &pos, heap, name);
  PRM_CHECK(keys.kind == Kind::list, name, ": the storage key list is missing (damaged file)");
  for (const PickleValue& k : heap.items(keys)) {
    PRM_CHECK(k.kind == Kind::text, name, ": a storage key is not a string (damaged file)");
    auto it = rules.storage_by_key.find(heap.text(k));
    PRM_CHECK(it != rules.storage_by_key.end(), name, ": storage '", heap.text(k),
              "' is listed but no tensor uses it (damaged file)");
    Storage& s = rules.storages[it->second];
    PRM_CHECK(!s.have_bytes, name, ": storage '", s.key, "' is listed twice");
    PRM_CHECK(bytes.size() - pos >= 8, name, ": storage '", s.key,
              "' is missing: the file ends before it (truncated file)");
    uint64_t count = 0;
    for (int i = 7; i >= 0; --i) count = (count << 8) | static_cast<unsigned char>(bytes[pos + i]);
    pos += 8;
    PRM_CHECK(count == s.numel, name, ": storage '", s.key, "' holds ", count,
              " elements but the pickle says ", s.numel, " (damaged file)");
    PRM_CHECK(s.numel <= bytes.size() - pos, name, ": storage '", s.key, "' needs ", s.numel,
              " elements but the file has ", bytes.size() - pos, " bytes left (truncated file)");
    const uint64_t size = s.numel * s.type->element_size;  // no overflow: numel <= file size
    PRM_CHECK(size <= bytes.size() - pos, name, ": storage '", s.key, "' needs ", size,
              " bytes but the file has ", bytes.size() - pos, " left (truncated file)");
    s.bytes = bytes.substr(pos, size);
    s.have_bytes = true;
    pos += size;
  }
  PRM_CHECK(pos == bytes.size(), name, ": ", bytes.size() - pos,
            " bytes follow the last storage (damaged file)");
  for (Storage& s : rules.storages)  // views take their bytes from the storage they view
    if (s.root >= 0 && rules.storages[s.root].have_bytes) {
      const uint64_t size = s.type->element_size;
      s.bytes = rules.storages[s.root].bytes.substr(s.view_offset * size, s.numel * size);
      s.have_bytes = true;
    }
  return state_dict_tensors(heap, rules, find_state_dict(heap, rules, root, name),
                            tensor_budget(bytes), name);
}

}  // namespace

bool is_pth_zip(std::string_view bytes) {
  return bytes.substr(0, 4) == std::string_view("PK\3\4", 4) ||
         bytes.substr(0, 4) == std::string_view("PK\5\6", 4);
}

bool is_pth_legacy(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x80 &&
         bytes[1] >= 2 && bytes[1] <= 5 && !(bytes.size() > 8 && bytes[8] == '{');
}

TensorMap parse_pth(std::string_view bytes, const std::string& name) {
  if (is_pth_zip(bytes)) return parse_zip(bytes, name);
  PRM_CHECK(is_pth_legacy(bytes), "pth: ", name, ": not a torch.save file (neither a zip archive nor a "
            "pickle with torch's magic number)");
  return parse_legacy(bytes, name);
}

TensorMap load_pth(const std::string& path) { return parse_pth(read_file_bytes(path), path); }

const std::vector<std::string>& pth_allowed_globals() {
  static const std::vector<std::string> globals = [] {
    std::vector<std::string> g = {kOrderedDict, kRebuildTensorV2, kRebuildTensor,
                                  kRebuildParameter};
    for (const StorageType& t : kStorageTypes) g.push_back(t.global);
    return g;
  }();
  return globals;
}

}  // namespace prm
