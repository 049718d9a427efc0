#include "base/atomic_file.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "base/error.h"

namespace lowbit {

namespace {

// Temp paths the signal handler removes: fixed slots, each a path buffer and a state that is
// claimed (a writer copies its path in), then published; the handler unlinks published paths.
// The buffers are static, so the handler never reads freed memory; atomics are lock-free, so it
// may read the states at any moment.
constexpr size_t kPathBytes = 1024;  // longer paths are not tracked
enum : int { kFree = 0, kClaimed = 1, kPublished = 2 };
std::atomic<int> g_state[kMaxTrackedTempFiles];
char g_paths[kMaxTrackedTempFiles][kPathBytes];
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler reads these");
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

extern "C" void remove_temp_files_and_reraise(int sig) {
  for (int i = 0; i < kMaxTrackedTempFiles; ++i)
    if (g_state[i].load() == kPublished) ::unlink(g_paths[i]);  // async-signal-safe
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// Installs the handler once, for the signals whose action is still the default (a caller's own
// handler, or an ignored signal, is left alone). SIGXFSZ (the file size limit, `ulimit -f`) is
// ignored instead, if still default: the write then fails with EFBIG, which write() reports as an
// error and the destructor cleans up, where the default action would kill the process and leave
// the temp file behind.
void install_handler_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction xfsz {};
    if (::sigaction(SIGXFSZ, nullptr, &xfsz) == 0 && xfsz.sa_handler == SIG_DFL) ::signal(SIGXFSZ, SIG_IGN);
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

// The slot now holding `path`, or -1 (no free slot, or the path is too long).
int track(const std::string& path) {
  install_handler_once();
  if (path.size() >= kPathBytes) return -1;
  for (int i = 0; i < kMaxTrackedTempFiles; ++i) {
    int expected = kFree;
    if (!g_state[i].compare_exchange_strong(expected, kClaimed)) continue;
    std::memcpy(g_paths[i], path.c_str(), path.size() + 1);
    g_state[i].store(kPublished);
    return i;
  }
  return -1;
}

void untrack(int slot) {
  if (slot >= 0) g_state[slot].store(kFree);
}

// Removes "<name>.tmp.<pid>" files beside `path` whose writer no longer exists (a process killed
// with SIGKILL cannot clean up): pid not this process and kill(pid, 0) reports no such process.
void remove_stale_temps(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp.";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) != 0 && errno == ESRCH) std::filesystem::remove(entry.path(), ec);
  }
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  remove_stale_temps(path_);
  tmp_path_ = path_ + ".tmp." + std::to_string(::getpid());
  slot_ = track(tmp_path_);  // before the file exists: a signal in between leaves nothing
  f_ = std::fopen(tmp_path_.c_str(), "wb");
  if (f_ == nullptr) {
    const int err = errno;
    untrack(slot_);
    throw Error("io", path_ + ": cannot create: " + std::strerror(err));
  }
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
