#include <gtest/gtest.h>

#include <string>

#include "base/error.h"
#include "formats/quant_spec.h"
#include "formats/registry.h"

namespace lowbit {
namespace {

TEST(QuantSpec, CanonicalSpellingsRoundTrip) {
  for (const char* s :
       {"int4:g128", "int4:g128:asym", "int8:gc", "int2:g32:asym", "int3:g64:dq", "int5:g128:bf16s",
        "int6:g8:asym:bf16s", "nf4:g64", "nf4:g64:dq", "fp4:g32", "fp4:g32:dq", "fp8:gc",
        "fp8:g128", "ternary:g64", "ternary:g64:dq", "e8p:g32:dq", "ternary:gc:bf16s", "f32", "f16", "bf16", "int7:g65536"}) {
    const QuantSpec spec = parse_quant_spec(s);
    EXPECT_EQ(spec.to_string(), s);
    EXPECT_EQ(parse_quant_spec(spec.to_string()), spec) << s;
  }
}

TEST(QuantSpec, EveryTestSpecRoundTrips) {
  for (const QuantSpec& s : all_test_specs()) {
    EXPECT_EQ(parse_quant_spec(s.to_string()), s) << s.to_string();
    EXPECT_NO_THROW(check_quant_spec(s)) << s.to_string();
  }
}

TEST(QuantSpec, ParsesFields) {
  const QuantSpec a = parse_quant_spec("int3:g64:asym");
  EXPECT_EQ(a.kind, FormatKind::Int);
  EXPECT_EQ(a.bits, 3);
  EXPECT_EQ(a.group, 64);
  EXPECT_TRUE(a.asym);
  EXPECT_FALSE(a.double_quant);
  EXPECT_EQ(a.scale_type, ScaleType::F16);
  const QuantSpec n = parse_quant_spec("nf4:g64:dq");
  EXPECT_EQ(n.kind, FormatKind::NF4);
  EXPECT_EQ(n.bits, 4);
  EXPECT_TRUE(n.double_quant);
  const QuantSpec t = parse_quant_spec("ternary:g64");
  EXPECT_EQ(t.bits, 2);
  EXPECT_EQ(parse_quant_spec("fp8:gc").bits, 8);
  EXPECT_EQ(parse_quant_spec("fp8:gc").group, 0);
  EXPECT_EQ(parse_quant_spec("f16").bits, 16);
  EXPECT_EQ(parse_quant_spec("f32").bits, 32);
  EXPECT_EQ(parse_quant_spec("bf16").kind, FormatKind::BF16);
  EXPECT_EQ(parse_quant_spec("int4:g128:bf16s").scale_type, ScaleType::BF16);
}

TEST(QuantSpec, PartsInAnyOrderAndDefaultGroups) {
  EXPECT_EQ(parse_quant_spec("int4:asym:g128").to_string(), "int4:g128:asym");
  EXPECT_EQ(parse_quant_spec("nf4:dq:g64").to_string(), "nf4:g64:dq");
  EXPECT_EQ(parse_quant_spec("int4").to_string(), "int4:g128");
  EXPECT_EQ(parse_quant_spec("int4:asym").to_string(), "int4:g128:asym");
  EXPECT_EQ(parse_quant_spec("nf4").to_string(), "nf4:g64");
  EXPECT_EQ(parse_quant_spec("fp4").to_string(), "fp4:g32");
  EXPECT_EQ(parse_quant_spec("fp8").to_string(), "fp8:gc");
  EXPECT_EQ(parse_quant_spec("ternary").to_string(), "ternary:g64");
}

void expect_rejected(const std::string& s, const std::string& needle) {
  try {
    parse_quant_spec(s);
    ADD_FAILURE() << "accepted '" << s << "'";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.component(), "format") << s;
    EXPECT_NE(what.find(needle), std::string::npos) << s << " -> " << what;
    EXPECT_NE(what.find("'" + s + "'"), std::string::npos) << what;  // names the whole input
  }
}

TEST(QuantSpec, RejectsBadSpellings) {
  expect_rejected("", "empty part");
  expect_rejected("int9:g128", "bits must be 2..8");
  expect_rejected("int1:g128", "bits must be 2..8");
  expect_rejected("int:g128", "bit count");
  expect_rejected("int04:g128", "bit count");
  expect_rejected("int4x:g128", "bit count");
  expect_rejected("nf3:g64", "unknown format 'nf3'");
  expect_rejected("fp6:g32", "unknown format");
  expect_rejected("q4_0", "unknown format");
  expect_rejected("INT4:g128", "unknown format");
  expect_rejected("int4:g0", "bad group");
  expect_rejected("int4:g", "bad group");
  expect_rejected("int4:g-8", "bad group");
  expect_rejected("int4:g0128", "bad group");
  expect_rejected("int4:g4", "multiple of 8");
  expect_rejected("int4:g100", "multiple of 8");
  expect_rejected("int4:g131072", "multiple of 8");
  expect_rejected("int4:g1234567", "bad group");
  expect_rejected("int4:g128:g64", "given twice");
  expect_rejected("int4:gc:g64", "given twice");
  expect_rejected("int4:g128:asym:asym", "given twice");
  expect_rejected("int4:g128:sym", "unknown part 'sym'");
  expect_rejected("int4::g128", "empty part");
  expect_rejected("int4:g128:", "empty part");
  expect_rejected("nf4:g64:asym", "asym is only for int");
  expect_rejected("fp8:gc:asym", "asym is only for int");
  expect_rejected("fp8:g128:dq", "dq is only for int, nf4, fp4, ternary and e8p");
  expect_rejected("int4:g128:asym:dq", "symmetric int");
  expect_rejected("nf4:g64:dq:bf16s", "bf16s does not apply with dq");
  expect_rejected("f16:g128", "unquantized");
  expect_rejected("f32:asym", "unquantized");
  expect_rejected("bf16:bf16s", "unquantized");
}

TEST(QuantSpec, CheckRejectsInconsistentStructs) {
  QuantSpec s = parse_quant_spec("int4:g128");
  s.bits = 9;
  EXPECT_THROW(check_quant_spec(s), Error);
  s = parse_quant_spec("nf4:g64");
  s.bits = 3;
  EXPECT_THROW(check_quant_spec(s), Error);
  s = parse_quant_spec("f16");
  s.bits = 32;
  EXPECT_THROW(check_quant_spec(s), Error);
  s = parse_quant_spec("int4:g128");
  s.group = 12;
  EXPECT_THROW(check_quant_spec(s), Error);
  s.group = -8;
  EXPECT_THROW(check_quant_spec(s), Error);
  s = parse_quant_spec("int4:g128");
  s.kind = static_cast<FormatKind>(99);
  EXPECT_THROW(check_quant_spec(s), Error);
  s = parse_quant_spec("int4:g128");
  s.scale_type = static_cast<ScaleType>(7);
  EXPECT_THROW(check_quant_spec(s), Error);
  EXPECT_NO_THROW(check_quant_spec(parse_quant_spec("int4:g128:asym")));
}

}  // namespace
}  // namespace lowbit
