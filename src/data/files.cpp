#include "data/files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

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

// One allocation of the file's size and one read where the size is known (a 300 MB annotation
// file is not copied through a growing stream buffer); pipes and the like are read in chunks.
std::string read_file_bytes(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  PRM_CHECK(f != nullptr, "cannot open '", path, "' for reading: ", std::strerror(errno));
  std::string bytes;
  struct stat st {};
  if (::fstat(::fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    bytes.resize(static_cast<size_t>(st.st_size));
    bytes.resize(std::fread(bytes.data(), 1, bytes.size(), f));
  }
  char chunk[1 << 16];  // the rest (a file that grew, or one without a size)
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) bytes.append(chunk, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  PRM_CHECK(!failed, "error reading '", path, "': ", std::strerror(err));
  return bytes;
}

MappedFile::MappedFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  PRM_CHECK(fd >= 0, "cannot open '", path, "' for reading: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
      data_ = static_cast<const char*>(p);
      size_ = static_cast<size_t>(st.st_size);
      ::madvise(p, size_, MADV_SEQUENTIAL);
    }
  }
  ::close(fd);
  if (!data_) fallback_ = read_file_bytes(path);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<char*>(data_), size_);
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

namespace {

// "<name>.tmp.<digits>.<digits>", as write_file_atomic names its temp files.
bool is_temp_name(const std::string& name) {
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos || at == 0) return false;
  const std::string rest = name.substr(at + 5);  // "<digits>.<digits>"
  const size_t dot = rest.find('.');
  auto digits = [](const std::string& t) {
    return !t.empty() &&
           std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  return dot != std::string::npos && digits(rest.substr(0, dot)) && digits(rest.substr(dot + 1));
}

}  // namespace

int remove_stale_temp_files(const std::string& dir) {
  namespace fs = std::filesystem;
  int removed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file(ec) || !is_temp_name(e.path().filename().string())) continue;
    if (fs::remove(e.path(), ec)) ++removed;
  }
  return removed;
}

}  // namespace prm
