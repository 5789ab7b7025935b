// Whole-file reads and atomic writes (data/files.h): bytes round-trip, an existing file is
// replaced, and a failed write names the file and leaves neither a temp file nor a changed target.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "data/files.h"
#include "helpers.h"

using namespace prm;
namespace fs = std::filesystem;

namespace {

// A fresh empty folder for one test case, removed at the end.
struct ScratchDir {
  fs::path path;
  explicit ScratchDir(const std::string& name)
      : path(fs::temp_directory_path() / (name + "." + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

}  // namespace

TEST_CASE("files: atomic write then read, bytes exact, target replaced, no temp left") {
  ScratchDir dir("prm_test_files");
  const std::string path = (dir.path / "a.bin").string();
  std::string bytes;
  for (int i = 0; i < 3000; ++i) bytes.push_back(static_cast<char>(i * 7));  // NULs included
  write_file_atomic(path, bytes);
  CHECK(read_file_bytes(path) == bytes);
  write_file_atomic(path, "short");
  CHECK(read_file_bytes(path) == "short");
  write_file_atomic(path, "");
  CHECK(read_file_bytes(path).empty());
  CHECK(dir.names() == std::vector<std::string>{"a.bin"});
  // A bare file name writes into the working directory (its temp too).
  const std::string here = "test_files_here." + std::to_string(::getpid());
  write_file_atomic(here, "x");
  CHECK(read_file_bytes(here) == "x");
  fs::remove(here);
}

TEST_CASE("files: failures name the file and leave nothing behind") {
  ScratchDir dir("prm_test_files_fail");
  // No such folder: the temp file cannot be created.
  const std::string missing = (dir.path / "no" / "x.bin").string();
  std::string e = error_of([&] { write_file_atomic(missing, "data"); });
  CHECK(e.find(missing) != std::string::npos);
  CHECK(e.find("No such file or directory") != std::string::npos);
  // The target is a folder: writing succeeds, the rename fails, and the temp file is removed.
  fs::create_directories(dir.path / "target");
  const std::string target = (dir.path / "target").string();
  e = error_of([&] { write_file_atomic(target, "data"); });
  CHECK(e.find("cannot rename") != std::string::npos);
  CHECK(e.find(target) != std::string::npos);
  CHECK(dir.names() == std::vector<std::string>{"target"});
  CHECK(fs::is_directory(target));
  // Reading what is not there.
  e = error_of([&] { read_file_bytes(missing); });
  CHECK(e == "cannot open '" + missing + "' for reading: No such file or directory");
}
