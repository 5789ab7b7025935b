// A restricted unpickler: the part of Python's pickle that a torch.save'd state_dict uses, and
// nothing else. A pickle is a program for a small stack machine whose GLOBAL and REDUCE opcodes
// import and call any Python function (Python's torch.load runs `os.system` if a file asks);
// here a GLOBAL is looked up in the caller's allow-list the moment it is read, REDUCE only asks
// the caller to build what an allowed global stands for, and any opcode outside the list below
// stops the load. Nothing is imported, called or executed; the result is plain data.
//
// Opcodes interpreted (protocols 2 to 5, as torch.save and Python 2's cPickle write them):
//   PROTO FRAME STOP MARK; EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3; EMPTY_LIST APPEND APPENDS;
//   EMPTY_DICT SETITEM SETITEMS; NONE NEWTRUE NEWFALSE; BININT BININT1 BININT2 LONG1 BINFLOAT;
//   BINUNICODE SHORT_BINUNICODE BINUNICODE8 BINSTRING SHORT_BINSTRING (all read as text);
//   BINPUT LONG_BINPUT MEMOIZE BINGET LONG_BINGET; GLOBAL STACK_GLOBAL REDUCE; BUILD (on a
//   dict only, whose attributes are dropped: an OrderedDict state_dict's `_metadata`); BINPERSID.
// Everything else (INST, OBJ, NEWOBJ, EXT*, the text-protocol opcodes, bytes, sets, ...) is
// refused with its name: one line, naming the file, the opcode and its byte offset.
//
// Values live in tables owned by a PickleHeap and refer to each other by index, so that shared
// references (the memo) cost nothing and a pickle that makes a list contain itself builds no
// ownership cycle; nothing here walks a value recursively.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace prm {

struct PickleValue {
  enum class Kind : uint8_t {
    none, boolean, integer,
    big_integer,  // LONG1 wider than 64 bits: its little-endian bytes in the text table
    real, text, tuple, list, dict,
    global,  // an allowed global, "module.name" in the text table
    object   // built by the caller's rules (call, persistent): an index into their own table
  };
  Kind kind = Kind::none;
  int64_t i = 0;  // boolean, integer: the value; others: the index into their table
  double real = 0;
};

// Human-readable kind, for messages ("a tuple", "the text 'x'" is the caller's business).
const char* pickle_kind_name(PickleValue::Kind kind);

struct PickleHeap {
  std::vector<std::string> texts;                    // text, big_integer, global
  std::vector<std::vector<PickleValue>> sequences;   // tuple, list
  std::vector<std::vector<std::pair<PickleValue, PickleValue>>> dicts;  // in insertion order

  PickleValue add_text(std::string s, PickleValue::Kind kind = PickleValue::Kind::text);
  PickleValue add_sequence(std::vector<PickleValue> items, PickleValue::Kind kind);
  PickleValue add_dict();

  const std::string& text(const PickleValue& v) const { return texts[v.i]; }
  const std::vector<PickleValue>& items(const PickleValue& v) const { return sequences[v.i]; }
  const std::vector<std::pair<PickleValue, PickleValue>>& entries(const PickleValue& v) const {
    return dicts[v.i];
  }
};

// What a pickle may ask for, decided by the caller. Each member throws prm::Error to refuse.
class PickleRules {
 public:
  virtual ~PickleRules() = default;
  // Whether GLOBAL module.name may be named at all ("collections.OrderedDict").
  virtual bool allows(const std::string& global) const = 0;
  // What REDUCE of an allowed global with the tuple `args` stands for.
  virtual PickleValue call(PickleHeap& heap, const std::string& global,
                           const PickleValue& args) = 0;
  // What the persistent id `id` (BINPERSID) stands for.
  virtual PickleValue persistent(PickleHeap& heap, const PickleValue& id) = 0;
};

// Interprets the pickle that starts at bytes[*pos] up to its STOP, leaves *pos just after it and
// returns the pickled value. `name` (the file) starts every error message.
PickleValue unpickle(std::string_view bytes, size_t* pos, PickleHeap& heap, PickleRules& rules,
                     const std::string& name);

}  // namespace prm
