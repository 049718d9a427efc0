#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "base/atomic_file.h"
#include "base/error.h"
#include "testutil.h"

namespace lowbit {
namespace {

TEST(AtomicFile, CommitPublishesAndAbandonLeavesNothing) {
  namespace fs = std::filesystem;
  const std::string dir = test::temp_dir();
  {
    AtomicFile f(dir + "/a.txt");
    f.write("hello");
    EXPECT_FALSE(fs::exists(dir + "/a.txt"));  // not visible before commit
    f.commit();
  }
  EXPECT_EQ(test::read_file(dir + "/a.txt"), "hello");
  {
    AtomicFile f(dir + "/b.txt");
    f.write("partial");
  }  // destroyed without commit (as when an exception unwinds)
  EXPECT_FALSE(fs::exists(dir + "/b.txt"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);
  EXPECT_THROW(AtomicFile(dir + "/no/such/dir/c.txt"), Error);
}

// A process ended by SIGTERM or SIGINT while writing leaves no temp file behind (the handler
// removes it, then the signal kills the process as it would have).
TEST(AtomicFile, TerminatingSignalRemovesTheTempFile) {
  namespace fs = std::filesystem;
  GTEST_FLAG_SET(death_test_style, "fast");  // fork only: the test main re-execs itself
  for (int sig : {SIGTERM, SIGINT}) {
    const std::string dir = test::temp_dir();
    EXPECT_EXIT(
        {
          AtomicFile committed(dir + "/kept.txt");
          committed.write("done");
          committed.commit();
          AtomicFile f(dir + "/out.bin");
          AtomicFile g(dir + "/other.bin");
          f.write("half written");
          std::raise(sig);
        },
        ::testing::KilledBySignal(sig), "");
    std::vector<std::string> left;
    for (const auto& e : fs::directory_iterator(dir)) left.push_back(e.path().filename().string());
    ASSERT_EQ(left.size(), 1u) << "left behind: " << left.back();
    EXPECT_EQ(left[0], "kept.txt");
  }
}

// A SIGKILLed writer cannot clean up: the next AtomicFile for the same path removes temp files
// of processes that no longer exist, and leaves those of live processes (and other names) alone.
TEST(AtomicFile, StaleTempFilesOfDeadWritersAreRemoved) {
  namespace fs = std::filesystem;
  const std::string dir = test::temp_dir();
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);  // reaped: the pid no longer exists
  const std::string dead = dir + "/m.lowbit.tmp." + std::to_string(child);
  const std::string live = dir + "/m.lowbit.tmp." + std::to_string(::getppid());
  for (const std::string& p : {dead, live, dir + "/m.lowbit.tmp.x1", dir + "/other.tmp.1"}) test::write_file(p, "x");
  {
    AtomicFile f(dir + "/m.lowbit");
    f.write("new");
    f.commit();
  }
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(dir + "/m.lowbit.tmp.x1"));
  EXPECT_TRUE(fs::exists(dir + "/other.tmp.1"));
  EXPECT_EQ(test::read_file(dir + "/m.lowbit"), "new");
}

// A file size limit (ulimit -f) makes the write fail with an error, not kill the process.
TEST(AtomicFile, FileSizeLimitIsAnErrorAndLeavesNothing) {
  namespace fs = std::filesystem;
  GTEST_FLAG_SET(death_test_style, "fast");
  const std::string dir = test::temp_dir();
  EXPECT_EXIT(
      {
        AtomicFile probe(dir + "/probe.txt");  // installs the handlers (SIGXFSZ ignored)
        probe.commit();
        struct rlimit lim {};
        lim.rlim_cur = lim.rlim_max = 4096;
        ::setrlimit(RLIMIT_FSIZE, &lim);
        try {
          AtomicFile f(dir + "/big.bin");
          const std::string chunk(65536, 'x');
          for (int i = 0; i < 64; ++i) f.write(chunk);
          f.commit();
        } catch (const Error& e) {
          std::fprintf(stderr, "%s\n", e.what());
          std::_Exit(3);
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(3), "big.bin");
  EXPECT_FALSE(fs::exists(dir + "/big.bin"));
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

}  // namespace
}  // namespace lowbit
