// Writes a file so that readers never see it half-written (ARCHITECTURE.md convention 8):
// data goes to "<path>.tmp.<pid>" in the same directory, is fsync'ed, then renamed over <path>.
// If the writer is destroyed without commit() the temp file is removed.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace lowbit {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  void commit();  // flush + fsync + rename; throws lowbit::Error on failure

 private:
  std::string path_, tmp_path_;
  std::FILE* f_ = nullptr;
};

}  // namespace lowbit
