// A pull reader for large JSON documents: the caller walks the text value by value and keeps
// what it needs, so a 300 MB annotation file never becomes a tree of millions of Json nodes
// (data/json.h's parser, for small files, holds every number's text).
//
// The grammar is data/json.h's, as strictly: RFC 8259 numbers (no leading zeros, no '+', no
// NaN/Infinity), the same string escapes with UTF-16 surrogate pairs joined, a nesting limit, and
// nothing but whitespace after the document, no field name twice in one object. Every error is one prm::Error line:
//   "<source>: corrupt JSON (<what> at byte <offset>)"   (the text is not JSON)
//   "<source>: <what> at byte <offset>"                  (JSON, but not what the caller expects:
//                                                          fail(), wrong kinds)
//
//   JsonCursor c(text, "instances_val2014.json");
//   c.begin_object();
//   while (c.next_field()) {
//     if (c.name() == "images") { c.begin_array(); while (c.next_item()) { ... } }
//     else c.skip();
//   }
//   c.end_document();
#pragma once
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "data/json.h"

namespace prm {

class JsonCursor {
 public:
  // `text` must outlive the cursor (it is not copied).
  JsonCursor(std::string_view text, std::string source, int max_depth = kJsonDefaultMaxDepth);

  // The kind of the next value (whitespace skipped); an error at the end of the text.
  Json::Kind peek();

  // Containers. begin_*() enters one; next_item() / next_field() move to its next member and
  // return false (leaving the container) at its end. After next_field(), name() is the field's
  // name, and the cursor stands at its value.
  void begin_array();
  bool next_item();
  void begin_object();
  bool next_field();
  const std::string& name() const { return name_; }

  // Scalars. A value of another kind is an error naming the kind expected and the kind found.
  double read_double();
  int64_t read_int64();  // an integer literal (no fraction or exponent) in range
  bool read_bool();
  void read_null();
  std::string read_string();
  // An array of numbers, appended to `out` (one allocation: the values go through a scratch
  // buffer first); what read_double() reads, faster.
  void read_doubles(std::vector<double>& out);
  // Skips the next value, whatever it is (iteratively: deep nesting is refused, not recursed).
  void skip();

  // After the top-level value: only whitespace may follow.
  void end_document();

  size_t offset() const { return pos_; }
  const std::string& source() const { return source_; }
  // prm::Error "<source>: <what> at byte <offset of the current value>".
  [[noreturn]] void fail(const std::string& what) const;

 private:
  struct Level {
    bool object;
    bool first;
    std::vector<std::string> names;  // an object's field names so far (a repeat is an error)
    std::set<std::string> many;      // the same, once there are more than a few
  };
  void add_name(const std::string& name, size_t at);
  void skip_space();
  char next_char();  // the next non-space character, not consumed; error at the end
  void enter(bool object);
  void expect(char c, const char* what);
  std::string_view number_text();  // consumes and validates a number literal
  double number();                 // the same, and its value
  void parse_string(std::string& out);
  uint32_t hex4();
  void literal(const char* word);
  [[noreturn]] void corrupt(const std::string& what, size_t at) const;
  [[noreturn]] void wrong_kind(const char* expected);

  std::string_view s_;
  std::string source_;
  int max_depth_;
  size_t pos_ = 0;
  size_t value_start_ = 0;
  std::vector<Level> stack_;
  std::string name_;
  std::vector<double> scratch_;
};

}  // namespace prm
