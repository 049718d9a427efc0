// Zero-shot multiple-choice scoring (eval/task_data.h documents) by log-likelihood, with the two
// conventions people compare against:
//
//  protocol "lm-eval" (lm-evaluation-harness, HF models with add_bos_token=True): trailing
//    whitespace of the context moves to the front of the continuation; context_ids =
//    encode(context, BOS), whole = encode(context + continuation, BOS), continuation_ids =
//    whole[len(context_ids):] (encode(continuation) alone should that be empty); the model reads
//    context_ids + continuation_ids.
//  protocol "llama.cpp" (llama-perplexity --hellaswag): every choice is encode(context + choice,
//    BOS); the tokens all choices share form the prefix, the rest of each is its continuation
//    (at least its last token: a choice whose tokens are a prefix of another's keeps one).
//
// Each choice's log-likelihood is Σ log p(token | everything before it) over its continuation
// tokens (fp32 logits, log-softmax in double: eval/perplexity.h token_nll). A document's
// prediction is the argmax (the first index wins a tie) of, per metric:
//   acc       the log-likelihood
//   acc_norm  log-likelihood / characters (Unicode code points) of the choice string — lm-eval's
//   acc_tok   log-likelihood / continuation tokens — what llama-perplexity --hellaswag prints
//             (it calls it acc_norm)
// and each metric's stderr is lm-eval's sample standard error sqrt(p (1 - p) / (n - 1)).
//
// The shared prefix runs once per document; the choices then run as one batch (forward_batch)
// on copies of its KV cache that share its full blocks. A document longer than the model's
// context loses prefix tokens from the left (lm-eval truncates from the left too) and is counted
// in `truncated`.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "eval/task_data.h"
#include "model/kv_cache.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace lowbit {

enum class TaskProtocol { LmEval, LlamaCpp };
// "lm-eval" or "llama.cpp"; throws lowbit::Error("tasks", ...) otherwise.
TaskProtocol parse_task_protocol(std::string_view s);
const char* task_protocol_name(TaskProtocol p);

// A document as the model reads it: one prefix, then each choice's continuation.
struct TokenizedDoc {
  std::vector<int32_t> prefix;
  std::vector<std::vector<int32_t>> continuations;  // each non-empty
};
// Throws lowbit::Error("tasks", ...) if the protocol leaves the prefix empty (llama.cpp: the
// choices share no token, e.g. a vocabulary without BOS).
TokenizedDoc tokenize_doc(const Tokenizer& tok, const ChoiceDoc& doc, TaskProtocol protocol);

struct ChoiceScore {
  double loglik = 0;
  int64_t tokens = 0;  // continuation tokens scored
};
struct DocScores {
  std::vector<ChoiceScore> choices;
  bool truncated = false;  // the prefix lost tokens to fit max_seq_len
  int64_t tokens_fed = 0;  // positions the model ran
};
// Log-likelihood of every continuation after the prefix. Throws lowbit::Error("tasks", ...) if a
// continuation alone does not fit the context.
DocScores score_continuations(const LlamaModel& model, const TokenizedDoc& doc, KvType kv_type = KvType::F32);

// Code points of a UTF-8 string (bytes that are not continuation bytes).
int64_t utf8_length(std::string_view s);

struct Accuracy {
  double value = 0, std_error = 0;
};
// sqrt(p (1 - p) / (n - 1)); 0 for n < 2.
double accuracy_stderr(double p, int64_t n);

enum class TaskMetric { Acc, AccNorm, AccTok };
inline constexpr TaskMetric kTaskMetrics[] = {TaskMetric::Acc, TaskMetric::AccNorm, TaskMetric::AccTok};
const char* task_metric_name(TaskMetric m);  // "acc", "acc_norm", "acc_tok"

struct TaskResult {
  int64_t docs = 0, truncated = 0, tokens = 0;  // tokens: fed to the model
  Accuracy metric[3];                           // indexed by TaskMetric
  std::vector<int32_t> predictions[3];          // per document, per metric
  double seconds = 0;
  const Accuracy& operator[](TaskMetric m) const { return metric[static_cast<int>(m)]; }
};

// The predicted choice of one document for metric `m` from its choices' scores.
int32_t predict_choice(const ChoiceDoc& doc, const std::vector<ChoiceScore>& s, TaskMetric m);

using TaskProgress = std::function<void(int64_t done, int64_t total)>;
TaskResult run_task(const LlamaModel& model, const Tokenizer& tok, const std::vector<ChoiceDoc>& docs,
                    TaskProtocol protocol, KvType kv_type = KvType::F32, const TaskProgress& progress = nullptr);

// Fraction of documents on which two runs over the same documents predict the same choice.
double prediction_agreement(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

}  // namespace lowbit
