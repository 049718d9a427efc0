#include "serve/stop_matcher.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lowbit {
namespace {

// Feeds `pieces` and returns everything emitted (push + flush).
std::string run(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& p : pieces) out += m.push(p);
  return out + m.flush();
}

TEST(StopMatcher, EndsRightBeforeAStopSplitAcrossPieces) {
  StopMatcher m({"\n\nUser:"});
  EXPECT_EQ(m.push("Hello"), "Hello");
  EXPECT_EQ(m.push(" there\n"), " there");  // "\n" might start the stop string: held
  EXPECT_EQ(m.push("\nUs"), "");
  EXPECT_EQ(m.push("er: more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("later"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, ReleasesHeldTextWhenItDoesNotContinueTheStop) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.push("the EN"), "the ");
  EXPECT_EQ(m.push("ding"), "ENding");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.push("E"), "");
  EXPECT_EQ(m.flush(), "E");  // the reply ended: nothing is a stop any more
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
  StopMatcher m({"cat", "a c"});
  EXPECT_EQ(run(m, {"I saw a cat"}), "I saw ");
  StopMatcher n({"xyz", "y"});
  EXPECT_EQ(run(n, {"axyz"}), "a");
}

TEST(StopMatcher, NoStopsPassEverythingAndEmptyStopsAreIgnored) {
  StopMatcher m({});
  EXPECT_EQ(m.push("abc"), "abc");
  StopMatcher e({""});
  EXPECT_EQ(run(e, {"a", "b"}), "ab");
  EXPECT_FALSE(e.stopped());
}

TEST(StopMatcher, StopAtTheVeryStartAndMultibyteText) {
  StopMatcher m({"Ω"});
  EXPECT_EQ(run(m, {"\xCE", "\xA9 rest"}), "");  // bytes of Ω split over two pieces
  EXPECT_TRUE(m.stopped());
  StopMatcher k({"éé"});
  EXPECT_EQ(run(k, {"café", "é!"}), "caf");
}

}  // namespace
}  // namespace lowbit
