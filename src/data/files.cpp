#include "data/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <filesystem>
#include <regex>
#include <sstream>

#include "tensor/error.h"

namespace prm {

namespace {

std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// fsync of the directory that holds a renamed file. Errors are ignored: the data itself is
// already on disk, and some file systems refuse to sync a directory.
void sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  PRM_CHECK(in.good(), "cannot open '", path, "' for reading: ", std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  PRM_CHECK(!in.bad(), "error reading '", path, "'");
  return buf.str();
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = str_cat(path, ".tmp.", ::getpid(), ".", counter++);
  FILE* f = std::fopen(tmp.c_str(), "wbx");  // "x": fail rather than reuse an existing file
  PRM_CHECK(f != nullptr, "cannot create '", tmp, "' (to write '", path,
            "'): ", std::strerror(errno));
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() && std::fflush(f) == 0 &&
            ::fsync(::fileno(f)) == 0;
  int err = ok ? 0 : errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    std::remove(tmp.c_str());
    throw Error(str_cat("error writing '", path, "': ", std::strerror(err ? err : EIO)));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    std::remove(tmp.c_str());
    throw Error(str_cat("cannot rename '", tmp, "' to '", path, "': ", std::strerror(err)));
  }
  sync_dir(parent_dir(path));
}

int remove_stale_temp_files(const std::string& dir) {
  namespace fs = std::filesystem;
  // "<name>.tmp.<digits>.<digits>", as write_file_atomic names them.
  static const std::regex temp_name(R"(.+\.tmp\.[0-9]+\.[0-9]+)");
  int removed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file(ec) || !std::regex_match(name, temp_name)) continue;
    if (fs::remove(e.path(), ec)) ++removed;
  }
  return removed;
}

}  // namespace prm
