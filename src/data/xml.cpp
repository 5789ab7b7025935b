#include "data/xml.h"

#include <cstdint>

#include "data/files.h"
#include "tensor/error.h"

namespace prm::xml {

const Element* Element::child(const std::string& child_name) const {
  for (const auto& c : children)
    if (c->name == child_name) return c.get();
  return nullptr;
}

std::vector<const Element*> Element::children_named(const std::string& child_name) const {
  std::vector<const Element*> out;
  for (const auto& c : children)
    if (c->name == child_name) out.push_back(c.get());
  return out;
}

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Parser {
 public:
  Parser(const std::string& text, const std::string& source) : s_(text), source_(source) {}

  std::unique_ptr<Element> document() {
    skip_misc();
    if (pos_ < s_.size() && starts_with("<!DOCTYPE")) {
      skip_doctype();
      skip_misc();
    }
    if (pos_ >= s_.size() || s_[pos_] != '<') fail("expected the root element");
    std::unique_ptr<Element> root = element_tree();
    skip_misc();
    if (pos_ < s_.size()) fail("content after the root element");
    return root;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    int line = 1;
    for (size_t i = 0; i < pos_ && i < s_.size(); ++i) line += s_[i] == '\n';
    throw Error(str_cat(source_, ":", line, ": XML error: ", what));
  }
  // Line of pos_, counted incrementally (pos_ only moves forward).
  int line_now() {
    for (; counted_pos_ < pos_; ++counted_pos_) line_count_ += s_[counted_pos_] == '\n';
    return line_count_;
  }
  bool starts_with(const char* lit) const {
    return s_.compare(pos_, std::char_traits<char>::length(lit), lit) == 0;
  }
  void skip_space() {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
  }
  // Skips past the next occurrence of `end`, failing with `what` if there is none.
  void skip_past(const char* end, const char* what) {
    size_t p = s_.find(end, pos_);
    if (p == std::string::npos) fail(str_cat("unterminated ", what));
    pos_ = p + std::char_traits<char>::length(end);
  }
  // Whitespace, comments and processing instructions outside the root element.
  void skip_misc() {
    for (;;) {
      skip_space();
      if (starts_with("<!--")) {
        skip_past("-->", "comment");
      } else if (starts_with("<?")) {
        skip_past("?>", "processing instruction");
      } else {
        return;
      }
    }
  }
  void skip_doctype() {  // <!DOCTYPE name [ internal subset ]>: skipped, brackets balanced
    int bracket = 0;
    for (pos_ += 9; pos_ < s_.size(); ++pos_) {
      char c = s_[pos_];
      if (c == '[') ++bracket;
      if (c == ']') --bracket;
      if (c == '>' && bracket <= 0) {
        ++pos_;
        return;
      }
    }
    fail("unterminated <!DOCTYPE");
  }

  std::string name() {
    if (pos_ >= s_.size() || !is_name_start(s_[pos_])) fail("expected a name");
    size_t b = pos_;
    while (pos_ < s_.size() && is_name_char(s_[pos_])) ++pos_;
    return s_.substr(b, pos_ - b);
  }

  // Decodes character data up to (not including) `stop`, resolving entity references.
  void decode_until(char stop, std::string& out) {
    while (pos_ < s_.size() && s_[pos_] != stop) {
      char c = s_[pos_];
      if (c == '&') {
        entity(out);
      } else {
        if (stop != '<' && c == '<') fail("'<' inside an attribute value");
        out += c;
        ++pos_;
      }
    }
  }

  void entity(std::string& out) {
    size_t semi = s_.find(';', pos_);
    if (semi == std::string::npos || semi - pos_ > 12) fail("bad entity reference");
    std::string ent = s_.substr(pos_ + 1, semi - pos_ - 1);
    pos_ = semi + 1;
    if (ent == "amp")
      out += '&';
    else if (ent == "lt")
      out += '<';
    else if (ent == "gt")
      out += '>';
    else if (ent == "quot")
      out += '"';
    else if (ent == "apos")
      out += '\'';
    else if (ent.size() >= 2 && ent[0] == '#') {
      bool hex = ent[1] == 'x' || ent[1] == 'X';
      size_t start = hex ? 2 : 1;
      if (start >= ent.size()) fail("empty character reference");
      uint32_t cp = 0;
      for (size_t i = start; i < ent.size(); ++i) {
        char d = ent[i];
        int v = (d >= '0' && d <= '9')        ? d - '0'
                : hex && d >= 'a' && d <= 'f' ? d - 'a' + 10
                : hex && d >= 'A' && d <= 'F' ? d - 'A' + 10
                                              : -1;
        if (v < 0) fail(str_cat("bad character reference &", ent, ";"));
        cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
        if (cp > 0x10FFFF) fail(str_cat("character reference out of range &", ent, ";"));
      }
      if (cp == 0) fail("character reference to NUL");
      append_utf8(out, cp);
    } else {
      fail(str_cat("unknown entity &", ent, ";"));
    }
  }

  // Parses "<name attr='v' ...>" or "<name .../>" at pos_ (which is at '<'). Returns true when
  // the element is self-closing.
  bool open_tag(Element& e) {
    ++pos_;
    e.line = line_now();
    e.name = name();
    for (;;) {
      size_t before = pos_;
      skip_space();
      if (pos_ >= s_.size()) fail(str_cat("unterminated tag <", e.name));
      if (s_[pos_] == '>') {
        ++pos_;
        return false;
      }
      if (starts_with("/>")) {
        pos_ += 2;
        return true;
      }
      if (before == pos_) fail(str_cat("expected whitespace before an attribute in <", e.name));
      std::string key = name();
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != '=')
        fail(str_cat("attribute '", key, "' without a value"));
      ++pos_;
      skip_space();
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\''))
        fail("unquoted attribute value");
      char quote = s_[pos_++];
      std::string value;
      decode_until(quote, value);
      if (pos_ >= s_.size()) fail("unterminated attribute value");
      ++pos_;
      for (const auto& kv : e.attributes)
        if (kv.first == key) fail(str_cat("duplicate attribute '", key, "'"));
      e.attributes.emplace_back(std::move(key), std::move(value));
    }
  }

  // The root element and everything inside it, with an explicit stack instead of recursion.
  std::unique_ptr<Element> element_tree() {
    auto root = std::make_unique<Element>();
    if (open_tag(*root)) return root;
    std::vector<Element*> stack{root.get()};
    while (!stack.empty()) {
      Element& top = *stack.back();
      if (pos_ >= s_.size())
        fail(str_cat("missing </", top.name, "> for the element opened on line ", top.line));
      if (s_[pos_] != '<') {
        decode_until('<', top.text);
      } else if (starts_with("<!--")) {
        skip_past("-->", "comment");
      } else if (starts_with("<![CDATA[")) {
        size_t b = pos_ + 9;
        skip_past("]]>", "CDATA section");
        top.text.append(s_, b, pos_ - 3 - b);
      } else if (starts_with("<?")) {
        skip_past("?>", "processing instruction");
      } else if (starts_with("</")) {
        pos_ += 2;
        std::string closing = name();
        if (closing != top.name)
          fail(str_cat("</", closing, "> closes <", top.name, "> opened on line ", top.line));
        skip_space();
        if (pos_ >= s_.size() || s_[pos_] != '>') fail(str_cat("unterminated </", closing));
        ++pos_;
        stack.pop_back();
      } else if (starts_with("<!")) {
        fail("unexpected markup declaration inside an element");
      } else {
        auto child = std::make_unique<Element>();
        Element* raw = child.get();
        bool self_closing = open_tag(*raw);
        top.children.push_back(std::move(child));
        if (!self_closing) {
          if (static_cast<int>(stack.size()) >= kMaxDepth) fail("elements nested too deeply");
          stack.push_back(raw);
        }
      }
    }
    return root;
  }

  const std::string& s_;
  const std::string& source_;
  size_t pos_ = 0;
  size_t counted_pos_ = 0;
  int line_count_ = 1;
};

}  // namespace

std::string Element::trimmed_text() const { return trim(text); }

std::string Element::child_text(const std::string& child_name, const std::string& source) const {
  const Element* c = child(child_name);
  PRM_CHECK(c != nullptr, source, ":", line, ": <", name, "> has no <", child_name, ">");
  return c->trimmed_text();
}

const std::string* Element::attribute(const std::string& attr_name) const {
  for (const auto& kv : attributes)
    if (kv.first == attr_name) return &kv.second;
  return nullptr;
}

std::unique_ptr<Element> parse(const std::string& text, const std::string& source) {
  size_t start = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) start = 3;  // UTF-8 byte order mark
  if (start == 0) return Parser(text, source).document();
  std::string body = text.substr(start);
  return Parser(body, source).document();
}

std::unique_ptr<Element> parse_file(const std::string& path) {
  return parse(read_file_bytes(path), path);
}

}  // namespace prm::xml
