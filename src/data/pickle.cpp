#include "data/pickle.h"

#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "tensor/error.h"

namespace prm {

namespace {

// Every opcode of pickle protocols 0 to 5, for messages: the refused ones are named too.
const char* opcode_name(unsigned char op) {
  switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return nullptr;
  }
}

// Text from the file made safe for a one-line message: at most 80 characters, control bytes
// shown as '?'.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 80)) out.push_back(static_cast<unsigned char>(c) < 0x20 ? '?' : c);
  if (s.size() > 80) out += "...";
  return out;
}

using Kind = PickleValue::Kind;

class Machine {
 public:
  Machine(std::string_view bytes, size_t pos, PickleHeap& heap, PickleRules& rules,
          const std::string& name)
      : b_(bytes), pos_(pos), heap_(heap), rules_(rules), name_(name) {}

  PickleValue run(size_t* end);

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(str_cat(name_, ": ", what, " (pickle byte ", op_at_, ")"));
  }
  void need(uint64_t n) const {
    if (n > b_.size() - pos_) fail("the pickle ends in the middle of an opcode (truncated file)");
  }
  uint64_t read_le(int n) {
    need(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b_[pos_ + i]);
    pos_ += n;
    return v;
  }
  std::string_view read_bytes(uint64_t n) {
    need(n);
    std::string_view s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string read_line() {
    const size_t end = b_.find('\n', pos_);
    if (end == std::string_view::npos || end - pos_ > 256)
      fail("a GLOBAL's name has no end of line within 256 bytes (damaged file)");
    std::string s(b_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }

  PickleValue pop() {
    if (stack_.size() <= floor()) fail("an opcode finds its stack empty (damaged file)");
    PickleValue v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PickleValue& top() {
    if (stack_.size() <= floor()) fail("an opcode finds its stack empty (damaged file)");
    return stack_.back();
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  // The values pushed since the last MARK, which is removed.
  std::vector<PickleValue> pop_to_mark() {
    if (marks_.empty()) fail("an opcode needs a MARK and there is none (damaged file)");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<PickleValue> items(stack_.begin() + mark, stack_.end());
    stack_.resize(mark);
    return items;
  }
  void push(PickleValue v) { stack_.push_back(v); }
  void push_int(int64_t i) { push(PickleValue{Kind::integer, i, 0}); }
  void push_text(std::string_view s) { push(heap_.add_text(std::string(s))); }

  void push_global(const std::string& module, const std::string& name) {
    const std::string global = module + "." + name;
    if (!rules_.allows(global))
      fail(str_cat("refused: the pickle asks for the global '", printable(global),
                   "', which is not one a state_dict needs; nothing in the file was run"));
    push(heap_.add_text(global, Kind::global));
  }
  void push_long(uint64_t n);
  void reduce();
  void append(PickleValue target, const std::vector<PickleValue>& items);
  void set_items(PickleValue target, const std::vector<PickleValue>& items);
  bool step(unsigned char op);

  std::string_view b_;
  size_t pos_;
  size_t op_at_ = 0;
  PickleHeap& heap_;
  PickleRules& rules_;
  const std::string& name_;
  std::vector<PickleValue> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleValue> memo_;
};

// LONG1: n bytes of little-endian two's complement.
void Machine::push_long(uint64_t n) {
  const std::string_view bytes = read_bytes(n);
  if (n > 8) {
    push(heap_.add_text(std::string(bytes), Kind::big_integer));
    return;
  }
  uint64_t v = 0;
  for (uint64_t i = n; i-- > 0;) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  if (n > 0 && n < 8 && (static_cast<unsigned char>(bytes[n - 1]) & 0x80)) v |= ~0ull << (8 * n);
  int64_t s;
  std::memcpy(&s, &v, 8);
  push_int(s);
}

void Machine::reduce() {
  const PickleValue args = pop();
  const PickleValue callable = pop();
  if (callable.kind != Kind::global)
    fail(str_cat("REDUCE calls ", pickle_kind_name(callable.kind),
                 " (only the allowed globals can be called)"));
  if (args.kind != Kind::tuple)
    fail(str_cat("REDUCE gives '", heap_.text(callable), "' ", pickle_kind_name(args.kind),
                 " instead of a tuple of arguments"));
  const std::string global = heap_.text(callable);  // a copy: call() may add texts
  push(rules_.call(heap_, global, args));
}

void Machine::append(PickleValue target, const std::vector<PickleValue>& items) {
  if (target.kind != Kind::list)
    fail(str_cat("APPEND to ", pickle_kind_name(target.kind), " (only lists take items)"));
  auto& list = heap_.sequences[target.i];
  list.insert(list.end(), items.begin(), items.end());
}

void Machine::set_items(PickleValue target, const std::vector<PickleValue>& items) {
  if (target.kind != Kind::dict)
    fail(str_cat("SETITEM on ", pickle_kind_name(target.kind), " (only dicts take items)"));
  if (items.size() % 2) fail("SETITEMS with a key and no value (damaged file)");
  auto& dict = heap_.dicts[target.i];
  for (size_t k = 0; k < items.size(); k += 2) dict.emplace_back(items[k], items[k + 1]);
}

// Executes one opcode; false at STOP.
bool Machine::step(unsigned char op) {
  switch (op) {
    case 0x80: {  // PROTO
      const uint64_t v = read_le(1);
      if (v > 5) fail(str_cat("pickle protocol ", v, " is newer than 5, the latest prm knows"));
      return true;
    }
    case 0x95:  // FRAME: a length prefix for buffering; the opcodes inside are read as they come
      if (read_le(8) > b_.size() - pos_) fail("a FRAME runs past the end (truncated file)");
      return true;
    case '.': return false;  // STOP
    case '(': marks_.push_back(stack_.size()); return true;
    case ')': push(heap_.add_sequence({}, Kind::tuple)); return true;
    case 't': push(heap_.add_sequence(pop_to_mark(), Kind::tuple)); return true;
    case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
      std::vector<PickleValue> items(op - 0x84);
      for (size_t k = items.size(); k-- > 0;) items[k] = pop();
      push(heap_.add_sequence(std::move(items), Kind::tuple));
      return true;
    }
    case ']': push(heap_.add_sequence({}, Kind::list)); return true;
    case 'a': {
      const PickleValue v = pop();
      append(top(), {v});
      return true;
    }
    case 'e': {
      const std::vector<PickleValue> items = pop_to_mark();
      append(top(), items);
      return true;
    }
    case '}': push(heap_.add_dict()); return true;
    case 's': {
      const PickleValue v = pop(), k = pop();
      set_items(top(), {k, v});
      return true;
    }
    case 'u': {
      const std::vector<PickleValue> items = pop_to_mark();
      set_items(top(), items);
      return true;
    }
    case 'N': push(PickleValue{}); return true;
    case 0x88: push(PickleValue{Kind::boolean, 1, 0}); return true;
    case 0x89: push(PickleValue{Kind::boolean, 0, 0}); return true;
    case 'J': push_int(static_cast<int32_t>(read_le(4))); return true;
    case 'K': push_int(static_cast<int64_t>(read_le(1))); return true;
    case 'M': push_int(static_cast<int64_t>(read_le(2))); return true;
    case 0x8a: push_long(read_le(1)); return true;  // LONG1
    case 'G': {  // BINFLOAT: big-endian IEEE double
      const std::string_view s = read_bytes(8);
      uint64_t bits = 0;
      for (char c : s) bits = (bits << 8) | static_cast<unsigned char>(c);
      PickleValue v{Kind::real, 0, 0};
      std::memcpy(&v.real, &bits, 8);
      push(v);
      return true;
    }
    case 'X': push_text(read_bytes(read_le(4))); return true;     // BINUNICODE
    case 0x8c: push_text(read_bytes(read_le(1))); return true;    // SHORT_BINUNICODE
    case 0x8d: push_text(read_bytes(read_le(8))); return true;    // BINUNICODE8
    case 'U': push_text(read_bytes(read_le(1))); return true;     // SHORT_BINSTRING
    case 'T': {                                                   // BINSTRING
      const int32_t n = static_cast<int32_t>(read_le(4));
      if (n < 0) fail("BINSTRING with a negative length (damaged file)");
      push_text(read_bytes(static_cast<uint64_t>(n)));
      return true;
    }
    case 'q': memo_[read_le(1)] = top(); return true;                   // BINPUT
    case 'r': memo_[read_le(4)] = top(); return true;                   // LONG_BINPUT
    case 0x94: memo_[memo_.size()] = top(); return true;                // MEMOIZE
    case 'h': case 'j': {                                               // BINGET, LONG_BINGET
      const uint64_t k = read_le(op == 'h' ? 1 : 4);
      auto it = memo_.find(k);
      if (it == memo_.end()) fail(str_cat("BINGET of memo slot ", k, ", never set (damaged file)"));
      push(it->second);
      return true;
    }
    case 'c': {  // GLOBAL
      const std::string module = read_line();
      const std::string name = read_line();
      push_global(module, name);
      return true;
    }
    case 0x93: {  // STACK_GLOBAL
      const PickleValue name = pop(), module = pop();
      if (name.kind != Kind::text || module.kind != Kind::text)
        fail("STACK_GLOBAL without a module and a name (damaged file)");
      push_global(std::string(heap_.text(module)), std::string(heap_.text(name)));
      return true;
    }
    case 'R': reduce(); return true;
    case 'b': {  // BUILD: sets an object's attributes; only an OrderedDict's, which are dropped
      const PickleValue state = pop();
      const PickleValue target = top();
      if (target.kind != Kind::dict)
        fail(str_cat("BUILD on ", pickle_kind_name(target.kind),
                     " (only an OrderedDict's attributes are accepted, and dropped)"));
      (void)state;
      return true;
    }
    case 'Q': push(rules_.persistent(heap_, pop())); return true;  // BINPERSID
    default: break;
  }
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", op);
  if (const char* known = opcode_name(op))
    fail(str_cat("refused: the pickle uses opcode ", known, " (", hex,
                 "), which a state_dict does not need; nothing in the file was run"));
  fail(str_cat("byte ", hex, " is not a pickle opcode (damaged file, or not a pickle)"));
}

PickleValue Machine::run(size_t* end) {
  for (;;) {
    op_at_ = pos_;
    if (pos_ >= b_.size()) fail("the pickle ends before its STOP opcode (truncated file)");
    const unsigned char op = static_cast<unsigned char>(b_[pos_++]);
    if (!step(op)) break;
  }
  if (stack_.size() != 1 || !marks_.empty())
    fail(str_cat("the pickle stops with ", stack_.size(), " values and ", marks_.size(),
                 " marks on its stack instead of one value (damaged file)"));
  *end = pos_;
  return stack_.back();
}

}  // namespace

const char* pickle_kind_name(PickleValue::Kind kind) {
  switch (kind) {
    case Kind::none: return "None";
    case Kind::boolean: return "a bool";
    case Kind::integer: return "an int";
    case Kind::big_integer: return "a big int";
    case Kind::real: return "a float";
    case Kind::text: return "a string";
    case Kind::tuple: return "a tuple";
    case Kind::list: return "a list";
    case Kind::dict: return "a dict";
    case Kind::global: return "a global";
    case Kind::object: return "an object";
  }
  return "a value";
}

PickleValue PickleHeap::add_text(std::string s, PickleValue::Kind kind) {
  texts.push_back(std::move(s));
  return PickleValue{kind, static_cast<int64_t>(texts.size() - 1), 0};
}

PickleValue PickleHeap::add_sequence(std::vector<PickleValue> items, PickleValue::Kind kind) {
  sequences.push_back(std::move(items));
  return PickleValue{kind, static_cast<int64_t>(sequences.size() - 1), 0};
}

PickleValue PickleHeap::add_dict() {
  dicts.emplace_back();
  return PickleValue{Kind::dict, static_cast<int64_t>(dicts.size() - 1), 0};
}

PickleValue unpickle(std::string_view bytes, size_t* pos, PickleHeap& heap, PickleRules& rules,
                     const std::string& name) {
  Machine machine(bytes, *pos, heap, rules, name);
  return machine.run(pos);
}

}  // namespace prm
