// Whole-file reads and crash-safe writes, shared by every file format in data/ (.npy,
// .safetensors, PNG, reports) and by the checkpoints.
#pragma once
#include <string>
#include <string_view>

namespace prm {

// The whole file as bytes; prm::Error naming the file when it cannot be opened or read.
std::string read_file_bytes(const std::string& path);

// A file's bytes mapped read-only into memory (mmap): no copy and no zeroed buffer, for large
// files read once (COCO annotations). Anything mmap cannot map (a pipe, an empty file) is read
// with read_file_bytes instead. prm::Error naming the file when it cannot be opened.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  std::string_view bytes() const { return data_ ? std::string_view(data_, size_) : fallback_; }

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
  std::string fallback_;
};

// Replaces `path` with `bytes` so that a reader (or a crash, or a full disk) leaves either the old
// file or the complete new one, never a half-written one: the bytes go to a fresh temp file in
// the same directory (`path` + ".tmp.<pid>.<n>"), are flushed to disk (fwrite, fflush, fsync),
// and the temp file is renamed over `path`; then the directory is synced so that the rename
// itself is durable (best effort: some file systems cannot sync a directory). On any failure the
// temp file is removed and prm::Error names the file and the reason.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Removes the temp files that write_file_atomic left in `dir` when the process was killed before
// its rename (names "<file>.tmp.<pid>.<n>"); returns how many. For a folder only this program
// writes into, at the start of a run (a write in progress by another process would be lost).
int remove_stale_temp_files(const std::string& dir);

}  // namespace prm
