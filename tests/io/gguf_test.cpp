// GGUF reader: metadata accessors, tensor table, block decoding, and every malformed-input
// check of gguf.h, each as one precise mutation of a small valid file (gguf_builder.h).
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cstring>

#include "base/error.h"
#include "gguf_builder.h"
#include "testutil/testutil.h"

namespace lowbit {
namespace {

using test::GgufBuilder;
using test::GgufKv;
using test::GgufTensorSpec;
using test::le;

std::vector<uint8_t> to_vec(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

GgufFile parse(const std::string& bytes) {
  return GgufFile("mem.gguf", to_vec(bytes));
}

// Expects parsing to throw lowbit::Error whose message names the file and contains `needle`.
void expect_error(const std::string& bytes, const std::string& needle) {
  try {
    GgufFile g("mem.gguf", to_vec(bytes));
    ADD_FAILURE() << "parsed without error; wanted: " << needle;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("mem.gguf: "), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "wanted '" << needle << "' in: " << msg;
  }
}

std::string zeros(size_t n) {
  return std::string(n, '\0');
}

// A small valid file: every value type the tests read, an F32, a Q8_0 and an F16 tensor.
// The F16 tensor is last and the file ends exactly where its data ends.
GgufBuilder small_file() {
  GgufBuilder b;
  b.kvs = {test::kv_string("general.architecture", "llama"),
           test::kv_u32("general.alignment", 32),
           test::kv_u32("test.u32", 7),
           test::kv_i32("test.i32", -3),
           test::kv_u64("test.u64", 1ull << 40),
           test::kv_f32("test.f32", 0.5f),
           test::kv_bool("test.bool", true),
           test::kv_strings("test.strings", {"a", "bc", ""}),
           test::kv_f32s("test.floats", {1.5f, -2.0f}),
           test::kv_i32s("test.ints", {4, -5, 6})};
  std::vector<float> a(8);
  for (int k = 0; k < 8; ++k) a[k] = static_cast<float>(k) - 2.5f;
  b.tensors = {test::tensor_spec("a", {4, 2}, 0, test::f32_bytes(a)),
               test::tensor_spec("q", {32}, 8, zeros(34)),
               test::tensor_spec("h", {3}, 1, zeros(6))};
  return b;
}

TEST(Gguf, ParsesSmallFile) {
  const GgufFile g = parse(small_file().build());
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(g.kv_count(), 10u);
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_int("test.u32"), 7);
  EXPECT_EQ(g.get_int("test.i32"), -3);
  EXPECT_EQ(g.get_int("test.u64"), int64_t{1} << 40);
  EXPECT_EQ(g.get_float("test.f32"), 0.5);
  EXPECT_EQ(g.get_float("test.u32"), 7.0);  // integers widen to float
  EXPECT_TRUE(g.get_bool("test.bool"));
  EXPECT_EQ(g.get_string_array("test.strings"), (std::vector<std::string>{"a", "bc", ""}));
  EXPECT_EQ(g.get_float_array("test.floats"), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(g.get_int_array("test.ints"), (std::vector<int64_t>{4, -5, 6}));
  EXPECT_TRUE(g.has("test.bool"));
  EXPECT_FALSE(g.has("test.nope"));
  EXPECT_EQ(g.get_int_or("test.nope", 11), 11);
  EXPECT_EQ(g.get_float_or("test.f32", 9.0), 0.5);
}

TEST(Gguf, WrongTypeOrMissingKeyThrows) {
  const GgufFile g = parse(small_file().build());
  EXPECT_THROW(g.get_int("general.architecture"), Error);
  EXPECT_THROW(g.get_string("test.u32"), Error);
  EXPECT_THROW(g.get_bool("test.u32"), Error);
  EXPECT_THROW(g.get_float("test.strings"), Error);
  EXPECT_THROW(g.get_string_array("test.ints"), Error);
  EXPECT_THROW(g.get_int_array("test.floats"), Error);
  EXPECT_THROW(g.get_float_array("test.strings"), Error);
  EXPECT_THROW(g.get_int_or("general.architecture", 1), Error);  // present but wrong type
  try {
    g.get_int("test.missing");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mem.gguf: missing metadata key 'test.missing'"),
              std::string::npos);
  }
}

TEST(Gguf, MetadataListing) {
  GgufBuilder b = small_file();
  b.kvs.push_back(test::kv_string("test.long", std::string(100, 'x') + "\n"));
  b.kvs.push_back(test::kv_string("test.ctl", "a\"b\n"));
  const auto list = parse(b.build()).list_metadata();
  ASSERT_EQ(list.size(), 12u);
  EXPECT_EQ(list[0].key, "general.architecture");
  EXPECT_EQ(list[0].type, "string");
  EXPECT_EQ(list[0].value, "\"llama\"");
  EXPECT_EQ(list[2].type, "u32");
  EXPECT_EQ(list[2].value, "7");
  EXPECT_EQ(list[3].value, "-3");
  EXPECT_EQ(list[5].value, "0.5");
  EXPECT_EQ(list[6].value, "true");
  EXPECT_EQ(list[7].type, "array[string]");
  EXPECT_EQ(list[7].value, "[3 items]");
  EXPECT_EQ(list[10].value, "\"" + std::string(64, 'x') + "\"...");
  EXPECT_EQ(list[11].value, "\"a\\\"b\\x0a\"");
}

TEST(Gguf, TensorTable) {
  const GgufFile g = parse(small_file().build());
  ASSERT_EQ(g.tensors().size(), 3u);
  const GgufTensorInfo* a = g.find_tensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 4}));  // ne [4, 2] reversed
  EXPECT_EQ(a->nbytes, 32u);
  EXPECT_EQ(g.tensors()[1].offset, 32u);
  EXPECT_EQ(g.tensors()[1].nbytes, 34u);
  EXPECT_EQ(g.tensors()[2].offset, 96u);
  EXPECT_EQ(g.find_tensor("zz"), nullptr);
  EXPECT_THROW(g.view("zz"), Error);
  const TensorView v = g.view("a");
  EXPECT_EQ(v.dtype, DType::F32);
  const std::vector<float> f = to_f32(v);
  ASSERT_EQ(f.size(), 8u);
  EXPECT_EQ(f[0], -2.5f);
  EXPECT_EQ(f[7], 4.5f);
  EXPECT_EQ(g.view("q").dtype, DType::Q8_0);
  EXPECT_EQ(g.view("h").dtype, DType::F16);
}

TEST(Gguf, OpensFromDiskAndNamesPath) {
  const std::string dir = test::temp_dir();
  test::write_file(dir + "/ok.gguf", small_file().build());
  const GgufFile g(dir + "/ok.gguf");
  EXPECT_EQ(g.tensors().size(), 3u);
  EXPECT_EQ(to_f32(g.view("a"))[1], -1.5f);
  test::write_file(dir + "/bad.gguf", "GGUX");
  try {
    GgufFile bad(dir + "/bad.gguf");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/bad.gguf: bad magic"), std::string::npos);
  }
  EXPECT_THROW(GgufFile(dir + "/missing.gguf"), Error);
}

// Every strict prefix of a valid file must be rejected with lowbit::Error, never crash or
// read out of bounds (the in-memory images let AddressSanitizer check every read).
TEST(Gguf, EveryTruncationThrows) {
  const std::string full = small_file().build();
  ASSERT_NO_THROW(parse(full));
  for (size_t len = 0; len < full.size(); ++len)
    EXPECT_THROW(parse(full.substr(0, len)), Error) << "prefix length " << len;
  const std::string dir = test::temp_dir();  // a few through the mmap path as well
  for (size_t len : {size_t{0}, size_t{3}, size_t{23}, full.size() - 1}) {
    test::write_file(dir + "/t.gguf", full.substr(0, len));
    EXPECT_THROW(GgufFile(dir + "/t.gguf"), Error) << "prefix length " << len;
  }
}

// Overwriting any single byte with 0x00, 0xff or a flipped low bit must give either a valid
// file or lowbit::Error (nothing else: no crash, no bad_alloc, no out-of-bounds read).
TEST(Gguf, EverySingleByteMutationIsSafe) {
  const std::string full = small_file().build();
  size_t parsed = 0, rejected = 0;
  for (size_t pos = 0; pos < full.size(); ++pos) {
    const auto orig = static_cast<uint8_t>(full[pos]);
    for (uint8_t v : {uint8_t{0}, uint8_t{0xff}, static_cast<uint8_t>(orig ^ 1u)}) {
      std::string m = full;
      m[pos] = static_cast<char>(v);
      try {
        const GgufFile g = parse(m);
        for (const GgufTensorInfo& t : g.tensors())
          if (t.dtype) to_f32(g.view(t));
        g.list_metadata();
        ++parsed;
      } catch (const Error&) {
        ++rejected;
      }
    }
  }
  EXPECT_GT(parsed, 0u);
  EXPECT_GT(rejected, 0u);
}

TEST(Gguf, HeaderErrors) {
  GgufBuilder b = small_file();
  b.magic = "GGUX";
  expect_error(b.build(), "bad magic");
  b = small_file();
  b.version = 1;
  expect_error(b.build(), "GGUF version 1 is not supported");
  b.version = 99;
  expect_error(b.build(), "GGUF version 99 is not supported");
  b.version = 0x03000000;
  expect_error(b.build(), "big-endian");
  b = small_file();
  b.tensor_count = uint64_t{1} << 40;
  expect_error(b.build(), "is absurd for a file of");
  b = small_file();
  b.kv_count = ~uint64_t{0};
  expect_error(b.build(), "is absurd for a file of");
}

TEST(Gguf, KeyValueErrors) {
  GgufBuilder b = small_file();
  b.kvs[3] = {"test.name", test::kString, le<uint64_t>(1000000) + "abc"};
  expect_error(b.build(), "string length 1000000 runs past end of file");
  b = small_file();
  b.kvs[3] = {"test.x", 13, le<uint32_t>(0)};
  expect_error(b.build(), "unknown value type 13 (key 'test.x'");
  b = small_file();
  b.kvs[3] = {"test.x", test::kArray, le<uint32_t>(77) + le<uint64_t>(0)};
  expect_error(b.build(), "unknown array element type 77");
  b = small_file();
  b.kvs[3] = {"test.x", test::kArray, le<uint32_t>(test::kU32) + le<uint64_t>(1ull << 60)};
  expect_error(b.build(), "array count 1152921504606846976 runs past end of file");
  b = small_file();
  b.kvs[3] = {"test.x", test::kArray,
              le<uint32_t>(test::kString) + le<uint64_t>(2) + test::gguf_str("ok") +
                  le<uint64_t>(1ull << 50)};
  expect_error(b.build(), "string length 1125899906842624 runs past end of file");
  b = small_file();
  b.kvs[3] = {"test.x", test::kBool, le<uint8_t>(2)};
  expect_error(b.build(), "bool value 2 is not 0 or 1");
  b = small_file();
  b.kvs[3] = test::kv_u32("test.u32", 1);  // same key as kvs[2]
  expect_error(b.build(), "duplicate key (key 'test.u32'");
  b = small_file();
  b.kvs[3] = test::kv_u32("", 1);
  expect_error(b.build(), "empty key");
}

// Arrays of arrays are legal GGUF; lowbit accepts up to 3 levels and rejects deeper nesting
// before recursing further.
TEST(Gguf, NestedArrays) {
  const std::string inner = le<uint32_t>(test::kU8) + le<uint64_t>(2) + "\x01\x02";
  GgufBuilder b = small_file();
  b.kvs.push_back(
      {"test.nested", test::kArray, le<uint32_t>(test::kArray) + le<uint64_t>(2) + inner + inner});
  const GgufFile g = parse(b.build());
  EXPECT_EQ(g.list_metadata().back().type, "array[array]");
  EXPECT_EQ(g.list_metadata().back().value, "[2 items]");
  EXPECT_EQ(g.find("test.nested")->items.size(), 2u);
  EXPECT_THROW(g.get_int_array("test.nested"), Error);

  std::string deep = inner;  // 4 levels of arrays
  for (int k = 0; k < 3; ++k) deep = le<uint32_t>(test::kArray) + le<uint64_t>(1) + deep;
  b = small_file();
  b.kvs.push_back({"test.deep", test::kArray, deep});
  expect_error(b.build(), "arrays nested deeper than 3 levels (key 'test.deep'");
}

TEST(Gguf, AlignmentErrors) {
  for (uint32_t bad : {0u, 3u, 48u}) {
    GgufBuilder b = small_file();
    b.kvs[1] = test::kv_u32("general.alignment", bad);
    expect_error(b.build(), "alignment " + std::to_string(bad) + " is not a power of two");
  }
  GgufBuilder b = small_file();
  b.kvs[1] = test::kv_string("general.alignment", "32");
  expect_error(b.build(), "alignment has type string");
  b = small_file();  // a larger alignment moves the data section and the default offsets
  b.kvs[1] = test::kv_u32("general.alignment", 64);
  b.alignment = 64;
  const GgufFile g = parse(b.build());
  EXPECT_EQ(g.alignment(), 64u);
  EXPECT_EQ(g.data_offset() % 64, 0u);
  EXPECT_EQ(g.tensors()[1].offset, 64u);
  b.alignment = 32;  // offsets 32 and 96 are not multiples of 64
  expect_error(b.build(), "data offset 32 is not a multiple of the alignment 64 (tensor 'q'");
}

TEST(Gguf, TensorInfoErrors) {
  GgufBuilder b = small_file();
  b.n_dims_override = 0;
  expect_error(b.build(), "n_dims 0 is not in [1, 4] (tensor 'a'");
  b.n_dims_override = 5;
  expect_error(b.build(), "n_dims 5 is not in [1, 4]");
  b = small_file();
  b.tensors[0].ne = {uint64_t{1} << 62};
  expect_error(b.build(), "absurd dimension 4611686018427387904 (tensor 'a'");
  b.tensors[0].ne = {4, 0};
  expect_error(b.build(), "absurd dimension 0");
  b.tensors[0].ne = {uint64_t{1} << 30, uint64_t{1} << 30, 4};  // each fine, product too large
  expect_error(b.build(), "shape [4, 1073741824, 1073741824] is too large");
  b = small_file();
  b.tensors[1].ne = {33};
  expect_error(b.build(), "row length 33 is not a multiple of the Q8_0 block size 32 (tensor 'q'");
  b.tensors[1].ne = {16, 2};  // 32 elements but rows of 16
  expect_error(b.build(), "row length 16 is not a multiple of the Q8_0 block size 32");
  b = small_file();
  b.tensors[2].name = "a";
  expect_error(b.build(), "duplicate tensor name (tensor 'a'");
  b = small_file();
  b.tensors[1].name = "";
  expect_error(b.build(), "empty tensor name");
}

TEST(Gguf, TensorDataErrors) {
  GgufBuilder b = small_file();
  b.tensors[2].offset = uint64_t{1} << 40;
  b.tensors[2].data.clear();
  expect_error(b.build(), "runs past end of file (data section has");
  b = small_file();
  b.tensors[2].offset = ~uint64_t{0} - 31;  // offset + size would wrap around
  b.tensors[2].data.clear();
  expect_error(b.build(), "tensor data [18446744073709551584, +6) runs past end of file");
  b = small_file();
  b.tensors[1].offset = 36;
  expect_error(b.build(), "data offset 36 is not a multiple of the alignment 32 (tensor 'q'");
  b = small_file();  // 'q' (34 bytes at 32) reaches into 'h' placed at 64
  b.tensors[2].offset = 64;
  expect_error(b.build(), "data overlaps tensor 'q' (tensor 'h'");
  b = small_file();  // same offset twice
  b.tensors[1].offset = 0;
  expect_error(b.build(), "data overlaps tensor");
}

TEST(Gguf, UnsupportedTypesAreListedButNotViewable) {
  GgufBuilder b = small_file();
  b.tensors.push_back(test::tensor_spec("k2", {256}, 16, zeros(66)));  // IQ2_XXS: 256/block, 66 B
  b.tensors.push_back(test::tensor_spec("odd", {5}, 99, "x"));         // id unknown to lowbit
  const GgufFile g = parse(b.build());
  ASSERT_EQ(g.tensors().size(), 5u);
  const GgufTensorInfo& k2 = g.tensors()[3];
  EXPECT_EQ(k2.nbytes, 66u);
  EXPECT_FALSE(k2.dtype.has_value());
  EXPECT_EQ(ggml_type_name(k2.ggml_type), "IQ2_XXS");
  EXPECT_EQ(ggml_type_name(99), "type 99");
  try {
    g.view("k2");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "mem.gguf: tensor 'k2' has type IQ2_XXS (id 16), not supported yet"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(g.view("odd"), Error);
  b.tensors[3].ne = {128};  // IQ2_XXS rows must be whole 256-element blocks
  expect_error(b.build(), "row length 128 is not a multiple of the IQ2_XXS block size 256");
}

// fp16 bit patterns used as block scales, with their exact values worked out by hand:
// 0x3800 = 2^-1 = 0.5; 0xB400 = -2^-2 = -0.25;
// 0x2E66: exponent 0b01011 = 11 -> 2^(11-15) = 1/16, mantissa 0x266 = 614 ->
//         (1 + 614/1024) / 16 = 1638/16384 = 0.0999755859375.
constexpr uint16_t kHalfHalf = 0x3800, kMinusQuarter = 0xB400, kTenthish = 0x2E66;
constexpr double kTenthishValue = 1638.0 / 16384.0;

// Q8_0 block (34 bytes): fp16 d, then 32 int8 q; x[j] = d * q[j].
TEST(Gguf, Q8_0DecodesByFormula) {
  std::string data;
  std::vector<float> expected;
  const std::pair<uint16_t, double> scales[] = {{kHalfHalf, 0.5}, {kTenthish, kTenthishValue}};
  for (const auto& [bits, d] : scales) {
    data += le(bits);
    for (int j = 0; j < 32; ++j) {
      const int8_t q = static_cast<int8_t>(j == 31 ? 127 : j * 8 - 128);  // -128 .. 120, 127
      data += static_cast<char>(q);
      expected.push_back(static_cast<float>(d * q));
    }
  }
  GgufBuilder b = small_file();
  b.tensors.push_back(test::tensor_spec("q8", {32, 2}, 8, data));
  const GgufFile g = parse(b.build());
  const TensorView v = g.view("q8");
  EXPECT_EQ(v.shape, (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(v.nbytes, 68u);
  EXPECT_EQ(to_f32(v), expected);
}

// Q4_0 block (18 bytes): fp16 d, then 16 bytes; element j < 16 is the low nibble of byte j,
// element j + 16 the high nibble; x = d * (nibble - 8).
TEST(Gguf, Q4_0DecodesByFormula) {
  std::string data;
  std::vector<float> expected;
  const std::pair<uint16_t, double> scales[] = {{kMinusQuarter, -0.25},
                                                {kTenthish, kTenthishValue}};
  for (int blk = 0; blk < 2; ++blk) {
    const auto [bits, d] = scales[blk];
    uint8_t codes[32];
    for (int j = 0; j < 32; ++j) codes[j] = static_cast<uint8_t>((j * 5 + blk * 3) % 16);
    data += le(bits);
    for (int j = 0; j < 16; ++j) data += static_cast<char>(codes[j] | (codes[j + 16] << 4));
    for (int j = 0; j < 32; ++j) expected.push_back(static_cast<float>(d * (codes[j] - 8)));
  }
  GgufBuilder b = small_file();
  b.tensors.push_back(test::tensor_spec("q4", {64}, 2, data));
  const GgufFile g = parse(b.build());
  const TensorView v = g.view("q4");
  EXPECT_EQ(v.dtype, DType::Q4_0);
  EXPECT_EQ(v.nbytes, 36u);
  EXPECT_EQ(to_f32(v), expected);
}

}  // namespace
}  // namespace lowbit
