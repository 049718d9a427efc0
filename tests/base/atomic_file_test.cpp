#include <gtest/gtest.h>

#include <csignal>
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

}  // namespace
}  // namespace lowbit
