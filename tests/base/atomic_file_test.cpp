#include <gtest/gtest.h>

#include <filesystem>

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

}  // namespace
}  // namespace lowbit
