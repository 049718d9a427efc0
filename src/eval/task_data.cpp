#include "eval/task_data.h"

#include <bzlib.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_depth.h"
#include "base/mapped_file.h"

namespace lowbit {

namespace {

constexpr const char* kComp = "tasks";

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw Error(kComp, where + ": " + what); }

std::string doc_where(const std::string& where, const char* unit, size_t index) {
  return where + " " + unit + " " + std::to_string(index + 1);
}

// Lines split on '\n' with a trailing '\r' removed; a final newline ends the last line (no empty
// line after it).
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = end + 1;
  }
  return lines;
}

void check_doc(const ChoiceDoc& d, const std::string& where) {
  if (d.context.empty()) fail(where, "empty context");
  if (d.choices.size() < 2) fail(where, "needs at least 2 choices, has " + std::to_string(d.choices.size()));
  for (const std::string& c : d.choices)
    if (c.empty()) fail(where, "empty choice");
  if (d.gold < 0 || static_cast<size_t>(d.gold) >= d.choices.size())
    fail(where, "gold index " + std::to_string(d.gold) + " is not a choice");
}

const nlohmann::json& field(const nlohmann::json& j, const char* key, nlohmann::json::value_t type,
                            const std::string& where) {
  if (!j.is_object()) fail(where, "expected a JSON object");
  auto it = j.find(key);
  if (it == j.end()) fail(where, std::string("missing field \"") + key + "\"");
  if (it->type() != type && !(type == nlohmann::json::value_t::number_integer && it->is_number_integer()))
    fail(where, std::string("field \"") + key + "\" has the wrong type (" + it->type_name() + ")");
  return *it;
}

nlohmann::json parse_json(std::string_view text, const std::string& where) {
  check_json_depth(text, kComp, where);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    fail(where, "not valid JSON");
  }
}

}  // namespace

const std::vector<TaskSpec>& task_specs() {
  static const std::vector<TaskSpec> specs = {
      {"hellaswag", "hellaswag/hellaswag_val_full.txt.bz2"},
      {"arc_easy", "arc_easy/test.jsonl"},
      {"arc_challenge", "arc_challenge/test.jsonl"},
      {"mmlu", "mmlu-sample/mmlu.json"},
  };
  return specs;
}

const TaskSpec& find_task(std::string_view name) {
  std::string known;
  for (const TaskSpec& t : task_specs()) {
    if (t.name == name) return t;
    if (!known.empty()) known += ", ";
    known += t.name;
  }
  throw Error(kComp, "unknown task \"" + std::string(name) + "\" (known: " + known + ")");
}

std::string default_data_dir() {
  const char* shared = std::getenv("LOWBIT_SHARED");
  return std::string(shared != nullptr && *shared != '\0' ? shared : "../shared") + "/data";
}

std::vector<ChoiceDoc> parse_hellaswag(std::string_view text, const std::string& where) {
  const std::vector<std::string_view> lines = split_lines(text);
  if (lines.empty() || lines.size() % 6 != 0)
    fail(where, "expected 6 lines per task (context, gold index, 4 endings), got " + std::to_string(lines.size()) +
                    " lines");
  std::vector<ChoiceDoc> docs(lines.size() / 6);
  for (size_t i = 0; i < docs.size(); ++i) {
    const std::string w = doc_where(where, "task", i);
    const std::string_view* t = &lines[6 * i];
    ChoiceDoc& d = docs[i];
    d.context = std::string(t[0]);
    if (t[1].size() != 1 || t[1][0] < '0' || t[1][0] > '3')
      fail(w, "gold index line must be 0..3, got \"" + std::string(t[1].substr(0, 20)) + "\"");
    d.gold = t[1][0] - '0';
    for (int k = 0; k < 4; ++k) {
      if (t[2 + k].empty()) fail(w, "empty ending");
      d.choices.push_back(std::string(1, ' ').append(t[2 + k]));
    }
    check_doc(d, w);
  }
  return docs;
}

std::vector<ChoiceDoc> parse_arc_jsonl(std::string_view text, const std::string& where) {
  using vt = nlohmann::json::value_t;
  std::vector<ChoiceDoc> docs;
  const std::vector<std::string_view> lines = split_lines(text);
  for (size_t li = 0; li < lines.size(); ++li) {
    if (lines[li].find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::string w = doc_where(where, "line", li);
    const nlohmann::json j = parse_json(lines[li], w);
    const nlohmann::json& q = field(j, "question", vt::object, w);
    const std::string key = field(j, "answerKey", vt::string, w).get<std::string>();
    ChoiceDoc d;
    d.context = "Question: " + field(q, "stem", vt::string, w).get<std::string>() + "\nAnswer:";
    d.gold = -1;
    for (const nlohmann::json& c : field(q, "choices", vt::array, w)) {
      if (field(c, "label", vt::string, w).get<std::string>() == key) d.gold = static_cast<int32_t>(d.choices.size());
      d.choices.push_back(std::string(1, ' ').append(field(c, "text", vt::string, w).get<std::string>()));
    }
    if (d.gold < 0) fail(w, "answerKey \"" + key.substr(0, 20) + "\" names no choice");
    check_doc(d, w);
    docs.push_back(std::move(d));
  }
  if (docs.empty()) fail(where, "no questions");
  return docs;
}

std::vector<ChoiceDoc> parse_mmlu_sample(std::string_view text, const std::string& where) {
  using vt = nlohmann::json::value_t;
  const nlohmann::json j = parse_json(text, where);
  const nlohmann::json& samples = field(j, "samples", vt::array, where);
  std::vector<ChoiceDoc> docs;
  for (size_t i = 0; i < samples.size(); ++i) {
    const std::string w = doc_where(where, "sample", i);
    ChoiceDoc d;
    d.context = field(samples[i], "prompt", vt::string, w).get<std::string>();
    for (const nlohmann::json& o : field(samples[i], "options", vt::array, w)) {
      if (!o.is_string()) fail(w, "options must be strings");
      d.choices.push_back(o.get<std::string>());
    }
    const nlohmann::json& label = field(samples[i], "input_label", vt::number_integer, w);
    const int64_t g = label.get<int64_t>();  // a huge unsigned value wraps negative: refused below
    d.gold = g < 0 || g > 1000 ? -1 : static_cast<int32_t>(g);
    check_doc(d, w);
    docs.push_back(std::move(d));
  }
  if (docs.empty()) fail(where, "no samples");
  return docs;
}

// Concatenated streams (as parallel bzip2 tools write) are decoded one after another.
std::string read_bz2_file(const std::string& path, int64_t max_bytes) {
  const std::string packed = read_text_file(path);
  if (packed.size() > 0xffffffffu) fail(path, "compressed file too large");
  std::string out;
  std::vector<char> buf(1 << 16);
  size_t consumed = 0;
  do {
    bz_stream s{};
    if (BZ2_bzDecompressInit(&s, 0, 0) != BZ_OK) fail(path, "cannot start bzip2 decompression");
    std::unique_ptr<bz_stream, int (*)(bz_stream*)> guard(&s, BZ2_bzDecompressEnd);
    s.next_in = const_cast<char*>(packed.data() + consumed);
    s.avail_in = static_cast<unsigned>(packed.size() - consumed);
    for (;;) {
      s.next_out = buf.data();
      s.avail_out = static_cast<unsigned>(buf.size());
      const int rc = BZ2_bzDecompress(&s);
      out.append(buf.data(), buf.size() - s.avail_out);
      if (static_cast<int64_t>(out.size()) > max_bytes)
        fail(path, "decompresses to more than " + std::to_string(max_bytes) + " bytes");
      if (rc == BZ_STREAM_END) break;
      if (rc != BZ_OK) fail(path, "not a valid bzip2 file (error " + std::to_string(rc) + ")");
      if (s.avail_in == 0 && s.avail_out != 0) fail(path, "truncated bzip2 file");
    }
    consumed = packed.size() - s.avail_in;
  } while (consumed < packed.size());
  return out;
}

std::vector<ChoiceDoc> load_task_docs(const TaskSpec& task, const std::string& path, int64_t limit) {
  const bool bz2 = path.size() >= 4 && path.compare(path.size() - 4, 4, ".bz2") == 0;
  const std::string text = bz2 ? read_bz2_file(path) : read_text_file(path);
  std::vector<ChoiceDoc> docs;
  if (task.name == "hellaswag") {
    docs = parse_hellaswag(text, path);
  } else if (task.name == "arc_easy" || task.name == "arc_challenge") {
    docs = parse_arc_jsonl(text, path);
  } else if (task.name == "mmlu") {
    docs = parse_mmlu_sample(text, path);
  } else {
    throw Error(kComp, "no loader for task " + task.name);
  }
  if (limit > 0 && static_cast<int64_t>(docs.size()) > limit) docs.resize(static_cast<size_t>(limit));
  return docs;
}

}  // namespace lowbit
