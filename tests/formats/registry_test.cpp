#include <gtest/gtest.h>

#include <set>
#include <string>

#include "formats/registry.h"

namespace lowbit {
namespace {

TEST(Registry, OneRowPerKindInEnumOrder) {
  const auto formats = all_formats();
  ASSERT_EQ(formats.size(), 9u);
  std::set<std::string> names;
  for (size_t i = 0; i < formats.size(); ++i) {
    const FormatInfo& f = formats[i];
    EXPECT_EQ(static_cast<size_t>(f.kind), i);
    EXPECT_EQ(&format_info(f.kind), &f);
    EXPECT_TRUE(names.insert(std::string(f.name)).second) << f.name;
    EXPECT_LE(f.min_bits, f.max_bits);
    EXPECT_FALSE(f.description.empty());
    EXPECT_FALSE(f.bpw.empty());
    EXPECT_TRUE(f.vector_dim == 1 || f.vector_dim == 8) << f.name;
    QuantSpec s;
    s.kind = f.kind;
    EXPECT_EQ(f.codec != nullptr, s.quantized()) << f.name;
    if (f.codec) {
      EXPECT_TRUE(f.codec->fit && f.codec->encode && f.codec->decode && f.codec->encode_group &&
                  f.codec->decode_group && f.codec->group_sq_error);
    }
  }
  EXPECT_FALSE(is_known_kind(static_cast<FormatKind>(9)));
}

TEST(Registry, TestSpecsCoverEveryQuantizedKind) {
  std::set<FormatKind> kinds;
  std::set<std::string> spellings;
  for (const QuantSpec& s : all_test_specs()) {
    kinds.insert(s.kind);
    EXPECT_TRUE(spellings.insert(s.to_string()).second) << "duplicate " << s.to_string();
  }
  for (const FormatInfo& f : all_formats()) {
    if (f.codec) {
      EXPECT_TRUE(kinds.count(f.kind)) << f.name;
    }
  }
  EXPECT_EQ(all_test_specs().size(), 48u + 13u);
  for (const char* s : {"int2:g32:asym", "int8:gc", "nf4:g64:dq", "fp4:g32:dq", "fp8:gc",
                        "fp8:g128", "ternary:g64", "int4:g128:bf16s", "int4:g128:dq", "e8p:g64",
                        "e8p:gc"})
    EXPECT_TRUE(spellings.count(s)) << s;
}

}  // namespace
}  // namespace lowbit
