// `lowbit tasks`: zero-shot multiple-choice accuracy (eval/task_score.h), optionally beside a
// reference model on the same documents.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "cli/commands.h"
#include "eval/task_data.h"
#include "eval/task_score.h"
#include "model/loader.h"

namespace lowbit::cli {

namespace {

struct TasksArgs {
  std::string model, reference, tokenizer, file, protocol = "lm-eval", kv_type = "f32";
  std::vector<std::string> tasks;
  LoraArgs lora;  // applied to --model only
  int64_t limit = 0;
  bool json = false;
  int threads = 0;
};

struct TaskRun {
  const TaskSpec* spec = nullptr;
  std::string file;
  std::vector<ChoiceDoc> docs;
  TaskResult model, reference;
};

std::vector<const TaskSpec*> selected_tasks(const TasksArgs& a) {
  std::vector<const TaskSpec*> out;
  for (const std::string& list : a.tasks)
    for (const std::string& name : split_list(list)) {
      if (name == "all") {
        for (const TaskSpec& t : task_specs()) out.push_back(&t);
      } else {
        out.push_back(&find_task(name));
      }
    }
  if (out.empty()) throw Error("tasks", "--task: name at least one task");
  if (!a.file.empty() && out.size() != 1) throw Error("tasks", "--file needs exactly one --task");
  return out;
}

TaskResult run_one(const LoadedModel& m, const TaskRun& run, TaskProtocol protocol, KvType kv, const char* who) {
  const std::string what = run.spec->name + " (" + who + ")";
  return with_error_context(run.file, [&] {
    return run_task(*m.model, *m.tokenizer, run.docs, protocol, kv,
                    [&](int64_t d, int64_t t) { progress_line(what.c_str(), d, t); });
  });
}

nlohmann::json metrics_json(const TaskResult& r) {
  nlohmann::json j;
  for (TaskMetric m : kTaskMetrics) {
    j[task_metric_name(m)] = r[m].value;
    j[std::string(task_metric_name(m)) + "_stderr"] = r[m].std_error;
  }
  return j;
}

void print_json(const TasksArgs& a, TaskProtocol protocol, const std::vector<TaskRun>& runs) {
  const bool with_ref = !a.reference.empty();
  nlohmann::json tasks = nlohmann::json::array();
  for (const TaskRun& r : runs) {
    nlohmann::json t = {{"task", r.spec->name}, {"file", r.file}, {"docs", r.model.docs},
                        {"truncated", r.model.truncated}, {"tokens", r.model.tokens},
                        {"seconds", r.model.seconds}, {"model", metrics_json(r.model)}};
    if (with_ref) {
      t["reference"] = metrics_json(r.reference);
      nlohmann::json agree;
      for (TaskMetric m : kTaskMetrics) {
        const int k = static_cast<int>(m);
        agree[task_metric_name(m)] = prediction_agreement(r.model.predictions[k], r.reference.predictions[k]);
      }
      t["agree"] = agree;
    }
    tasks.push_back(t);
  }
  nlohmann::json j = {{"model", a.model}, {"protocol", task_protocol_name(protocol)}, {"kv_type", a.kv_type},
                      {"tasks", tasks}};
  if (with_ref) j["reference"] = a.reference;
  std::printf("%s\n", j.dump().c_str());
}

void print_table(const TasksArgs& a, TaskProtocol protocol, const std::vector<TaskRun>& runs) {
  const bool with_ref = !a.reference.empty();
  std::printf("protocol %s; acc_norm: per character (lm-eval), acc_tok: per token (llama-perplexity --hellaswag)\n",
              task_protocol_name(protocol));
  std::printf("%-14s %6s %-9s %18s", "task", "docs", "metric", "model");
  if (with_ref) std::printf(" %18s %7s", "reference", "agree");
  std::printf("\n");
  for (const TaskRun& r : runs) {
    bool first = true;
    for (TaskMetric m : kTaskMetrics) {
      const int k = static_cast<int>(m);
      if (first) {
        std::printf("%-14s %6lld ", r.spec->name.c_str(), static_cast<long long>(r.model.docs));
      } else {
        std::printf("%-14s %6s ", "", "");
      }
      first = false;
      std::printf("%-9s %8.2f%% ± %5.2f", task_metric_name(m), 100 * r.model[m].value, 100 * r.model[m].std_error);
      if (with_ref)
        std::printf(" %8.2f%% ± %5.2f %6.1f%%", 100 * r.reference[m].value, 100 * r.reference[m].std_error,
                    100 * prediction_agreement(r.model.predictions[k], r.reference.predictions[k]));
      std::printf("\n");
    }
    if (r.model.truncated > 0)
      std::printf("%-14s %lld documents lost context tokens from the left to fit the model's context\n", "",
                  static_cast<long long>(r.model.truncated));
  }
}

void run_tasks(const TasksArgs& a) {
  apply_threads(a.threads);
  const TaskProtocol protocol = parse_task_protocol(a.protocol);
  const KvType kv = parse_kv_type(a.kv_type);
  std::vector<TaskRun> runs;
  for (const TaskSpec* spec : selected_tasks(a)) {
    TaskRun r;
    r.spec = spec;
    r.file = a.file.empty() ? default_data_dir() + "/" + spec->default_file : a.file;
    r.docs = load_task_docs(*spec, r.file, a.limit);
    runs.push_back(std::move(r));
  }
  {
    LoadedModel m = load_model(a.model, a.tokenizer);
    apply_lora(*m.model, a.lora);
    for (TaskRun& r : runs) r.model = run_one(m, r, protocol, kv, "model");
  }
  if (!a.reference.empty()) {
    LoadedModel ref = load_model(a.reference);
    for (TaskRun& r : runs) r.reference = run_one(ref, r, protocol, KvType::F32, "reference");
  }
  if (a.json) {
    print_json(a, protocol, runs);
  } else {
    print_table(a, protocol, runs);
  }
}

}  // namespace

void add_tasks(CLI::App& app) {
  auto a = std::make_shared<TasksArgs>();
  CLI::App* cmd = app.add_subcommand(
      "tasks", "zero-shot task accuracy (HellaSwag, ARC, MMLU) by log-likelihood, lm-eval's or llama.cpp's way");
  cmd->add_option("-m,--model", a->model, "the model (.lowbit, HF directory, .gguf, llama2.c .bin)")->required();
  cmd->add_option("--task", a->tasks,
                  "hellaswag, arc_easy, arc_challenge, mmlu (comma-separated or repeated; all = every one)")
      ->required();
  cmd->add_option("-f,--file", a->file,
                  "the task's data file (default: $LOWBIT_SHARED/data/..., else ../shared/data/...; "
                  "HellaSwag in llama.cpp's 6-line layout, .bz2 read as is)");
  cmd->add_option("--limit", a->limit, "score only the first N documents of each task (default all)")
      ->check(positive());
  cmd->add_option("--protocol", a->protocol,
                  "lm-eval (context/continuation split, default) or llama.cpp (tokens after the choices' "
                  "common prefix, as llama-perplexity --hellaswag)")
      ->check(CLI::IsMember({"lm-eval", "llama.cpp"}));
  cmd->add_option("-r,--reference", a->reference, "also score this (full-precision) model and compare predictions");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer file for --model (default: found with the model)");
  cmd->add_flag("--json", a->json, "print one JSON object");
  add_lora_options(*cmd, &a->lora);
  add_kv_type_option(*cmd, &a->kv_type);
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a] { run_tasks(*a); });
}

}  // namespace lowbit::cli
