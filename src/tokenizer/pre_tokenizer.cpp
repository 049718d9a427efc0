#include "tokenizer/pre_tokenizer.h"

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/regex.h"

namespace lowbit {

namespace {

using json = nlohmann::json;

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Segment {
  size_t begin, end;
  bool is_match;
};

// The text cut at the regex matches: alternating non-match / match segments, empties dropped.
std::vector<Segment> segments(const Regex& re, std::string_view s, bool invert) {
  std::vector<Segment> out;
  size_t pos = 0;
  for (const auto& [b, e] : re.find_all(s)) {
    if (b > pos) out.push_back({pos, b, invert});
    out.push_back({b, e, !invert});
    pos = e;
  }
  if (pos < s.size()) out.push_back({pos, s.size(), invert});
  return out;
}

// HF's SplitDelimiterBehavior applied to the segments of s.
void apply_behavior(Behavior b, std::string_view s, const std::vector<Segment>& segs,
                    std::vector<std::string>& out) {
  std::string pending;  // text waiting to be joined with the next segment (MergedWithNext)
  for (size_t i = 0; i < segs.size(); ++i) {
    const Segment& g = segs[i];
    const std::string_view text = s.substr(g.begin, g.end - g.begin);
    if (!g.is_match) {
      out.emplace_back(pending + std::string(text));
      pending.clear();
      continue;
    }
    switch (b) {
      case Behavior::kRemoved:
        break;
      case Behavior::kIsolated:
        out.emplace_back(text);
        break;
      case Behavior::kMergedWithPrevious:
        if (i > 0 && !segs[i - 1].is_match)
          out.back() += text;
        else
          out.emplace_back(text);
        break;
      case Behavior::kMergedWithNext:
        pending += text;
        break;
      case Behavior::kContiguous:
        if (i > 0 && segs[i - 1].is_match)
          out.back() += text;
        else
          out.emplace_back(text);
        break;
    }
  }
  if (!pending.empty()) out.push_back(std::move(pending));
}

class SplitPre final : public PreTokenizer {
 public:
  SplitPre(const std::string& pattern, bool literal, Behavior b, bool invert,
           std::string_view origin)
      : re_(pattern, origin, literal), behavior_(b), invert_(invert) {}
  std::vector<std::string> split(std::vector<std::string> pieces) const override {
    std::vector<std::string> out;
    for (const std::string& p : pieces)
      apply_behavior(behavior_, p, segments(re_, p, invert_), out);
    return out;
  }

 private:
  Regex re_;
  Behavior behavior_;
  bool invert_;
};

class ByteLevelPre final : public PreTokenizer {
 public:
  ByteLevelPre(bool add_prefix_space, bool use_regex, std::string_view origin)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) re_ = std::make_unique<Regex>(kGpt2Pattern, origin);
  }
  std::vector<std::string> split(std::vector<std::string> pieces) const override {
    if (add_prefix_space_) {
      for (std::string& p : pieces) {
        if (!p.empty() && p[0] != ' ') p.insert(p.begin(), ' ');
      }
    }
    if (!re_) return pieces;
    std::vector<std::string> out;
    for (const std::string& p : pieces)
      apply_behavior(Behavior::kIsolated, p, segments(*re_, p, false), out);
    return out;
  }
  bool is_byte_level() const override { return true; }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> re_;
};

class SequencePre final : public PreTokenizer {
 public:
  explicit SequencePre(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  std::vector<std::string> split(std::vector<std::string> pieces) const override {
    for (const auto& s : steps_) pieces = s->split(std::move(pieces));
    return pieces;
  }
  bool is_byte_level() const override {
    for (const auto& s : steps_) {
      if (s->is_byte_level()) return true;
    }
    return false;
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

class NoPre final : public PreTokenizer {
 public:
  std::vector<std::string> split(std::vector<std::string> pieces) const override { return pieces; }
};

Behavior parse_behavior(const std::string& s, std::string_view origin) {
  if (s == "Removed") return Behavior::kRemoved;
  if (s == "Isolated") return Behavior::kIsolated;
  if (s == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::kMergedWithNext;
  if (s == "Contiguous") return Behavior::kContiguous;
  throw Error("tokenizer", std::string(origin) + ": unsupported Split behavior '" + s + "'");
}

std::unique_ptr<PreTokenizer> make_split(const json& j, std::string_view origin) {
  const json& pat = j.at("pattern");
  const bool literal = pat.contains("String");
  const std::string pattern =
      literal ? pat.at("String").get<std::string>() : pat.at("Regex").get<std::string>();
  const Behavior b = parse_behavior(j.value("behavior", std::string("Isolated")), origin);
  return std::make_unique<SplitPre>(pattern, literal, b, j.value("invert", false), origin);
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j, std::string_view origin) {
  if (j.is_null()) return std::make_unique<NoPre>();
  const std::string type = j.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const json& s : j.at("pretokenizers")) steps.push_back(make_pre_tokenizer(s, origin));
    return std::make_unique<SequencePre>(std::move(steps));
  }
  if (type == "Split") return make_split(j, origin);
  if (type == "Digits") {
    const bool individual = j.value("individual_digits", false);
    return std::make_unique<SplitPre>(individual ? R"(\p{N})" : R"(\p{N}+)", false,
                                      Behavior::kIsolated, false, origin);
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPre>(j.value("add_prefix_space", true),
                                          j.value("use_regex", true), origin);
  }
  throw Error("tokenizer", std::string(origin) + ": unsupported pre_tokenizer type '" + type + "'");
}

}  // namespace lowbit
