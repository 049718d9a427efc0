// The one table of format kinds (ARCHITECTURE.md convention 2). The spec parser, the codec
// dispatch (codec.h), round-trip tests, kernel tests and benches all read it, so a new kind is one
// new row here plus its unit (a header stating layout, code -> value formula and bits per weight,
// and the three functions of codec.h).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "formats/codec.h"
#include "formats/quant_spec.h"

namespace lowbit {

struct FormatInfo {
  FormatKind kind;
  std::string_view name;   // spelling: "int" (followed by the bit count), "nf4", "f16", ...
  int min_bits, max_bits;  // allowed QuantSpec::bits (the code width)
  int default_group;       // group when the spelling has none; 0 = per-channel / unquantized
  bool allows_asym;        // ":asym"
  bool allows_dq;          // ":dq"
  std::string_view bpw;    // bits-per-weight formula (G = group length, b = bits)
  std::string_view description;
  const GroupCodec* codec;  // reference codec; nullptr for plain f32/f16/bf16 storage
  int vector_dim;           // weights one code stands for: 1, or 8 for E8P (whose codec works
                            // on whole groups only: encode/decode of one value are invalid)
};

// Weights per code of spec's kind (1 for scalar kinds, 8 for E8P). Rows and groups of a vector
// kind must be multiples of it (check_vector_shape).
int vector_dim(const QuantSpec& spec);
// Throws lowbit::Error(component, ...) when a [rows, cols] matrix cannot be stored in `spec`
// because cols is not a multiple of vector_dim(spec).
void check_vector_shape(const QuantSpec& spec, int64_t cols, const char* component);

// Every kind, in FormatKind order.
std::span<const FormatInfo> all_formats();
// The row of a kind (asserts that `kind` is a known value; validate() checks files first).
const FormatInfo& format_info(FormatKind kind);
// True when `kind` is one of the enumerators (for untrusted bytes).
bool is_known_kind(FormatKind kind);

// Bits per weight of `spec` for rows of `cols` weights, from the formula alone: ignores the
// padding to a whole byte at the end of each row and the partial last double-quant block.
// QuantizedMatrix::bits_per_weight() is the exact figure for a concrete shape.
double nominal_bits_per_weight(const QuantSpec& spec, int64_t cols);

// The concrete specs that round-trip tests, kernel tests and benches iterate (quantized kinds
// only): int8/6/5/4/3/2 x g32/g64/g128/gc x sym/asym, int4:g128:bf16s, int4:g128:dq,
// nf4:g64 (+dq), fp4:g32 (+dq), fp8:gc, fp8:g128, ternary:g64, e8p:g64, e8p:gc.
const std::vector<QuantSpec>& all_test_specs();

}  // namespace lowbit
