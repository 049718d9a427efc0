// QuantSpec: how the numbers of one weight matrix are stored. Spelled as recipe-style strings
// (ARCHITECTURE.md convention 9) shared by CLI, file metadata, reports and benches:
//
//   int<b>:g<G>[:asym]      b in 2..8; group of G consecutive weights along a row share one scale
//                           (and, with :asym, one integer zero-point). "gc" = per-channel
//                           (one group spans the whole row).
//   nf4:g<G>[:dq]           QLoRA NormalFloat-4 code book x per-group absmax scale
//   fp4:g<G>[:dq]           FP4 E2M1 code x per-group scale (absmax / 6)
//   fp8:g<G> | fp8:gc       FP8 E4M3 code x per-group or per-channel scale (absmax / 448)
//   ternary:g<G>            {-1, 0, +1} x per-group absmean scale (BitNet b1.58)
//   e8p:g<G>                E8 lattice code book: one 16-bit code per 8 weights x group scale
//                           (QuIP#'s E8P, 2 bits/weight; rows and groups multiples of 8)
//   f16 | bf16 | f32        unquantized storage
//   Optional suffixes: ":dq" double-quantizes the group scales (8-bit codes in blocks of 256 with
//   an fp32 scale and offset per block, as QLoRA does); ":bf16s" stores scales as bf16 instead
//   of the default fp16.
//
// Persisted: FormatKind values and the string spelling never change meaning (convention 1).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lowbit {

enum class FormatKind : uint8_t {
  F32 = 0,
  F16 = 1,
  BF16 = 2,
  Int = 3,      // uniform integer grid, symmetric or asymmetric
  NF4 = 4,
  FP4 = 5,      // E2M1
  FP8 = 6,      // E4M3
  Ternary = 7,
  E8P = 8,      // 8-dimensional lattice code book, 16 bits per 8 weights (e8p.h)
};

enum class ScaleType : uint8_t { F16 = 0, BF16 = 1 };

struct QuantSpec {
  FormatKind kind = FormatKind::F32;
  int bits = 32;          // bits per stored code (Int: 2..8; NF4/FP4: 4; FP8: 8; Ternary: 2;
                          // E8P: 2 per weight, a 16-bit code per 8 weights)
  int group = 0;          // weights per group along a row; 0 = per-channel (whole row)
  bool asym = false;      // Int only: integer zero-point per group
  bool double_quant = false;
  ScaleType scale_type = ScaleType::F16;

  bool quantized() const { return kind != FormatKind::F32 && kind != FormatKind::F16 && kind != FormatKind::BF16; }
  // Length of the groups of a row with `cols` columns (the last group may be shorter).
  int64_t group_len(int64_t cols) const { return group > 0 && group < cols ? group : cols; }
  std::string to_string() const;  // canonical spelling, e.g. "int4:g128:asym", "nf4:g64:dq"
  bool operator==(const QuantSpec&) const = default;
};

// Parses the spelling above; throws lowbit::Error("format", ...) naming the bad part.
// Rules (strict; see docs/FORMAT.md "Spelling"):
//  - the kind comes first; the other parts may follow in any order, each at most once;
//  - g<G>: G a multiple of 8 in [8, 65536], written without leading zeros; "gc" = per-channel;
//    when no group part is given the kind's registry default applies (int 128, nf4 64, fp4 32,
//    fp8 per-channel, ternary 64, e8p 64);
//  - ":asym" only for int; ":dq" only for symmetric int, nf4 and fp4; ":bf16s" only for
//    quantized kinds without ":dq" (double-quantized scales are not fp16/bf16);
//  - f32 / f16 / bf16 take no parts.
// parse_quant_spec(s.to_string()) == s for every valid s.
QuantSpec parse_quant_spec(std::string_view s);

// Throws lowbit::Error("format", ...) unless `s` obeys the rules above (bits matching the kind,
// group 0 or a multiple of 8 in [8, 65536], flags allowed for the kind). Used by the parser and
// by validate() on specs read from untrusted files.
void check_quant_spec(const QuantSpec& s);

}  // namespace lowbit
