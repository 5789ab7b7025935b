#include "data/json_cursor.h"

#include <algorithm>
#include <charconv>

#include "tensor/error.h"

namespace prm {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }


}  // namespace

JsonCursor::JsonCursor(std::string_view text, std::string source, int max_depth)
    : s_(text), source_(std::move(source)), max_depth_(max_depth) {}

void JsonCursor::corrupt(const std::string& what, size_t at) const {
  throw Error(str_cat(source_, ": corrupt JSON (", what, " at byte ", at, ")"));
}

void JsonCursor::fail(const std::string& what) const {
  throw Error(str_cat(source_, ": ", what, " at byte ", value_start_));
}

void JsonCursor::skip_space() {
  while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
}

char JsonCursor::next_char() {
  skip_space();
  if (pos_ >= s_.size()) corrupt("unexpected end of the text", pos_);
  value_start_ = pos_;
  return s_[pos_];
}

Json::Kind JsonCursor::peek() {
  switch (next_char()) {
    case '{':
      return Json::Kind::object;
    case '[':
      return Json::Kind::array;
    case '"':
      return Json::Kind::string;
    case 't':
    case 'f':
      return Json::Kind::boolean;
    case 'n':
      return Json::Kind::null;
    default: {
      const char c = s_[pos_];
      if (c == '-' || is_digit(c)) return Json::Kind::number;
      corrupt(str_cat("unexpected character '", c, "'"), pos_);
    }
  }
}

void JsonCursor::wrong_kind(const char* expected) {
  const Json::Kind found = peek();
  fail(str_cat("expected ", expected, ", found ", json_kind_name(found)));
}

void JsonCursor::enter(bool object) {
  if (static_cast<int>(stack_.size()) >= max_depth_)
    corrupt(str_cat("nested too deeply (more than ", max_depth_, " levels)"), pos_);
  ++pos_;
  stack_.push_back({object, true, {}, {}});
}

// A field name of the innermost object: a repeat is an error, as in parse_json. A few names are
// compared one by one (most objects have a handful), more go through a set.
void JsonCursor::add_name(const std::string& name, size_t at) {
  Level& l = stack_.back();
  bool repeated;
  if (l.names.size() < 16) {
    repeated = std::find(l.names.begin(), l.names.end(), name) != l.names.end();
    if (!repeated) l.names.push_back(name);
  } else {
    if (l.many.empty()) l.many.insert(l.names.begin(), l.names.end());
    repeated = !l.many.insert(name).second;
  }
  if (repeated) corrupt("duplicate name \"" + name + "\"", at);
}

void JsonCursor::begin_array() {
  if (peek() != Json::Kind::array) wrong_kind("an array");
  enter(false);
}

void JsonCursor::begin_object() {
  if (peek() != Json::Kind::object) wrong_kind("an object");
  enter(true);
}

// At a member boundary of the innermost container: its closing bracket (leave it, false) or,
// after the first member, a ',' (true).
bool JsonCursor::next_item() {
  PRM_CHECK(!stack_.empty() && !stack_.back().object, "JsonCursor: next_item outside an array");
  const char c = next_char();
  if (c == ']') {
    ++pos_;
    stack_.pop_back();
    return false;
  }
  if (!stack_.back().first) {
    if (c != ',') corrupt("expected ',' or ']'", pos_);
    ++pos_;
    next_char();
  }
  stack_.back().first = false;
  return true;
}

bool JsonCursor::next_field() {
  PRM_CHECK(!stack_.empty() && stack_.back().object, "JsonCursor: next_field outside an object");
  char c = next_char();
  if (c == '}') {
    ++pos_;
    stack_.pop_back();
    return false;
  }
  if (!stack_.back().first) {
    if (c != ',') corrupt("expected ',' or '}'", pos_);
    ++pos_;
    c = next_char();
  }
  stack_.back().first = false;
  if (c != '"') corrupt("expected a field name", pos_);
  const size_t at = pos_;
  parse_string(name_);
  add_name(name_, at);
  expect(':', "expected ':' after a field name");
  next_char();  // the value's position, for fail()
  return true;
}

void JsonCursor::expect(char c, const char* what) {
  skip_space();
  if (pos_ >= s_.size() || s_[pos_] != c) corrupt(what, pos_);
  ++pos_;
}

// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
std::string_view JsonCursor::number_text() {
  const size_t start = pos_;
  auto at = [&](size_t i) { return i < s_.size() ? s_[i] : '\0'; };
  if (at(pos_) == '-') ++pos_;
  if (at(pos_) == '0') {
    ++pos_;
    if (is_digit(at(pos_))) corrupt("a number with a leading zero", start);
  } else if (is_digit(at(pos_))) {
    while (is_digit(at(pos_))) ++pos_;
  } else {
    corrupt("expected a digit", pos_);
  }
  if (at(pos_) == '.') {
    ++pos_;
    if (!is_digit(at(pos_))) corrupt("expected a digit after the decimal point", pos_);
    while (is_digit(at(pos_))) ++pos_;
  }
  if (at(pos_) == 'e' || at(pos_) == 'E') {
    ++pos_;
    if (at(pos_) == '+' || at(pos_) == '-') ++pos_;
    if (!is_digit(at(pos_))) corrupt("expected a digit in the exponent", pos_);
    while (is_digit(at(pos_))) ++pos_;
  }
  return s_.substr(start, pos_ - start);
}

// One pass over a number literal: validates it as number_text() does and returns its value,
// correctly rounded as std::from_chars gives it. Most numbers in annotation files are short
// decimals ("123.45"): their digits as an integer m < 10^15 and a power of ten 10^k with
// |k| <= 22 are both exact doubles, so m / 10^-k is one correctly rounded operation (Clinger's
// fast path) and equals from_chars' result. Anything else (an exponent, more digits) goes to
// from_chars.
double JsonCursor::number() {
  static const double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                  1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  const char* b = s_.data();
  const size_t n = s_.size(), start = pos_;
  size_t i = pos_;
  const bool negative = i < n && b[i] == '-';
  i += negative;
  uint64_t m = 0;
  int digits = 0, exponent = 0;
  if (i < n && b[i] == '0') {
    ++i;
    ++digits;
    if (i < n && is_digit(b[i])) corrupt("a number with a leading zero", start);
  } else if (i < n && is_digit(b[i])) {
    for (; i < n && is_digit(b[i]); ++i, ++digits) m = m * 10 + static_cast<uint64_t>(b[i] - '0');
  } else {
    corrupt("expected a digit", i);
  }
  if (i < n && b[i] == '.') {
    ++i;
    if (i >= n || !is_digit(b[i])) corrupt("expected a digit after the decimal point", i);
    for (; i < n && is_digit(b[i]); ++i, ++digits, --exponent)
      m = m * 10 + static_cast<uint64_t>(b[i] - '0');
  }
  bool simple = true;
  if (i < n && (b[i] == 'e' || b[i] == 'E')) {
    simple = false;
    ++i;
    if (i < n && (b[i] == '+' || b[i] == '-')) ++i;
    if (i >= n || !is_digit(b[i])) corrupt("expected a digit in the exponent", i);
    while (i < n && is_digit(b[i])) ++i;
  }
  pos_ = i;
  if (simple && digits <= 15 && exponent >= -22) {
    const double v = static_cast<double>(m) / kPow10[-exponent];
    return negative ? -v : v;
  }
  double v = 0;
  const std::from_chars_result r = std::from_chars(b + start, b + i, v);
  if (r.ec != std::errc() || r.ptr != b + i)
    corrupt(str_cat("number ", s_.substr(start, i - start), " out of range"), start);
  return v;
}

double JsonCursor::read_double() {
  if (peek() != Json::Kind::number) wrong_kind("a number");
  return number();
}

void JsonCursor::read_doubles(std::vector<double>& out) {
  begin_array();
  scratch_.clear();
  skip_space();
  if (pos_ < s_.size() && s_[pos_] == ']') {
    ++pos_;
    stack_.pop_back();
    return;
  }
  while (true) {
    skip_space();
    value_start_ = pos_;
    if (pos_ < s_.size() && s_[pos_] != '-' && !is_digit(s_[pos_])) wrong_kind("a number");
    scratch_.push_back(number());
    skip_space();
    if (pos_ >= s_.size()) corrupt("unexpected end of the text", pos_);
    const char c = s_[pos_++];
    if (c == ']') break;
    if (c != ',') corrupt("expected ',' or ']'", pos_ - 1);
  }
  stack_.pop_back();
  out.insert(out.end(), scratch_.begin(), scratch_.end());
}

int64_t JsonCursor::read_int64() {
  if (peek() != Json::Kind::number) wrong_kind("an integer");
  const std::string_view text = number_text();
  int64_t v = 0;
  const std::from_chars_result r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size())
    fail(str_cat("expected an integer, found ", text));
  return v;
}

bool JsonCursor::read_bool() {
  if (peek() != Json::Kind::boolean) wrong_kind("true or false");
  const bool v = s_[pos_] == 't';
  literal(v ? "true" : "false");
  return v;
}

void JsonCursor::read_null() {
  if (peek() != Json::Kind::null) wrong_kind("null");
  literal("null");
}

void JsonCursor::literal(const char* word) {
  const std::string_view w(word);
  if (s_.substr(pos_, w.size()) != w) corrupt(str_cat("expected '", w, "'"), pos_);
  pos_ += w.size();
}

std::string JsonCursor::read_string() {
  if (peek() != Json::Kind::string) wrong_kind("a string");
  std::string out;
  parse_string(out);
  return out;
}

void JsonCursor::parse_string(std::string& out) {
  out.clear();
  ++pos_;  // the opening quote
  while (true) {
    // A run of plain characters at once: most strings have no escape.
    const size_t run = pos_;
    while (pos_ < s_.size() && s_[pos_] != '"' && s_[pos_] != '\\' &&
           static_cast<unsigned char>(s_[pos_]) >= 0x20)
      ++pos_;
    out.append(s_.data() + run, pos_ - run);
    if (pos_ >= s_.size()) corrupt("unterminated string", pos_);
    const char c = s_[pos_];
    if (c == '"') {
      ++pos_;
      return;
    }
    if (c != '\\') corrupt("control character in a string", pos_);
    if (++pos_ >= s_.size()) corrupt("unterminated string", pos_);
    const char e = s_[pos_++];
    if (const char plain = json_simple_escape(e)) {
      out.push_back(plain);
      continue;
    }
    if (e != 'u') corrupt(str_cat("bad escape '\\", e, "' in a string"), pos_ - 2);
    const size_t start = pos_ - 2;
    uint32_t cp = hex4();
    if (cp >= 0xDC00 && cp <= 0xDFFF) corrupt("lone low surrogate in a \\u escape", start);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (s_.substr(pos_, 2) != "\\u")
        corrupt("high surrogate not followed by a \\u low surrogate", start);
      pos_ += 2;
      const uint32_t low = hex4();
      if (low < 0xDC00 || low > 0xDFFF)
        corrupt("high surrogate not followed by a \\u low surrogate", start);
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(out, cp);
  }
}

uint32_t JsonCursor::hex4() {
  if (pos_ + 4 > s_.size()) corrupt("truncated \\u escape", pos_);
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    const char c = s_[pos_ + i];
    int d;
    if (is_digit(c)) d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else corrupt("bad \\u escape (4 hex digits expected)", pos_);
    v = v * 16 + static_cast<uint32_t>(d);
  }
  pos_ += 4;
  return v;
}

// A byte-level walk (the public calls' bookkeeping, per value, costs more than the bytes): one
// value, then closing brackets or a ',' (and a field name) until back at the starting depth.
void JsonCursor::skip() {
  const size_t base = stack_.size();
  std::string scratch;
  auto field_name = [&] {
    skip_space();
    if (pos_ >= s_.size() || s_[pos_] != '"') corrupt("expected a field name", pos_);
    const size_t at = pos_;
    parse_string(scratch);
    add_name(scratch, at);
    expect(':', "expected ':' after a field name");
  };
  while (true) {
    const char c = next_char();
    if (c == '{' || c == '[') {
      enter(c == '{');
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == (c == '{' ? '}' : ']')) {
        ++pos_;
        stack_.pop_back();
      } else {
        if (c == '{') field_name();
        continue;  // to the first member's value
      }
    } else if (c == '"') {
      parse_string(scratch);
    } else if (c == '-' || is_digit(c)) {
      number();  // not number_text(): a skipped number must fit a double too, as parse_json's
    } else if (c == 't') {
      literal("true");
    } else if (c == 'f') {
      literal("false");
    } else if (c == 'n') {
      literal("null");
    } else {
      corrupt(str_cat("unexpected character '", c, "'"), pos_);
    }
    // After a value: leave finished containers, or step to the next member.
    while (stack_.size() > base) {
      skip_space();
      if (pos_ >= s_.size()) corrupt("unexpected end of the text", pos_);
      const bool object = stack_.back().object;
      const char d = s_[pos_];
      if (d == ',') {
        ++pos_;
        if (object) field_name();
        break;
      }
      if (d != (object ? '}' : ']')) corrupt(object ? "expected ',' or '}'" : "expected ',' or ']'", pos_);
      ++pos_;
      stack_.pop_back();
    }
    if (stack_.size() == base) return;
  }
}

void JsonCursor::end_document() {
  PRM_CHECK(stack_.empty(), "JsonCursor: end_document inside a container");
  skip_space();
  if (pos_ != s_.size()) corrupt("trailing characters after the JSON value", pos_);
}

}  // namespace prm
