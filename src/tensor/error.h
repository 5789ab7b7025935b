// Errors that reach the user. Every check on user input throws prm::Error with a message that
// names the op (or file) and the offending shapes; nothing that guards input is an assert.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace prm {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

[[noreturn]] void throw_no_cuda(const char* file, int line);

}  // namespace prm

#define PRM_CHECK(cond, ...)                                      \
  do {                                                            \
    if (!(cond)) throw ::prm::Error(::prm::str_cat(__VA_ARGS__)); \
  } while (0)
