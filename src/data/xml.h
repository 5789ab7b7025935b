// A small XML reader for PASCAL VOC annotation files: elements, attributes, text, comments,
// processing instructions (<?xml ...?>), <!DOCTYPE ...>, CDATA sections, the five predefined
// entities and numeric character references, CRLF and any whitespace. No namespaces, no DTD
// validation, no external entities. Parsing is iterative (no recursion), so deep nesting from a
// hostile file cannot overflow the stack; a depth limit still bounds memory.
//
// Errors throw prm::Error "<source>:<line>: <what>", naming the file the caller passes as source.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace prm::xml {

struct Element {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attributes;
  std::vector<std::unique_ptr<Element>> children;
  std::string text;  // concatenated character data directly inside this element (entities decoded)
  int line = 0;      // line of the opening tag, for error messages

  // The first child element with this name, or nullptr.
  const Element* child(const std::string& child_name) const;
  // All child elements with this name, in document order.
  std::vector<const Element*> children_named(const std::string& child_name) const;
  // The text with leading and trailing whitespace removed.
  std::string trimmed_text() const;
  // The trimmed text of the named child; throws prm::Error naming `source` if it is missing.
  std::string child_text(const std::string& child_name, const std::string& source) const;
  const std::string* attribute(const std::string& attr_name) const;  // nullptr when absent
};

constexpr int kMaxDepth = 512;

// Parses a whole document; returns its root element. `source` names the input in errors.
std::unique_ptr<Element> parse(const std::string& text, const std::string& source);
std::unique_ptr<Element> parse_file(const std::string& path);

}  // namespace prm::xml
