#include "formats/quant_spec.h"

#include <vector>

#include "base/error.h"
#include "formats/registry.h"

namespace lowbit {

namespace {

constexpr int kMinGroup = 8, kMaxGroup = 65536, kGroupMultiple = 8;

// What is wrong with `s`, or "" when it is valid.
std::string spec_problem(const QuantSpec& s) {
  if (!is_known_kind(s.kind)) return "unknown format kind " + std::to_string(int(s.kind));
  const FormatInfo& f = format_info(s.kind);
  const std::string name(f.name);
  if (s.bits < f.min_bits || s.bits > f.max_bits) {
    return f.min_bits == f.max_bits
               ? name + " has " + std::to_string(f.min_bits) + "-bit codes, not " +
                     std::to_string(s.bits)
               : name + " bits must be " + std::to_string(f.min_bits) + ".." +
                     std::to_string(f.max_bits) + ", not " + std::to_string(s.bits);
  }
  if (s.scale_type != ScaleType::F16 && s.scale_type != ScaleType::BF16)
    return "unknown scale type";
  if (!s.quantized()) {
    if (s.group != 0 || s.asym || s.double_quant || s.scale_type != ScaleType::F16)
      return name + " is unquantized and takes no group, asym, dq or bf16s";
    return "";
  }
  if (s.group != 0 && (s.group < kMinGroup || s.group > kMaxGroup || s.group % kGroupMultiple != 0))
    return "group " + std::to_string(s.group) + " must be a multiple of 8 in [8, 65536] (or gc)";
  if (s.asym && !f.allows_asym) return "asym is only for int, not " + name;
  if (s.double_quant && !f.allows_dq) return "dq is only for int, nf4, fp4, ternary and e8p, not " + name;
  if (s.double_quant && s.asym) return "dq is only for symmetric int (no asym)";
  if (s.double_quant && s.scale_type == ScaleType::BF16)
    return "bf16s does not apply with dq (double-quantized scales are 8-bit codes)";
  return "";
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

// A positive decimal without sign or leading zeros, at most 6 digits; -1 otherwise.
int parse_count(std::string_view d) {
  if (d.empty() || d.size() > 6 || d[0] == '0') return -1;
  int v = 0;
  for (char c : d) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

[[noreturn]] void bad_spec(std::string_view text, const std::string& why) {
  throw Error("format", "bad quant spec '" + std::string(text) + "': " + why);
}

// The kind part ("int4", "nf4", "f16", ...): sets kind, bits and the default group.
QuantSpec parse_kind(std::string_view part, std::string_view text) {
  for (const FormatInfo& f : all_formats()) {
    QuantSpec s;
    s.kind = f.kind;
    s.group = f.default_group;
    if (f.kind == FormatKind::Int && part.starts_with(f.name)) {
      s.bits = parse_count(part.substr(f.name.size()));
      if (s.bits < 0) bad_spec(text, "int needs a bit count, e.g. int4");
      return s;
    }
    if (part == f.name) {
      s.bits = f.min_bits;
      return s;
    }
  }
  bad_spec(text, "unknown format '" + std::string(part) +
                     "' (known: int2..int8, nf4, fp4, fp8, ternary, e8p, f16, bf16, f32)");
}

void parse_part(std::string_view part, std::string_view text, QuantSpec& s, std::string& seen) {
  const bool group = part.starts_with('g');
  const std::string key = group ? "g" : std::string(part);
  if (seen.find("|" + key + "|") != std::string::npos)
    bad_spec(text, "'" + std::string(group ? "group" : part) + "' given twice");
  seen += "|" + key + "|";
  if (part == "gc") {
    s.group = 0;
  } else if (group) {
    s.group = parse_count(part.substr(1));
    if (s.group < 0) bad_spec(text, "bad group '" + std::string(part) + "' (want g<N> or gc)");
  } else if (part == "asym") {
    s.asym = true;
  } else if (part == "dq") {
    s.double_quant = true;
  } else if (part == "bf16s") {
    s.scale_type = ScaleType::BF16;
  } else {
    bad_spec(text, "unknown part '" + std::string(part) + "' (want g<N>, gc, asym, dq, bf16s)");
  }
}

}  // namespace

std::string QuantSpec::to_string() const {
  if (!is_known_kind(kind)) return "unknown(" + std::to_string(int(kind)) + ")";
  std::string s(format_info(kind).name);
  if (kind == FormatKind::Int) s += std::to_string(bits);
  if (!quantized()) return s;
  s += group > 0 ? ":g" + std::to_string(group) : ":gc";
  if (asym) s += ":asym";
  if (double_quant) s += ":dq";
  if (scale_type == ScaleType::BF16) s += ":bf16s";
  return s;
}

QuantSpec parse_quant_spec(std::string_view text) {
  const std::vector<std::string_view> parts = split(text, ':');
  for (std::string_view p : parts)
    if (p.empty()) bad_spec(text, "empty part");
  QuantSpec s = parse_kind(parts[0], text);
  if (!s.quantized() && parts.size() > 1)
    bad_spec(text, std::string(parts[0]) + " is unquantized and takes no further parts");
  std::string seen;
  for (size_t i = 1; i < parts.size(); ++i) parse_part(parts[i], text, s, seen);
  const std::string why = spec_problem(s);
  if (!why.empty()) bad_spec(text, why);
  return s;
}

void check_quant_spec(const QuantSpec& s) {
  const std::string why = spec_problem(s);
  if (!why.empty()) throw Error("format", "bad quant spec: " + why);
}

}  // namespace lowbit
