#include "data/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

#include "tensor/error.h"

namespace prm {

// ---- The value ----

const char* json_kind_name(Json::Kind kind) {
  switch (kind) {
    case Json::Kind::null:
      return "null";
    case Json::Kind::boolean:
      return "a boolean";
    case Json::Kind::number:
      return "a number";
    case Json::Kind::string:
      return "a string";
    case Json::Kind::array:
      return "an array";
    case Json::Kind::object:
      return "an object";
  }
  return "?";
}

Json::Json(double v) : kind_(Kind::number), number_(v) {
  PRM_CHECK(std::isfinite(v), "JSON: cannot write the number ", v,
            " (JSON has no NaN or infinity)");
  char buf[32];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round trip
  text_.assign(buf, r.ptr);
}

Json Json::from_int(int64_t v) {
  Json j;
  j.kind_ = Kind::number;
  j.number_ = static_cast<double>(v);
  j.text_ = std::to_string(v);
  return j;
}

Json Json::from_uint(uint64_t v) {
  Json j;
  j.kind_ = Kind::number;
  j.number_ = static_cast<double>(v);
  j.text_ = std::to_string(v);
  return j;
}

Json Json::fixed(double v, int decimals) {
  PRM_CHECK(decimals >= 0 && decimals <= 30, "Json::fixed: decimals ", decimals, " out of [0, 30]");
  Json j(v);      // checks finiteness
  char buf[400];  // %f of the largest double has 309 digits before the point
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  j.text_ = buf;
  std::from_chars(j.text_.data(), j.text_.data() + j.text_.size(), j.number_);  // the rounded value
  return j;
}

Json Json::array(std::vector<Json> items) {
  Json j;
  j.kind_ = Kind::array;
  j.items_ = std::move(items);
  return j;
}

Json Json::object(Fields fields) {
  Json j;
  j.kind_ = Kind::object;
  for (auto& [name, value] : fields) {
    PRM_CHECK(j.find(name) == nullptr, "JSON: repeated name \"", name, "\" in an object");
    j.fields_.emplace_back(std::move(name), std::move(value));
  }
  return j;
}

void Json::require(Kind k) const {
  PRM_CHECK(kind_ == k, "JSON: expected ", json_kind_name(k), ", found ", json_kind_name(kind_));
}

bool Json::as_bool() const {
  require(Kind::boolean);
  return bool_;
}

double Json::as_double() const {
  require(Kind::number);
  return number_;
}

int64_t Json::as_int64() const {
  int64_t v = 0;
  PRM_CHECK(get_int64(v), "JSON: expected an integer, found ",
            is_number() ? "the number " + text_ : std::string(json_kind_name(kind_)));
  return v;
}

const std::string& Json::as_string() const {
  require(Kind::string);
  return text_;
}

const std::string& Json::number_text() const {
  require(Kind::number);
  return text_;
}

bool Json::get_int64(int64_t& out) const {
  if (kind_ != Kind::number || text_.find_first_of(".eE") != std::string::npos) return false;
  const char* end = text_.data() + text_.size();
  const std::from_chars_result r = std::from_chars(text_.data(), end, out);
  return r.ec == std::errc() && r.ptr == end;
}

bool Json::get_uint64(uint64_t& out) const {
  if (kind_ != Kind::number || text_.empty() || text_[0] == '-' ||
      text_.find_first_of(".eE") != std::string::npos)
    return false;
  const char* end = text_.data() + text_.size();
  const std::from_chars_result r = std::from_chars(text_.data(), end, out);
  return r.ec == std::errc() && r.ptr == end;
}

const std::vector<Json>& Json::items() const {
  require(Kind::array);
  return items_;
}

Json& Json::push_back(Json value) {
  require(Kind::array);
  items_.push_back(std::move(value));
  return items_.back();
}

const Json::Fields& Json::fields() const {
  require(Kind::object);
  return fields_;
}

const Json* Json::find(const std::string& name) const {
  require(Kind::object);
  for (const auto& f : fields_)
    if (f.first == name) return &f.second;
  return nullptr;
}

const Json& Json::at(const std::string& name) const {
  const Json* v = find(name);
  PRM_CHECK(v != nullptr, "JSON: no field \"", name, "\"");
  return *v;
}

Json& Json::set(const std::string& name, Json value) {
  require(Kind::object);
  for (auto& f : fields_)
    if (f.first == name) return f.second = std::move(value);
  fields_.emplace_back(name, std::move(value));
  return fields_.back().second;
}

size_t Json::size() const {
  return kind_ == Kind::array ? items_.size() : kind_ == Kind::object ? fields_.size() : 0;
}

bool Json::operator==(const Json& o) const {
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case Kind::null:
      return true;
    case Kind::boolean:
      return bool_ == o.bool_;
    case Kind::number: {  // by value; integers exactly, beyond double precision too
      int64_t a, b;
      if (get_int64(a) && o.get_int64(b)) return a == b;
      uint64_t ua, ub;
      if (get_uint64(ua) && o.get_uint64(ub)) return ua == ub;
      return number_ == o.number_;
    }
    case Kind::string:
      return text_ == o.text_;
    case Kind::array:
      return items_ == o.items_;
    case Kind::object:  // field order does not matter
      if (fields_.size() != o.fields_.size()) return false;
      for (const auto& [name, value] : fields_) {
        const Json* other = o.find(name);
        if (!other || *other != value) return false;
      }
      return true;
  }
  return false;
}

// ---- The parser ----

class JsonParser {
 public:
  JsonParser(const std::string& s, const std::string& source, int max_depth)
      : s_(s), source_(source), max_depth_(max_depth) {}

  Json document() {
    Json v = value(1);
    skip_space();
    if (pos_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { fail_at(what, pos_); }
  [[noreturn]] void fail_at(const std::string& what, size_t at) const {
    throw Error(str_cat(source_, ": corrupt JSON (", what, " at byte ", at, ")"));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool at_end() const { return pos_ >= s_.size(); }
  void skip_space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (at_end() || peek() != c) fail(str_cat("expected '", c, "'"));
    ++pos_;
  }
  bool take_word(const char* w) {
    const size_t n = std::strlen(w);
    if (s_.compare(pos_, n, w) != 0) return false;
    pos_ += n;
    return true;
  }
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  Json value(int depth) {
    skip_space();
    if (at_end()) fail("expected a value, found the end of the text");
    const char c = peek();
    if (c == '{' || c == '[') {
      if (depth > max_depth_)
        fail(str_cat("nested too deeply (more than ", max_depth_, " levels)"));
      return c == '{' ? object(depth) : array(depth);
    }
    if (c == '"') {
      Json v;
      v.kind_ = Json::Kind::string;
      v.text_ = string();
      return v;
    }
    if (c == '-' || is_digit(c)) return number();
    if (take_word("true")) return Json(true);
    if (take_word("false")) return Json(false);
    if (take_word("null")) return Json();
    fail("expected a value");
  }

  Json object(int depth) {
    Json v = Json::object();
    std::set<std::string> names;
    ++pos_;  // '{'
    skip_space();
    if (peek() == '}') {
      ++pos_;
      return v;
    }
    while (true) {
      skip_space();
      const size_t name_at = pos_;
      std::string name = string();
      if (!names.insert(name).second) fail_at("duplicate name \"" + name + "\"", name_at);
      expect(':');
      Json member = value(depth + 1);
      v.fields_.emplace_back(std::move(name), std::move(member));
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}');
      return v;
    }
  }

  Json array(int depth) {
    Json v = Json::array();
    ++pos_;  // '['
    skip_space();
    if (peek() == ']') {
      ++pos_;
      return v;
    }
    while (true) {
      v.items_.push_back(value(depth + 1));
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect(']');
      return v;
    }
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  Json number() {
    const size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
      if (is_digit(peek())) fail("a number with a leading zero");
    } else if (is_digit(peek())) {
      while (is_digit(peek())) ++pos_;
    } else {
      fail("expected a digit");
    }
    if (peek() == '.') {
      ++pos_;
      if (!is_digit(peek())) fail("expected a digit after the decimal point");
      while (is_digit(peek())) ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!is_digit(peek())) fail("expected a digit in the exponent");
      while (is_digit(peek())) ++pos_;
    }
    Json v;
    v.kind_ = Json::Kind::number;
    v.text_ = s_.substr(start, pos_ - start);
    // from_chars reads no leading '+' and, unlike strtod, ignores the locale.
    const char* end = v.text_.data() + v.text_.size();
    const std::from_chars_result r = std::from_chars(v.text_.data(), end, v.number_);
    if (r.ec != std::errc() || r.ptr != end) fail_at("number " + v.text_ + " out of range", start);
    return v;
  }

  std::string string() {
    if (peek() != '"') fail("expected a string");
    ++pos_;
    std::string out;
    while (true) {
      if (at_end()) fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      ++pos_;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (at_end()) fail("unterminated string");
      const char e = s_[pos_++];
      if (const char plain = json_simple_escape(e)) out.push_back(plain);
      else if (e == 'u') append_utf8(out, code_point());
      else fail_at(str_cat("bad escape '\\", e, "' in a string"), pos_ - 2);
    }
  }

  uint32_t hex4() {
    const size_t start = pos_;
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9')
        v |= h - '0';
      else if (h >= 'a' && h <= 'f')
        v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F')
        v |= h - 'A' + 10;
      else
        fail_at("bad \\u escape (4 hex digits expected)", start);
    }
    return v;
  }

  // After "\u": one code point, joining a UTF-16 surrogate pair.
  uint32_t code_point() {
    const size_t start = pos_ - 2;
    const uint32_t cp = hex4();
    if (cp >= 0xDC00 && cp <= 0xDFFF) fail_at("lone low surrogate in a \\u escape", start);
    if (cp < 0xD800 || cp > 0xDBFF) return cp;
    if (!take_word("\\u")) fail_at("high surrogate not followed by a \\u low surrogate", start);
    const uint32_t low = hex4();
    if (low < 0xDC00 || low > 0xDFFF)
      fail_at("high surrogate not followed by a \\u low surrogate", start);
    return 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
  }



  const std::string& s_;
  const std::string& source_;
  const int max_depth_;
  size_t pos_ = 0;
};

char json_simple_escape(char letter) {
  switch (letter) {
    case '"':
    case '\\':
    case '/':
      return letter;
    case 'b':
      return '\b';
    case 'f':
      return '\f';
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    default:
      return 0;
  }
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

Json parse_json(const std::string& text, const std::string& source, int max_depth) {
  return JsonParser(text, source, max_depth).document();
}

// ---- The writer ----

std::string json_quote(const std::string& s) {
  static const char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      out += "\\u00";
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 15]);
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

namespace {

struct Writer {
  bool spaces;        // ", " and ": " rather than "," and ":"
  int expand_levels;  // containers down to this level, when they hold containers, go multi-line
  std::string out;

  static bool holds_container(const Json& v) {
    if (v.is_array()) {
      for (const Json& x : v.items())
        if (x.is_array() || x.is_object()) return true;
    } else if (v.is_object()) {
      for (const auto& f : v.fields())
        if (f.second.is_array() || f.second.is_object()) return true;
    }
    return false;
  }

  void separator(bool first, bool expand, int level) {
    if (!first) out += spaces && !expand ? ", " : ",";
    if (expand) {
      out.push_back('\n');
      out.append(2 * static_cast<size_t>(level), ' ');
    }
  }

  void write(const Json& v, int level) {
    switch (v.kind()) {
      case Json::Kind::null:
        out += "null";
        return;
      case Json::Kind::boolean:
        out += v.as_bool() ? "true" : "false";
        return;
      case Json::Kind::number:
        out += v.number_text();
        return;
      case Json::Kind::string:
        out += json_quote(v.as_string());
        return;
      case Json::Kind::array:
      case Json::Kind::object:
        break;
    }
    const bool expand = level <= expand_levels && holds_container(v);
    const bool is_array = v.is_array();
    out.push_back(is_array ? '[' : '{');
    bool first = true;
    if (is_array) {
      for (const Json& x : v.items()) {
        separator(first, expand, level);
        write(x, level + 1);
        first = false;
      }
    } else {
      for (const auto& [name, x] : v.fields()) {
        separator(first, expand, level);
        out += json_quote(name);
        out += spaces ? ": " : ":";
        write(x, level + 1);
        first = false;
      }
    }
    if (expand && v.size() > 0) {
      out.push_back('\n');
      out.append(2 * static_cast<size_t>(level - 1), ' ');
    }
    out.push_back(is_array ? ']' : '}');
  }
};

}  // namespace

std::string write_json(const Json& value) {
  Writer w{false, 0, {}};
  w.write(value, 1);
  return w.out;
}

std::string write_json_readable(const Json& value, int expand_levels) {
  Writer w{true, expand_levels, {}};
  w.write(value, 1);
  return w.out;
}

}  // namespace prm
