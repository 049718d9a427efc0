#include "tokenizer/spm_vocab_json.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_depth.h"
#include "tokenizer/base64.h"
#include "tokenizer/utf8.h"

namespace lowbit {

namespace {

using json = nlohmann::json;

constexpr const char* kFormat = "lowbit-spm-vocab";
constexpr int kVersion = 1;

[[noreturn]] void fail(std::string_view origin, const std::string& what) {
  throw Error("tokenizer", std::string(origin) + ": " + what);
}

json piece_to_json(const std::string& p) {
  if (is_valid_utf8(p)) return p;
  return {{"base64", base64_encode(p)}};
}

std::string piece_from_json(const json& j, std::string_view origin) {
  if (j.is_string()) return j.get<std::string>();
  const std::optional<std::string> bytes = base64_decode(j.at("base64").get<std::string>());
  if (!bytes) fail(origin, "bad base64 piece");
  return *bytes;
}

json score_to_json(float s) {
  if (std::isinf(s)) return s > 0 ? "inf" : "-inf";
  return s;  // float -> double is exact, and nlohmann prints doubles so that they round-trip
}

float score_from_json(const json& j, std::string_view origin) {
  if (j.is_number()) return static_cast<float>(j.get<double>());
  if (j == "inf") return std::numeric_limits<float>::infinity();
  if (j == "-inf") return -std::numeric_limits<float>::infinity();
  fail(origin, "bad score " + j.dump());
}

int32_t int32_from_json(const json& j, std::string_view origin, const char* what) {
  const auto v = j.get<int64_t>();
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
    fail(origin, std::string(what) + " out of range");
  return static_cast<int32_t>(v);
}

SpmVocabWithKind from_root(const json& root, std::string_view origin) {
  if (root.at("format") != kFormat || root.at("version") != kVersion)
    fail(origin, "unknown format or version");
  SpmVocabWithKind out;
  out.tokenizer_kind = root.at("tokenizer_kind").get<std::string>();
  SpmVocab& v = out.vocab;
  v.bos_id = int32_from_json(root.at("bos_id"), origin, "bos_id");
  v.eos_id = int32_from_json(root.at("eos_id"), origin, "eos_id");
  v.unk_id = int32_from_json(root.at("unk_id"), origin, "unk_id");
  v.add_dummy_prefix = root.at("add_dummy_prefix").get<bool>();
  for (const json& p : root.at("pieces")) v.pieces.push_back(piece_from_json(p, origin));
  for (const json& s : root.at("scores")) v.scores.push_back(score_from_json(s, origin));
  for (const json& t : root.at("types")) v.types.push_back(int32_from_json(t, origin, "type"));
  validate_spm_vocab(v, origin);
  return out;
}

}  // namespace

std::string spm_vocab_to_json(const SpmVocab& v, std::string_view tokenizer_kind) {
  json pieces = json::array(), scores = json::array(), types = json::array();
  for (const std::string& p : v.pieces) pieces.push_back(piece_to_json(p));
  for (const float s : v.scores) scores.push_back(score_to_json(s));
  for (const int32_t t : v.types) types.push_back(t);
  const json root = {{"format", kFormat},
                     {"version", kVersion},
                     {"tokenizer_kind", tokenizer_kind},
                     {"bos_id", v.bos_id},
                     {"eos_id", v.eos_id},
                     {"unk_id", v.unk_id},
                     {"add_dummy_prefix", v.add_dummy_prefix},
                     {"pieces", std::move(pieces)},
                     {"scores", std::move(scores)},
                     {"types", std::move(types)}};
  return root.dump();
}

SpmVocabWithKind spm_vocab_from_json(std::string_view text, std::string_view origin) {
  check_json_depth(text, "tokenizer", std::string(origin));
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    fail(origin, std::string("not valid JSON: ") + e.what());
  }
  try {
    return from_root(root, origin);
  } catch (const json::exception& e) {
    fail(origin, std::string("unexpected structure: ") + e.what());
  }
}

}  // namespace lowbit
