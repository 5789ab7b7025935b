#include "data/progress.h"

#include <atomic>
#include <cstdio>

namespace prm {

namespace {
std::atomic<bool> g_line_open{false};
}

void progress_update(const std::string& text) {
  std::fprintf(stderr, "\r%s   ", text.c_str());
  std::fflush(stderr);
  g_line_open.store(true);
}

void progress_end() {
  if (g_line_open.exchange(false)) std::fputc('\n', stderr);
}

}  // namespace prm
