#include <unistd.h>

#include <cstdio>

#include "base/parallel.h"
#include "cli/commands.h"

namespace lowbit::cli {

void add_threads_option(CLI::App& cmd, int* threads) {
  cmd.add_option("-t,--threads", *threads, "threads to use (0 = all cores)")->check(CLI::NonNegativeNumber);
}

void apply_threads(int threads) { set_num_threads(threads); }

void progress_line(const char* what, int64_t done, int64_t total) {
  if (!::isatty(STDERR_FILENO)) return;
  std::fprintf(stderr, "\r%s %lld/%lld", what, static_cast<long long>(done), static_cast<long long>(total));
  if (done == total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace lowbit::cli
