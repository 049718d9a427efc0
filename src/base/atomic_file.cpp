#include "base/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace lowbit {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_path_ = path_ + ".tmp." + std::to_string(::getpid());
  f_ = std::fopen(tmp_path_.c_str(), "wb");
  if (f_ == nullptr) throw Error("io", path_ + ": cannot create: " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (f_ != nullptr) {
    std::fclose(f_);
    std::remove(tmp_path_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t n) {
  LOWBIT_ASSERT(f_ != nullptr);
  if (n != 0 && std::fwrite(data, 1, n, f_) != n)
    throw Error("io", path_ + ": write failed: " + std::strerror(errno));
}

void AtomicFile::commit() {
  LOWBIT_ASSERT(f_ != nullptr);
  bool ok = std::fflush(f_) == 0 && ::fsync(::fileno(f_)) == 0;
  ok = (std::fclose(f_) == 0) && ok;
  f_ = nullptr;
  if (!ok || std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_path_.c_str());
    throw Error("io", path_ + ": cannot finish writing: " + std::strerror(errno));
  }
}

}  // namespace lowbit
