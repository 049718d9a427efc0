#include "eval/task_score.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "base/error.h"
#include "eval/perplexity.h"

namespace lowbit {

namespace {

constexpr const char* kComp = "tasks";
constexpr int64_t kBlockRows = 64;  // KV block size of the per-document caches

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

TokenizedDoc tokenize_lm_eval(const Tokenizer& tok, const ChoiceDoc& doc) {
  std::string context = doc.context;
  size_t keep = context.size();
  while (keep > 0 && is_space(context[keep - 1])) --keep;
  const std::string moved = context.substr(keep);
  context.resize(keep);
  TokenizedDoc t;
  t.prefix = tok.encode(context, /*add_bos=*/true);
  for (const std::string& choice : doc.choices) {
    const std::string continuation = moved + choice;
    std::vector<int32_t> whole = tok.encode(context + continuation, /*add_bos=*/true);
    std::vector<int32_t> cont;
    if (whole.size() > t.prefix.size()) cont.assign(whole.begin() + static_cast<std::ptrdiff_t>(t.prefix.size()), whole.end());
    if (cont.empty()) cont = tok.encode(continuation, /*add_bos=*/false);
    if (cont.empty()) throw Error(kComp, "a choice encodes to no tokens");
    t.continuations.push_back(std::move(cont));
  }
  return t;
}

TokenizedDoc tokenize_llama_cpp(const Tokenizer& tok, const ChoiceDoc& doc) {
  std::vector<std::vector<int32_t>> seqs;
  size_t common = SIZE_MAX;
  for (const std::string& choice : doc.choices) {
    seqs.push_back(tok.encode(doc.context + choice, /*add_bos=*/true));
    common = std::min(common, seqs.back().size());
  }
  size_t p = 0;
  while (p < common && std::all_of(seqs.begin(), seqs.end(), [&](const auto& s) { return s[p] == seqs[0][p]; })) ++p;
  if (p == common && p > 0) --p;  // every continuation keeps at least one token
  if (p == 0) throw Error(kComp, "protocol llama.cpp: the choices share no first token (a vocabulary without BOS?)");
  TokenizedDoc t;
  t.prefix.assign(seqs[0].begin(), seqs[0].begin() + static_cast<std::ptrdiff_t>(p));
  for (auto& s : seqs) t.continuations.emplace_back(s.begin() + static_cast<std::ptrdiff_t>(p), s.end());
  return t;
}

// A copy of `base` that the caller may append to: full blocks are shared (only read from now
// on), the block holding position n_past onward is copied.
KvCache fork_cache(const KvCache& base) {
  KvCache c = base;
  for (size_t b = static_cast<size_t>(base.n_past / base.block_rows); b < c.blocks.size(); ++b)
    c.blocks[b] = std::make_shared<KvBlock>(*c.blocks[b]);
  return c;
}

void reserve_rows(KvCache& c, int64_t rows) {
  while (c.capacity() < rows) c.blocks.push_back(new_kv_block(c));
}

}  // namespace

TaskProtocol parse_task_protocol(std::string_view s) {
  if (s == "lm-eval") return TaskProtocol::LmEval;
  if (s == "llama.cpp") return TaskProtocol::LlamaCpp;
  throw Error(kComp, "unknown protocol \"" + std::string(s) + "\" (lm-eval or llama.cpp)");
}

const char* task_protocol_name(TaskProtocol p) { return p == TaskProtocol::LmEval ? "lm-eval" : "llama.cpp"; }

const char* task_metric_name(TaskMetric m) {
  switch (m) {
    case TaskMetric::Acc: return "acc";
    case TaskMetric::AccNorm: return "acc_norm";
    case TaskMetric::AccTok: return "acc_tok";
  }
  return "?";
}

TokenizedDoc tokenize_doc(const Tokenizer& tok, const ChoiceDoc& doc, TaskProtocol protocol) {
  return protocol == TaskProtocol::LmEval ? tokenize_lm_eval(tok, doc) : tokenize_llama_cpp(tok, doc);
}

DocScores score_continuations(const LlamaModel& model, const TokenizedDoc& doc, KvType kv_type) {
  LOWBIT_ASSERT(!doc.prefix.empty() && !doc.continuations.empty());
  const int64_t max_ctx = model.config().max_seq_len;
  int64_t longest = 0;
  for (const auto& c : doc.continuations) longest = std::max<int64_t>(longest, static_cast<int64_t>(c.size()));
  // The model reads prefix + continuation minus its last token.
  const int64_t room = max_ctx - (longest - 1);
  if (room < 1)
    throw Error(kComp, "a continuation of " + std::to_string(longest) + " tokens does not fit the context of " +
                           std::to_string(max_ctx));
  const int64_t n_prefix = std::min<int64_t>(room, static_cast<int64_t>(doc.prefix.size()));
  DocScores out;
  out.truncated = n_prefix < static_cast<int64_t>(doc.prefix.size());
  out.tokens_fed = n_prefix;
  const std::span<const int32_t> prefix(doc.prefix.data() + doc.prefix.size() - n_prefix, static_cast<size_t>(n_prefix));

  KvCache base = model.new_paged_cache(kBlockRows, kv_type);
  reserve_rows(base, n_prefix);
  std::vector<float> logits;
  model.forward(prefix, base, /*all_logits=*/false, logits);
  std::vector<ChoiceScore>& scores = out.choices;
  scores.resize(doc.continuations.size());
  for (size_t s = 0; s < scores.size(); ++s) {
    scores[s].loglik = -token_nll(logits, doc.continuations[s][0]);
    scores[s].tokens = static_cast<int64_t>(doc.continuations[s].size());
  }

  std::vector<KvCache> caches;
  std::vector<BatchSequence> batch;
  std::vector<size_t> which;
  caches.reserve(scores.size());
  for (size_t s = 0; s < scores.size(); ++s) {
    const auto& c = doc.continuations[s];
    if (c.size() < 2) continue;
    caches.push_back(fork_cache(base));
    reserve_rows(caches.back(), n_prefix + static_cast<int64_t>(c.size()) - 1);
    batch.push_back(BatchSequence{std::span<const int32_t>(c.data(), c.size() - 1), &caches.back(), true});
    which.push_back(s);
    out.tokens_fed += static_cast<int64_t>(c.size()) - 1;
  }
  if (batch.empty()) return out;
  model.forward_batch(batch, logits);
  const int64_t V = model.config().vocab_size;
  size_t row = 0;
  for (size_t b = 0; b < batch.size(); ++b) {
    const auto& c = doc.continuations[which[b]];
    for (size_t j = 1; j < c.size(); ++j, ++row)
      scores[which[b]].loglik -= token_nll(std::span<const float>(logits.data() + row * V, static_cast<size_t>(V)), c[j]);
  }
  return out;
}

int64_t utf8_length(std::string_view s) {
  return std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

double accuracy_stderr(double p, int64_t n) {
  return n < 2 ? 0.0 : std::sqrt(p * (1.0 - p) / static_cast<double>(n - 1));
}

int32_t predict_choice(const ChoiceDoc& doc, const std::vector<ChoiceScore>& s, TaskMetric m) {
  auto value = [&](size_t i) {
    switch (m) {
      case TaskMetric::Acc: return s[i].loglik;
      case TaskMetric::AccNorm: return s[i].loglik / static_cast<double>(std::max<int64_t>(1, utf8_length(doc.choices[i])));
      case TaskMetric::AccTok: return s[i].loglik / static_cast<double>(std::max<int64_t>(1, s[i].tokens));
    }
    return 0.0;
  };
  size_t best = 0;
  for (size_t i = 1; i < s.size(); ++i)
    if (value(i) > value(best)) best = i;
  return static_cast<int32_t>(best);
}

TaskResult run_task(const LlamaModel& model, const Tokenizer& tok, const std::vector<ChoiceDoc>& docs,
                    TaskProtocol protocol, KvType kv_type, const TaskProgress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  TaskResult r;
  r.docs = static_cast<int64_t>(docs.size());
  int64_t correct[3] = {0, 0, 0};
  for (size_t d = 0; d < docs.size(); ++d) {
    const TokenizedDoc td = with_error_context("document " + std::to_string(d + 1), [&] {
      return tokenize_doc(tok, docs[d], protocol);
    });
    const DocScores ds = with_error_context("document " + std::to_string(d + 1), [&] {
      return score_continuations(model, td, kv_type);
    });
    const std::vector<ChoiceScore>& s = ds.choices;
    r.truncated += ds.truncated;
    r.tokens += ds.tokens_fed;
    for (TaskMetric m : kTaskMetrics) {
      const int k = static_cast<int>(m);
      r.predictions[k].push_back(predict_choice(docs[d], s, m));
      correct[k] += r.predictions[k].back() == docs[d].gold;
    }
    if (progress) progress(static_cast<int64_t>(d + 1), r.docs);
  }
  for (int k = 0; k < 3; ++k) {
    const double p = r.docs > 0 ? static_cast<double>(correct[k]) / static_cast<double>(r.docs) : 0.0;
    r.metric[k] = {p, accuracy_stderr(p, r.docs)};
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

double prediction_agreement(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  LOWBIT_ASSERT(a.size() == b.size());
  if (a.empty()) return 0.0;
  int64_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  return static_cast<double>(same) / static_cast<double>(a.size());
}

}  // namespace lowbit
