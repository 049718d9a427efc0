#include "train/dataset.h"

#include <algorithm>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_depth.h"
#include "base/mapped_file.h"

namespace lowbit {

int64_t Sequence::n_targets() const {
  return static_cast<int64_t>(std::count_if(targets.begin(), targets.end(), [](int32_t t) { return t >= 0; }));
}

namespace {

int64_t sum_targets(const std::vector<Sequence>& v) {
  int64_t n = 0;
  for (const Sequence& s : v) n += s.n_targets();
  return n;
}

// Non-overlapping windows of ctx + 1 tokens over ids[begin, end).
void cut_windows(const std::vector<int32_t>& ids, size_t begin, size_t end, int64_t ctx, std::vector<Sequence>* out) {
  for (size_t i = begin; i + 1 < end; i += static_cast<size_t>(ctx)) {
    const size_t n = std::min<size_t>(static_cast<size_t>(ctx), end - i - 1);  // targets available
    Sequence s;
    s.tokens.assign(ids.begin() + static_cast<ptrdiff_t>(i), ids.begin() + static_cast<ptrdiff_t>(i + n));
    s.targets.assign(ids.begin() + static_cast<ptrdiff_t>(i + 1), ids.begin() + static_cast<ptrdiff_t>(i + n + 1));
    out->push_back(std::move(s));
  }
}

Dataset text_dataset(const std::string& text, const Tokenizer& tok, const DatasetOptions& o) {
  const std::vector<int32_t> ids = tok.encode(text, true);
  Dataset d;
  d.kind = "text";
  const size_t n_hold = static_cast<size_t>(static_cast<double>(ids.size()) * o.holdout);
  cut_windows(ids, 0, ids.size() - n_hold, o.ctx, &d.train);
  if (n_hold > 0) cut_windows(ids, ids.size() - n_hold, ids.size(), o.ctx, &d.heldout);
  return d;
}

std::string string_field(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end()) return {};
  if (!it->is_string()) throw Error("finetune", where + ": \"" + key + "\" must be a string");
  return it->get<std::string>();
}

// One JSONL example as a sequence (see the header for the accepted shapes).
Sequence jsonl_sequence(const nlohmann::json& j, const Tokenizer& tok, int64_t ctx, const std::string& where) {
  if (!j.is_object()) throw Error("finetune", where + ": expected a JSON object");
  std::string prompt, completion;
  bool prompted = true;
  if (j.contains("text")) {
    completion = string_field(j, "text", where);
    prompted = false;
  } else if (j.contains("prompt")) {
    prompt = string_field(j, "prompt", where);
    completion = j.contains("completion") ? string_field(j, "completion", where) : string_field(j, "response", where);
    if (!j.contains("completion") && !j.contains("response"))
      throw Error("finetune", where + ": \"prompt\" needs a \"completion\" or \"response\"");
  } else if (j.contains("instruction")) {
    prompt = string_field(j, "instruction", where);
    const std::string input = string_field(j, "input", where);
    if (!input.empty()) prompt += "\n\n" + input;
    completion = string_field(j, "output", where);
  } else {
    throw Error("finetune", where + ": expected \"text\", \"prompt\"+\"completion\" or \"instruction\"+\"output\"");
  }
  std::vector<int32_t> ids = tok.encode(prompt + completion, true);
  if (prompted && tok.eos_id() >= 0) ids.push_back(tok.eos_id());
  const size_t masked = prompted ? tok.encode(prompt, true).size() : 1;  // targets before this index carry no loss
  Sequence s;
  const size_t n = std::min<size_t>(static_cast<size_t>(ctx), ids.empty() ? 0 : ids.size() - 1);
  for (size_t i = 0; i < n; ++i) {
    s.tokens.push_back(ids[i]);
    s.targets.push_back(i + 1 < masked ? -1 : ids[i + 1]);
  }
  return s;
}

Dataset jsonl_dataset(const std::string& text, const std::string& path, const Tokenizer& tok, const DatasetOptions& o) {
  std::vector<Sequence> all;
  std::istringstream in(text);
  int64_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    check_json_depth(line, "data", where);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw Error("finetune", where + ": not valid JSON");
    }
    Sequence s = jsonl_sequence(j, tok, o.ctx, where);
    if (s.n_targets() > 0) all.push_back(std::move(s));
  }
  Dataset d;
  d.kind = "jsonl";
  const size_t n_hold = static_cast<size_t>(static_cast<double>(all.size()) * o.holdout);
  d.train.assign(std::make_move_iterator(all.begin()), std::make_move_iterator(all.end() - static_cast<ptrdiff_t>(n_hold)));
  d.heldout.assign(std::make_move_iterator(all.end() - static_cast<ptrdiff_t>(n_hold)), std::make_move_iterator(all.end()));
  return d;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

int64_t Dataset::train_targets() const { return sum_targets(train); }
int64_t Dataset::heldout_targets() const { return sum_targets(heldout); }

Dataset load_dataset(const std::string& path, const Tokenizer& tok, const DatasetOptions& o) {
  if (o.ctx < 2 || o.ctx > (1 << 20)) throw Error("finetune", "--ctx must be in [2, 1048576]");
  if (!(o.holdout >= 0 && o.holdout <= 0.9)) throw Error("finetune", "--holdout must be in [0, 0.9]");
  const std::string text = read_text_file(path);
  Dataset d = ends_with(path, ".jsonl") ? jsonl_dataset(text, path, tok, o) : text_dataset(text, tok, o);
  if (d.train.empty() || d.train_targets() == 0)
    throw Error("finetune", path + ": too little data for one training sequence");
  if (o.holdout > 0 && d.heldout_targets() == 0)
    throw Error("finetune", path + ": too little data for a held-out part (use more data or --holdout 0)");
  return d;
}

TrainBatch make_batch(const std::vector<Sequence>& seqs, const std::vector<int64_t>& order, int64_t first, int64_t n) {
  TrainBatch b;
  b.n_seq = n;
  for (int64_t i = 0; i < n; ++i)
    b.len = std::max<int64_t>(b.len, static_cast<int64_t>(seqs[static_cast<size_t>(order[first + i])].tokens.size()));
  b.tokens.assign(static_cast<size_t>(n * b.len), 0);
  b.targets.assign(static_cast<size_t>(n * b.len), -1);
  for (int64_t i = 0; i < n; ++i) {
    const Sequence& s = seqs[static_cast<size_t>(order[first + i])];
    std::copy(s.tokens.begin(), s.tokens.end(), b.tokens.begin() + i * b.len);
    std::copy(s.targets.begin(), s.targets.end(), b.targets.begin() + i * b.len);
  }
  return b;
}

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed + static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng() % static_cast<uint64_t>(i + 1)]);
  return order;
}

}  // namespace lowbit
