// Read-only memory-mapped file. Opening a missing, unreadable or non-regular file throws
// lowbit::Error("io", ...) naming the path. An empty file maps to data()==nullptr, size()==0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lowbit {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Hints that the whole pages inside [p, p + n) of a read-only file mapping need not stay resident
// (madvise MADV_DONTNEED): for bytes already copied out, so that a loaded model does not hold
// them twice. Later reads of the range still see the file's bytes (faulted back in). No effect
// on ranges shorter than a page.
void release_mapped_range(const void* p, size_t n);

// Throws lowbit::Error(component, path + ": not a regular file") when `path` exists but is a
// directory, FIFO, socket or device (whose open or read could block forever); a missing path is
// left to the caller's open to report.
void require_regular_file(const std::string& path, std::string_view component);

// Reads a whole (small) file into a string; throws lowbit::Error naming the path on failure
// (including a path that is not a regular file).
std::string read_text_file(const std::string& path);

}  // namespace lowbit
