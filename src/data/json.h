// JSON: one small value type, a strict parser and a writer, shared by the .safetensors headers,
// the evaluation report and the training checkpoints.
//
// Parser (RFC 8259, strict): any value at the top level; objects keep their fields in file order
// and a repeated name is an error; numbers follow the JSON grammar exactly (no leading zeros,
// no '+', no NaN/Infinity) and must fit a double; strings may hold any UTF-8 (not validated) and
// the escapes \" \\ \/ \b \f \n \r \t \uXXXX, with UTF-16 surrogate pairs joined into one code
// point (a lone surrogate is an error); nesting deeper than `max_depth` is an error (so a hostile
// file cannot exhaust the stack). Every error is one prm::Error line:
//   "<source>: corrupt JSON (<what> at byte <offset>)"
// with <offset> counted from the start of the text.
//
// Writer: numbers made from a double are written in the shortest form that reads back as the
// same double (std::to_chars); integers exactly; strings escape '"', '\\' and the control
// characters (as \u00XX) and pass other bytes through. A number keeps its literal text, so a
// parsed value is written back as it was read and integers beyond 2^53 stay exact.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace prm {

class Json {
 public:
  enum class Kind { null, boolean, number, string, array, object };
  using Fields = std::vector<std::pair<std::string, Json>>;

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool b) : kind_(Kind::boolean), bool_(b) {}
  Json(double v);  // prm::Error when v is NaN or infinite: JSON has no such numbers
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Json(T v)
      : Json(std::is_signed_v<T> ? from_int(static_cast<int64_t>(v))
                                 : from_uint(static_cast<uint64_t>(v))) {}
  Json(const char* s) : kind_(Kind::string), text_(s) {}
  Json(std::string s) : kind_(Kind::string), text_(std::move(s)) {}

  static Json array(std::vector<Json> items = {});
  static Json object(Fields fields = {});  // prm::Error on a repeated name
  // A number written with `decimals` digits after the point ("%.*f"), for reports that print a
  // fixed precision; prm::Error when v is not finite.
  static Json fixed(double v, int decimals);

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::null; }
  bool is_bool() const { return kind_ == Kind::boolean; }
  bool is_number() const { return kind_ == Kind::number; }
  bool is_string() const { return kind_ == Kind::string; }
  bool is_array() const { return kind_ == Kind::array; }
  bool is_object() const { return kind_ == Kind::object; }

  // Typed reads; prm::Error ("JSON: expected a number, found a string") on the wrong kind.
  bool as_bool() const;
  double as_double() const;
  int64_t as_int64() const;  // also an error when the number is not an integer in range
  const std::string& as_string() const;
  // The literal text of a number ("1e3", "-0.5"), as read or as it will be written.
  const std::string& number_text() const;
  // True, with the value in `out`, when this is a number written as an integer in range
  // (no fraction, no exponent).
  bool get_int64(int64_t& out) const;
  bool get_uint64(uint64_t& out) const;

  // Arrays.
  const std::vector<Json>& items() const;
  Json& push_back(Json value);
  // Objects, in insertion (or file) order.
  const Fields& fields() const;
  const Json* find(const std::string& name) const;  // nullptr when absent
  const Json& at(const std::string& name) const;    // prm::Error naming the field when absent
  Json& set(const std::string& name, Json value);   // replaces or appends; returns the value
  size_t size() const;                              // items or fields; 0 for scalars

  bool operator==(const Json& other) const;
  bool operator!=(const Json& other) const { return !(*this == other); }

 private:
  static Json from_int(int64_t v);
  static Json from_uint(uint64_t v);
  void require(Kind k) const;
  friend class JsonParser;

  Kind kind_ = Kind::null;
  bool bool_ = false;
  double number_ = 0;
  std::string text_;  // a string's value, or a number's literal text
  std::vector<Json> items_;
  Fields fields_;
};

const char* json_kind_name(Json::Kind kind);

constexpr int kJsonDefaultMaxDepth = 64;

// Parses a whole document (surrounding whitespace allowed, nothing else). `source` names the
// text in errors (usually a file path).
Json parse_json(const std::string& text, const std::string& source,
                int max_depth = kJsonDefaultMaxDepth);

// {"a":1,"b":[true,null]}: no whitespace at all (file headers).
std::string write_json(const Json& value);
// {"a": 1, "b": [true, null]}: a space after ':' and ','; containers down to nesting level
// `expand_levels` (the top-level value is level 1) that hold a container are written one member
// per line, indented by two spaces; the rest stays on one line. Ends without a newline.
std::string write_json_readable(const Json& value, int expand_levels = 0);

// A JSON string literal for `s`, quotes included.
std::string json_quote(const std::string& s);

// Shared by the two readers (this parser and data/json_cursor.h): the character a one-letter
// string escape stands for (\" \\ \/ \b \f \n \r \t), or 0 for any other letter (\u is read
// apart); and a code point appended as UTF-8.
char json_simple_escape(char letter);
void append_utf8(std::string& out, uint32_t code_point);

}  // namespace prm
