#include "base/atomic_file.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

#include "base/error.h"

namespace lowbit {

namespace {

// Temp paths the signal handler removes. Slots are claimed and released with atomic exchanges
// (lock-free, so the handler may read them at any moment); the strings stay alive while their
// slot holds them.
std::atomic<const char*> g_temp_paths[kMaxTrackedTempFiles];
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

extern "C" void remove_temp_files_and_reraise(int sig) {
  for (auto& slot : g_temp_paths)
    if (const char* p = slot.load()) ::unlink(p);  // async-signal-safe
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// Installs the handler once, for the signals whose action is still the default (a caller's own
// handler, or an ignored signal, is left alone).
void install_handler_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int sig : kSignals) {
      struct sigaction old {};
      if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;
      struct sigaction sa {};
      sa.sa_handler = remove_temp_files_and_reraise;
      sigemptyset(&sa.sa_mask);
      ::sigaction(sig, &sa, nullptr);
    }
  });
}

int track(const char* path) {
  install_handler_once();
  for (int i = 0; i < kMaxTrackedTempFiles; ++i) {
    const char* expected = nullptr;
    if (g_temp_paths[i].compare_exchange_strong(expected, path)) return i;
  }
  return -1;
}

void untrack(int slot) {
  if (slot >= 0) g_temp_paths[slot].store(nullptr);
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_path_ = path_ + ".tmp." + std::to_string(::getpid());
  f_ = std::fopen(tmp_path_.c_str(), "wb");
  if (f_ == nullptr) throw Error("io", path_ + ": cannot create: " + std::strerror(errno));
  slot_ = track(tmp_path_.c_str());
}

AtomicFile::~AtomicFile() {
  if (f_ != nullptr) {
    std::fclose(f_);
    std::remove(tmp_path_.c_str());
  }
  untrack(slot_);
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
  const bool renamed = ok && std::rename(tmp_path_.c_str(), path_.c_str()) == 0;
  const int err = errno;
  if (!renamed) std::remove(tmp_path_.c_str());
  untrack(slot_);
  slot_ = -1;
  if (!renamed) throw Error("io", path_ + ": cannot finish writing: " + std::strerror(err));
}

}  // namespace lowbit
