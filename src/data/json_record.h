// One record of a JSON array being read with data/json_cursor.h (a COCO annotation, a result):
// errors name the file and the record, "<file>: annotations[17] (id 90210): <what>", and a wrong
// kind read in a field names the field too: "... (id 90210): field 'image_id': expected an
// integer, found a string at byte 200". Text that is not JSON keeps the cursor's own line.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/json_cursor.h"
#include "tensor/error.h"

namespace prm {

class JsonRecord {
 public:
  // `array` names the array ("annotations"; "" for a top-level array), `index` the record in it.
  JsonRecord(const JsonCursor& c, const char* array, size_t index)
      : c_(c), array_(array), index_(index) {}

  std::string where() const {
    std::string w = str_cat(c_.source(), ": ", array_, "[", index_, "]");
    if (has_id_) w += str_cat(" (id ", id_, ")");
    return w;
  }
  [[noreturn]] void fail(const std::string& what) const { throw Error(str_cat(where(), ": ", what)); }
  // Runs `read`, naming the record and the field in the cursor's errors (a wrong kind).
  template <typename F>
  auto field(const char* name, F read) const -> decltype(read()) {
    try {
      return read();
    } catch (const Error& e) {
      std::string what = e.what();
      if (what.compare(0, where().size(), where()) == 0) throw;  // already names the record
      const std::string prefix = c_.source() + ": ";
      if (what.compare(0, prefix.size(), prefix) == 0) what = what.substr(prefix.size());
      if (what.find("corrupt JSON") == 0) throw;  // not JSON at all: the cursor's line says it
      fail(str_cat("field '", name, "': ", what));
    }
  }
  // Records with an id are named by it too, once it is read.
  void set_id(int64_t id) {
    id_ = id;
    has_id_ = true;
  }

 private:
  const JsonCursor& c_;
  const char* array_;
  size_t index_;
  int64_t id_ = 0;
  bool has_id_ = false;
};

}  // namespace prm
