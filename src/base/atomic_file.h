// Writes a file so that readers never see it half-written (ARCHITECTURE.md convention 8):
// data goes to "<path>.tmp.<pid>" in the same directory, is fsync'ed, then renamed over <path>.
// If the writer is destroyed without commit() the temp file is removed, and if the process is
// ended by SIGINT, SIGTERM or SIGHUP while temp files are open, a handler (installed with the
// first AtomicFile) removes them before the signal takes its default effect. At most
// kMaxTrackedTempFiles temp files at a time, with paths under 1024 bytes, are tracked for that;
// others still work, untracked. SIGKILL cannot be caught: a later AtomicFile for the same path
// removes "<path>.tmp.<pid>" files whose process is gone. A file size limit (`ulimit -f`) makes
// write() throw (EFBIG; SIGXFSZ is ignored once the first AtomicFile exists) instead of killing
// the process.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace lowbit {

inline constexpr int kMaxTrackedTempFiles = 64;

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
  int slot_ = -1;  // index in the signal handler's table, -1 when untracked
};

}  // namespace lowbit
