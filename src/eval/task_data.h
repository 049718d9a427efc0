// Zero-shot multiple-choice tasks as lm-evaluation-harness poses them: each document is a context
// and a few continuations, one of them right; a model picks the continuation it finds most likely.
//
// The tasks and the files they are read from (../shared/data layouts):
//   hellaswag      llama.cpp's text layout (hellaswag_val_full.txt, optionally .bz2): 6 lines per
//                  task — context (already "activity_label: ctx_a ctx_b" as lm-eval builds it),
//                  the gold index 0..3, four endings. continuation_i = " " + ending_i.
//   arc_easy,      ARC jsonl: question.stem, question.choices[].{label,text}, answerKey (a label;
//   arc_challenge  "A".."E" or "1".."5"). context = "Question: " + stem + "\nAnswer:",
//                  continuation_i = " " + text_i (lm-eval's arc_easy / arc_challenge).
//   mmlu           gemma.cpp's MMLU sample (mmlu.json): {"samples": [{prompt, options,
//                  input_label}]} — a 5-shot prompt ending in "Answer:", options " A".." D".
// Every loader validates everything it reads and throws lowbit::Error("tasks", "<file>: ...")
// naming the document for malformed input (wrong line count, a gold index out of range, fewer
// than 2 choices, an empty context or choice, a missing field, an answer key no choice has).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

struct ChoiceDoc {
  std::string context;
  std::vector<std::string> choices;  // continuations, each appended to the context as is
  int32_t gold = 0;                  // index into choices
};

struct TaskSpec {
  std::string name;          // "hellaswag", "arc_easy", "arc_challenge", "mmlu"
  std::string default_file;  // relative to the shared data directory
};

// The known tasks in a fixed order.
const std::vector<TaskSpec>& task_specs();
// Throws lowbit::Error("tasks", ...) listing the known names.
const TaskSpec& find_task(std::string_view name);

// $LOWBIT_SHARED/data, else ../shared/data (relative to the working directory).
std::string default_data_dir();

// Reads `path` (decompressing it when it ends in .bz2) as the task's layout. Documents come in
// file order; `limit` > 0 keeps only the first `limit`.
std::vector<ChoiceDoc> load_task_docs(const TaskSpec& task, const std::string& path, int64_t limit = 0);

// The parsers behind load_task_docs, on text already in memory (`where` names it in errors).
std::vector<ChoiceDoc> parse_hellaswag(std::string_view text, const std::string& where);
std::vector<ChoiceDoc> parse_arc_jsonl(std::string_view text, const std::string& where);
std::vector<ChoiceDoc> parse_mmlu_sample(std::string_view text, const std::string& where);

// The whole decompressed content of a .bz2 file; throws lowbit::Error("tasks", ...) for a file
// that is not bzip2, is truncated or would pass `max_bytes`.
std::string read_bz2_file(const std::string& path, int64_t max_bytes = int64_t{1} << 30);

}  // namespace lowbit
