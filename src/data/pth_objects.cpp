#include "data/pth_objects.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "data/safetensors.h"
#include "tensor/error.h"

namespace prm::pth {

namespace {

using Kind = PickleValue::Kind;

const StorageType kStorageTypes[] = {
    {"torch.FloatStorage", "torch.FloatTensor", Source::f32, 4},
    {"torch.DoubleStorage", "torch.DoubleTensor", Source::f64, 8},
    {"torch.HalfStorage", "torch.HalfTensor", Source::f16, 2},
    {"torch.BFloat16Storage", "torch.BFloat16Tensor", Source::bf16, 2},
    {"torch.LongStorage", "torch.LongTensor", Source::i64, 8},
    {"torch.cuda.FloatStorage", "torch.cuda.FloatTensor", Source::f32, 4},
    {"torch.cuda.DoubleStorage", "torch.cuda.DoubleTensor", Source::f64, 8},
    {"torch.cuda.HalfStorage", "torch.cuda.HalfTensor", Source::f16, 2},
    {"torch.cuda.BFloat16Storage", "torch.cuda.BFloat16Tensor", Source::bf16, 2},
    {"torch.cuda.LongStorage", "torch.cuda.LongTensor", Source::i64, 8},
};

constexpr const char* kOrderedDict = "collections.OrderedDict";
constexpr const char* kRebuildTensorV2 = "torch._utils._rebuild_tensor_v2";
constexpr const char* kRebuildTensor = "torch._utils._rebuild_tensor";
constexpr const char* kRebuildParameter = "torch._utils._rebuild_parameter";

// Keys under which a checkpoint-style dict holds the state_dict, in the order they are tried.
const char* const kWrapperKeys[] = {"state_dict", "model_state_dict", "model"};

constexpr size_t kMaxDims = 16;
constexpr uint64_t kSlackBytes = 16ull << 20;  // what tensors may take beyond 4x the file

// A view's element count and one past the largest element index it touches, overflow-checked;
// false when they do not fit in 64 bits, or when the shape's sizes other than 0 multiply past
// 2^62 (an empty tensor of shape [0, 2^40, 2^40] would overflow its own contiguous strides).
bool view_extent(const TensorRef& t, uint64_t* numel, uint64_t* end) {
  uint64_t n = 1, span = 1, last = t.offset;
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    const uint64_t size = static_cast<uint64_t>(t.sizes[d]);
    if (__builtin_mul_overflow(n, size, &n)) return false;
    if (__builtin_mul_overflow(span, size > 0 ? size : 1, &span) || span > (1ull << 62))
      return false;
    uint64_t reach;
    const uint64_t stride = static_cast<uint64_t>(t.strides[d]);
    if (size > 0 && (__builtin_mul_overflow(size - 1, stride, &reach) ||
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

}  // namespace

const StorageType* storage_type(const std::string& global) {
  for (const StorageType& t : kStorageTypes)
    if (global == t.global) return &t;
  return nullptr;
}

const StorageType* storage_type_of_tensor(const std::string& tensor_global) {
  for (const StorageType& t : kStorageTypes)
    if (tensor_global == t.tensor_global) return &t;
  return nullptr;
}

const std::vector<std::string>& storage_globals() {
  static const std::vector<std::string> globals = [] {
    std::vector<std::string> g;
    for (const StorageType& t : kStorageTypes) g.push_back(t.global);
    return g;
  }();
  return globals;
}

const std::vector<std::string>& tensor_globals() {
  static const std::vector<std::string> globals = [] {
    std::vector<std::string> g;
    for (const StorageType& t : kStorageTypes) g.push_back(t.tensor_global);
    return g;
  }();
  return globals;
}

std::string key_text(const PickleHeap& heap, const PickleValue& v, const std::string& name) {
  if (v.kind == Kind::text) return heap.text(v);
  if (v.kind == Kind::integer) return std::to_string(v.i);
  throw Error(str_cat(name, ": a storage or tensor key is ", pickle_kind_name(v.kind),
                      ", not a string or an int (damaged file)"));
}

// ---- Small pickles: type tags only ----

bool TagRules::allows(const std::string& global) const {
  return std::find(tags_.begin(), tags_.end(), global) != tags_.end();
}

PickleValue TagRules::call(PickleHeap&, const std::string& global, const PickleValue&) {
  throw Error(str_cat(name_, ": the pickle calls '", global, "', which only names a type"));
}

PickleValue TagRules::persistent(PickleHeap&, const PickleValue&) {
  throw Error(str_cat(name_, ": a persistent id where none belongs (damaged file)"));
}

// ---- The object's pickle ----

bool Objects::allows(const std::string& global) const {
  return global == kOrderedDict || global == kRebuildTensorV2 || global == kRebuildTensor ||
         global == kRebuildParameter || storage_type(global) != nullptr;
}

void Objects::fail(const std::string& what) const { throw Error(str_cat(name_, ": ", what)); }

bool Objects::is_tensor(const PickleValue& v) const {
  return v.kind == Kind::object && objects_[v.i].tensor;
}

PickleValue Objects::add_object(bool tensor, size_t index) {
  objects_.push_back({tensor, index});
  return PickleValue{Kind::object, static_cast<int64_t>(objects_.size() - 1), 0};
}

int64_t Objects::as_int(const PickleValue& v, const char* what) const {
  if (v.kind != Kind::integer)
    fail(str_cat(what, " is ", pickle_kind_name(v.kind), ", not an int"));
  return v.i;
}

void check_dims(const Objects& objects, const std::vector<int64_t>& sizes,
                const std::vector<int64_t>& strides) {
  if (sizes.size() > kMaxDims)
    objects.fail(str_cat("a tensor has ", sizes.size(), " dimensions (at most ", kMaxDims, ")"));
  for (int64_t d : sizes)
    if (d < 0) objects.fail(str_cat("a tensor's size ", d, " is negative"));
  for (int64_t d : strides)
    if (d < 0) objects.fail(str_cat("a tensor's stride ", d, " is negative"));
  if (sizes.size() != strides.size())
    objects.fail(str_cat("a tensor has size ", shape_text(sizes), " but stride ",
                         shape_text(strides)));
}

std::vector<int64_t> Objects::as_dims(const PickleHeap& heap, const PickleValue& v,
                                      const char* what) const {
  if (v.kind != Kind::tuple) fail(str_cat(what, " is ", pickle_kind_name(v.kind), ", not a tuple"));
  const auto& items = heap.items(v);
  if (items.size() > kMaxDims)
    fail(str_cat("a tensor has ", items.size(), " dimensions (at most ", kMaxDims, ")"));
  std::vector<int64_t> dims;
  for (const PickleValue& d : items) dims.push_back(as_int(d, what));
  return dims;
}

PickleValue Objects::ordered_dict(PickleHeap& heap, const std::vector<PickleValue>& a) {
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

PickleValue Objects::rebuild_tensor(const PickleHeap& heap, const std::vector<PickleValue>& a,
                                    bool v2) {
  const char* fn = v2 ? kRebuildTensorV2 : kRebuildTensor;
  if (v2 ? (a.size() != 6 && a.size() != 7) : a.size() != 4)
    fail(str_cat(fn, " is called with ", a.size(), " arguments"));
  if (a[0].kind != Kind::object || objects_[a[0].i].tensor)
    fail(str_cat(fn, "'s first argument is ", pickle_kind_name(a[0].kind), ", not a storage"));
  TensorRef t;
  t.storage = objects_[a[0].i].index;
  const int64_t offset = as_int(a[1], "a tensor's storage offset");
  if (offset < 0) fail(str_cat("a tensor's storage offset ", offset, " is negative"));
  t.offset = static_cast<uint64_t>(offset);
  t.sizes = as_dims(heap, a[2], "a tensor's size");
  t.strides = as_dims(heap, a[3], "a tensor's stride");
  check_dims(*this, t.sizes, t.strides);
  if (v2) {
    if (a[4].kind != Kind::boolean) fail("a tensor's requires_grad is not a bool");
    if (a[5].kind != Kind::dict || !heap.entries(a[5]).empty())
      fail("a tensor comes with backward hooks, which a state_dict does not hold");
    if (a.size() == 7 && a[6].kind != Kind::none &&
        (a[6].kind != Kind::dict || !heap.entries(a[6]).empty()))
      fail("a tensor comes with metadata (a quantized or conjugated view?), not supported");
  }
  tensors_.push_back(std::move(t));
  return add_object(true, tensors_.size() - 1);
}

PickleValue Objects::call(PickleHeap& heap, const std::string& global, const PickleValue& args) {
  const std::vector<PickleValue> a = heap.items(args);  // a copy: the heap may grow below
  if (global == kOrderedDict) return ordered_dict(heap, a);
  if (global == kRebuildTensorV2 || global == kRebuildTensor)
    return rebuild_tensor(heap, a, global == kRebuildTensorV2);
  if (global == kRebuildParameter) {
    if (a.size() != 3 || !is_tensor(a[0]) || a[1].kind != Kind::boolean)
      fail(str_cat(kRebuildParameter, " is called with other arguments than (tensor, bool, "
                   "hooks)"));
    if (a[2].kind != Kind::dict || !heap.entries(a[2]).empty())
      fail("a parameter comes with backward hooks, which a state_dict does not hold");
    return a[0];
  }
  fail(str_cat("the pickle calls '", global, "', a type that only names a storage's elements"));
}

PickleValue Objects::persistent(PickleHeap& heap, const PickleValue& id) {
  if (layout_ == Layout::tar) {  // "key" of a tensor the `tensors` member described
    if (id.kind != Kind::text)
      fail("refused: a persistent id other than a tensor's key (a pickled module's source?)");
    auto it = tar_tensor_by_key_.find(heap.text(id));
    if (it == tar_tensor_by_key_.end())
      fail(str_cat("the pickle refers to tensor '", heap.text(id), "', which the file lacks"));
    return it->second;
  }
  if (id.kind != Kind::tuple) fail("a persistent id that is not a tuple (damaged file)");
  const std::vector<PickleValue> items = heap.items(id);
  if (items.empty() || items[0].kind != Kind::text || heap.text(items[0]) != "storage")
    fail("refused: a persistent id other than a storage (a pickled module's source?)");
  const bool legacy = layout_ == Layout::legacy;
  if (items.size() != (legacy ? 6u : 5u))
    fail(str_cat("a storage's persistent id has ", items.size(), " items, not ", legacy ? 6 : 5));
  return storage_id(heap, items);
}

// ('storage', type, key, location, numel[, view]): the storage, or (legacy) a view of it.
PickleValue Objects::storage_id(const PickleHeap& heap, const std::vector<PickleValue>& id) {
  if (id[1].kind != Kind::global) fail("a storage's type is not a torch storage class");
  const StorageType* type = storage_type(heap.text(id[1]));
  if (!type)  // (the allow-list holds only storage classes prm reads: this is a refused call)
    fail(str_cat("storage type ", heap.text(id[1]), " is not one prm reads"));
  if (id[2].kind != Kind::text || id[3].kind != Kind::text)
    fail("a storage's key or location is not a string");
  const int64_t numel = as_int(id[4], "a storage's element count");
  if (numel < 0) fail(str_cat("storage '", heap.text(id[2]), "' has a negative element count"));
  const size_t root = storage(heap.text(id[2]), type, static_cast<uint64_t>(numel));
  if (layout_ != Layout::legacy || id[5].kind == Kind::none) return add_object(false, root);
  // torch before 0.4 could save slices of a storage: (view_key, offset, numel).
  const PickleValue view = id[5];
  if (view.kind != Kind::tuple || heap.items(view).size() != 3 ||
      heap.items(view)[0].kind != Kind::text)
    fail("a storage view is not (key, offset, size)");
  const auto& v = heap.items(view);
  return add_object(false, storage_view(heap.text(v[0]), root, as_int(v[1], "a view's offset"),
                                        as_int(v[2], "a view's size")));
}

size_t Objects::storage(const std::string& key, const StorageType* type, uint64_t numel) {
  auto it = storage_by_key.find(key);
  if (it != storage_by_key.end()) {
    const StorageInfo& s = storages[it->second];
    if (s.type != type || s.numel != numel)
      fail(str_cat("storage '", key, "' is described twice, differently (", s.type->global, " of ",
                   s.numel, " and ", type->global, " of ", numel, ")"));
    return it->second;
  }
  StorageInfo s;
  s.key = key;
  s.type = type;
  s.numel = numel;
  if (find_bytes) find_bytes(s);
  storages.push_back(std::move(s));
  storage_by_key[key] = storages.size() - 1;
  return storages.size() - 1;
}

size_t Objects::storage_view(const std::string& key, size_t root, int64_t offset, int64_t numel) {
  const StorageInfo& r = storages[root];
  if (offset < 0 || numel < 0 || static_cast<uint64_t>(offset) > r.numel ||
      static_cast<uint64_t>(numel) > r.numel - static_cast<uint64_t>(offset))
    fail(str_cat("storage view '", key, "' (", numel, " elements at ", offset,
                 ") runs past its storage '", r.key, "' (", r.numel, " elements)"));
  auto it = view_by_key_.find(key);
  if (it != view_by_key_.end()) {
    const StorageInfo& s = storages[it->second];
    if (s.root != static_cast<int64_t>(root) || s.view_offset != static_cast<uint64_t>(offset) ||
        s.numel != static_cast<uint64_t>(numel))
      fail(str_cat("storage view '", key, "' is described twice, differently"));
    return it->second;
  }
  if (storage_by_key.count(key)) fail(str_cat("storage view '", key, "' is also a storage"));
  StorageInfo s;
  s.key = key;
  s.type = r.type;
  s.numel = static_cast<uint64_t>(numel);
  s.root = static_cast<int64_t>(root);
  s.view_offset = static_cast<uint64_t>(offset);
  if (r.have_bytes) {  // (legacy: the roots' bytes come after the pickle, and are given then)
    s.bytes = r.bytes.substr(s.view_offset * r.type->element_size, s.numel * r.type->element_size);
    s.have_bytes = true;
  }
  storages.push_back(std::move(s));
  view_by_key_[key] = storages.size() - 1;
  return storages.size() - 1;
}

int64_t Objects::find_storage(const std::string& key) const {
  auto it = storage_by_key.find(key);
  if (it != storage_by_key.end()) return static_cast<int64_t>(it->second);
  auto view = view_by_key_.find(key);
  return view == view_by_key_.end() ? -1 : static_cast<int64_t>(view->second);
}

void Objects::add_tensor(const std::string& key, TensorRef t) {
  if (tar_tensor_by_key_.count(key)) fail(str_cat("tensor '", key, "' is described twice"));
  tensors_.push_back(std::move(t));
  tar_tensor_by_key_[key] = add_object(true, tensors_.size() - 1);
}

// ---- Tensors out of storages ----

namespace {

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

Tensor make_tensor(const TensorRef& t, const StorageInfo& s, uint64_t numel) {
  const char* base = s.bytes.data();
  const Shape shape(t.sizes.begin(), t.sizes.end());
  const Source src = s.type->source;
  const DType dtype =
      src == Source::f64 ? DType::f64 : src == Source::i64 ? DType::i64 : DType::f32;
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
      gather(out.data<float>(), base, size, t,
             [](const char* p) { return bf16_to_float(load_as<uint16_t>(p)); });
      break;
  }
  return out;
}

// ---- The state_dict in the unpickled object ----

bool all_tensors(const PickleHeap& heap, const Objects& objects, const PickleValue& dict) {
  for (const auto& [k, v] : heap.entries(dict))
    if (!objects.is_tensor(v)) return false;
  return true;
}

PickleValue find_state_dict(const PickleHeap& heap, const Objects& objects,
                            const PickleValue& root, const std::string& name) {
  PRM_CHECK(root.kind == Kind::dict, name, ": the file holds ", pickle_kind_name(root.kind),
            ", not a state_dict (a dict of tensors)");
  if (all_tensors(heap, objects, root)) return root;
  for (const char* key : kWrapperKeys)
    for (const auto& [k, v] : heap.entries(root))
      if (k.kind == Kind::text && heap.text(k) == key && v.kind == Kind::dict) return v;
  throw Error(str_cat(name, ": the file holds a dict that is not a state_dict (not all its values "
                      "are tensors) and has none of the keys state_dict, model_state_dict, model "
                      "with one"));
}

}  // namespace

TensorMap state_dict_tensors(const PickleHeap& heap, const Objects& objects,
                             const PickleValue& root, uint64_t file_size, const std::string& name) {
  const uint64_t budget =
      file_size > (~0ull - kSlackBytes) / 4 ? ~0ull : 4 * file_size + kSlackBytes;
  const PickleValue dict = find_state_dict(heap, objects, root, name);
  std::vector<std::pair<std::string, const TensorRef*>> named;
  for (const auto& [k, v] : heap.entries(dict)) {
    PRM_CHECK(k.kind == Kind::text, name, ": a state_dict key is ", pickle_kind_name(k.kind),
              ", not a string");
    const std::string& key = heap.text(k);
    PRM_CHECK(objects.is_tensor(v), name, ": state_dict entry '", key, "' is ",
              pickle_kind_name(v.kind), ", not a tensor");
    named.emplace_back(key, &objects.tensor(v));
  }
  // Every check before the first copy: names, bounds, the memory all tensors take.
  std::vector<uint64_t> numels;
  uint64_t total = 0;
  std::map<std::string, int> seen;
  for (const auto& [key, t] : named) {
    PRM_CHECK(seen[key]++ == 0, name, ": state_dict key '", key, "' appears twice");
    const StorageInfo& s = objects.storages[t->storage];
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
    out[named[i].first] =
        make_tensor(*named[i].second, objects.storages[named[i].second->storage], numels[i]);
  return out;
}

}  // namespace prm::pth
