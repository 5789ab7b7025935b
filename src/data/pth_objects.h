// What the pickles of a torch.save file stand for, shared by its three container layouts
// (data/pth.cpp): the storage types, storages and tensor views the restricted unpickler
// (data/pickle.h) builds, the rules it follows for them (the allow-list of data/pth.h), and the
// state_dict taken out of the result, every view checked against its storage before it is copied.
// Internal to the .pth reader; errors start with the `name` given (the file).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/pickle.h"
#include "tensor/tensor_map.h"

namespace prm::pth {

// The element types a storage may hold, as torch's storage classes (and, in the tar format, its
// tensor classes) name them.
enum class Source { f32, f64, f16, bf16, i64 };
struct StorageType {
  const char* global;         // "torch.FloatStorage"
  const char* tensor_global;  // "torch.FloatTensor"
  Source source;
  uint64_t element_size;
};
const StorageType* storage_type(const std::string& global);
const StorageType* storage_type_of_tensor(const std::string& tensor_global);
const std::vector<std::string>& storage_globals();
const std::vector<std::string>& tensor_globals();

struct StorageInfo {
  std::string key;
  const StorageType* type = nullptr;
  uint64_t numel = 0;       // elements, as the file says
  std::string_view bytes;   // numel * element_size bytes, once known
  bool have_bytes = false;
  int64_t root = -1;        // a view of another storage (legacy and tar formats): which, and where
  uint64_t view_offset = 0;
};

struct TensorRef {
  size_t storage = 0;
  uint64_t offset = 0;
  std::vector<int64_t> sizes, strides;
};

// torch.save's layouts: where storages are described and how the object's pickle refers to them.
//   zip:    persistent id ('storage', type, key, location, numel); bytes in the archive's entry
//   legacy: the same with a sixth item, None or a storage view (key, offset, numel)
//   tar:    persistent id "key" of a tensor described in the archive's `tensors` member
enum class Layout { zip, legacy, tar };

// The rules for a small pickle that may name only `tags` (type names, never called), and that
// has no persistent ids: the legacy and tar formats' headers.
class TagRules : public PickleRules {
 public:
  TagRules(const std::string& name, std::vector<std::string> tags)
      : name_(name), tags_(std::move(tags)) {}
  bool allows(const std::string& global) const override;
  PickleValue call(PickleHeap& heap, const std::string& global, const PickleValue& args) override;
  PickleValue persistent(PickleHeap& heap, const PickleValue& id) override;

 private:
  const std::string& name_;
  std::vector<std::string> tags_;
};

// The rules for the object's pickle, and the storages and tensors it refers to.
class Objects : public PickleRules {
 public:
  Objects(const std::string& name, Layout layout) : name_(name), layout_(layout) {}

  bool allows(const std::string& global) const override;
  PickleValue call(PickleHeap& heap, const std::string& global, const PickleValue& args) override;
  PickleValue persistent(PickleHeap& heap, const PickleValue& id) override;

  // Zip layout: gives a newly described storage its bytes (or throws).
  std::function<void(StorageInfo&)> find_bytes;

  // Storages by key: a new one, or the one already described (which must agree).
  size_t storage(const std::string& key, const StorageType* type, uint64_t numel);
  // A view of storage `root` (legacy and tar layouts), by its own key.
  size_t storage_view(const std::string& key, size_t root, int64_t offset, int64_t numel);
  // A storage or storage view by key; -1 when there is none.
  int64_t find_storage(const std::string& key) const;
  // Tar layout: a tensor described outside the pickle, which refers to it by key.
  void add_tensor(const std::string& key, TensorRef t);

  std::vector<StorageInfo> storages;                       // storages and views
  std::unordered_map<std::string, size_t> storage_by_key;  // storages only

  bool is_tensor(const PickleValue& v) const;
  const TensorRef& tensor(const PickleValue& v) const { return tensors_[objects_[v.i].index]; }
  [[noreturn]] void fail(const std::string& what) const;

 private:
  struct Object {
    bool tensor;
    size_t index;
  };
  PickleValue add_object(bool tensor, size_t index);
  int64_t as_int(const PickleValue& v, const char* what) const;
  std::vector<int64_t> as_dims(const PickleHeap& heap, const PickleValue& v,
                               const char* what) const;
  PickleValue ordered_dict(PickleHeap& heap, const std::vector<PickleValue>& a);
  PickleValue rebuild_tensor(const PickleHeap& heap, const std::vector<PickleValue>& a, bool v2);
  PickleValue storage_id(const PickleHeap& heap, const std::vector<PickleValue>& id);

  const std::string& name_;
  Layout layout_;
  std::vector<Object> objects_;
  std::vector<TensorRef> tensors_;
  std::unordered_map<std::string, size_t> view_by_key_;
  std::unordered_map<std::string, PickleValue> tar_tensor_by_key_;
};

// A key as the file gives it (a string, or an int in the tar layout), as text.
std::string key_text(const PickleHeap& heap, const PickleValue& v, const std::string& name);

// Checks a tensor's sizes and strides (at most 16 dims, none negative, as many strides as sizes).
void check_dims(const Objects& objects, const std::vector<int64_t>& sizes,
                const std::vector<int64_t>& strides);

// The state_dict in the unpickled `root` (itself, or under a wrapper key): every view checked
// against its storage's bytes and all of them against a memory budget of 4x `file_size` plus
// 16 MiB, then gathered into contiguous CPU tensors.
TensorMap state_dict_tensors(const PickleHeap& heap, const Objects& objects,
                             const PickleValue& root, uint64_t file_size, const std::string& name);

}  // namespace prm::pth
