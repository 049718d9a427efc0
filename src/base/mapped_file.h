// Read-only memory-mapped file. Opening a missing, unreadable or non-regular file throws
// lowbit::Error("io", ...) naming the path. An empty file maps to data()==nullptr, size()==0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

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

// Reads a whole (small) file into a string; throws lowbit::Error naming the path on failure.
std::string read_text_file(const std::string& path);

}  // namespace lowbit
