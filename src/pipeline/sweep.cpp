#include "pipeline/sweep.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/mapped_file.h"
#include "eval/bench.h"
#include "eval/compare.h"
#include "eval/perplexity.h"
#include "eval/task_data.h"
#include "eval/task_score.h"
#include "model/loader.h"
#include "pipeline/bit_allocation.h"

namespace lowbit {

namespace {

std::string file_name_for(const std::string& recipe) {
  std::string s = recipe;
  std::replace(s.begin(), s.end(), ':', '_');
  std::replace(s.begin(), s.end(), '@', '_');
  return s + ".lowbit";
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

double decode_speed(const LlamaModel& m, const SweepOptions& opt) {
  if (opt.bench_gen <= 0) return 0;
  return bench(m, opt.bench_prompt, opt.bench_gen, opt.bench_reps).decode_tok_s;
}

// "RECIPE@BPW": the recipe's measurement allocated to BPW bits per weight; else a plain recipe.
struct SweepEntry {
  std::string recipe;
  double target_bpw = 0;  // 0: no allocation
};

SweepEntry parse_entry(const std::string& text) {
  SweepEntry e;
  const size_t at = text.find('@');
  e.recipe = text.substr(0, at);
  RecipePlan(e.recipe, {});  // throws for a bad recipe
  if (at == std::string::npos) return e;
  size_t used = 0;
  try {
    e.target_bpw = std::stod(text.substr(at + 1), &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || at + 1 + used != text.size() || !(e.target_bpw >= 0.5 && e.target_bpw <= 32))
    throw Error("sweep", "'" + text + "': expected RECIPE@BITS, bits per weight in [0.5, 32], e.g. gptq:int4:g128@2.5");
  return e;
}

// Sets qo.recipe (and, for an allocated entry, qo.assigned from the base recipe's measurement,
// measured once and kept in out_dir).
void plan_entry(const SweepEntry& e, const LoadedModel& ref, const SweepOptions& opt, QuantizeOptions& qo) {
  qo.recipe = e.recipe;
  if (e.target_bpw == 0) return;
  MeasureOptions mo;
  mo.recipe = e.recipe;
  mo.calibration = opt.quantize.calibration;
  std::string name = "measure_" + e.recipe + ".json";
  std::replace(name.begin(), name.end(), ':', '_');
  const Measurement m = load_or_measure(opt.out_dir + "/" + name, ref.source, *ref.tokenizer, mo);
  const Allocation al = allocate_for_file(m, *ref.tokenizer, target_bytes_for_bpw(ref.source.config, e.target_bpw));
  for (const AllocationRow& r : al.rows) qo.assigned[r.name] = r.recipe;
}

}  // namespace

void mark_pareto(std::vector<SweepRow>& rows) {
  for (SweepRow& r : rows) {
    r.pareto = std::none_of(rows.begin(), rows.end(), [&](const SweepRow& o) {
      const bool no_worse = o.bits_per_weight_all <= r.bits_per_weight_all && o.kld_mean <= r.kld_mean;
      const bool better = o.bits_per_weight_all < r.bits_per_weight_all || o.kld_mean < r.kld_mean;
      return &o != &r && no_worse && better;
    });
  }
}

std::vector<SweepRow> run_sweep(const std::string& model_path, const SweepOptions& opt) {
  if (opt.recipes.empty()) throw Error("sweep", "no recipes given");
  std::vector<SweepEntry> entries;
  for (const std::string& r : opt.recipes) entries.push_back(parse_entry(r));  // fail before any work
  if (opt.ctx < 2) throw Error("sweep", "--ctx must be at least 2 (got " + std::to_string(opt.ctx) + ")");
  std::error_code ec;
  std::filesystem::create_directories(opt.out_dir, ec);
  if (!std::filesystem::is_directory(opt.out_dir)) throw Error("sweep", opt.out_dir + ": cannot create directory");
  auto say = [&](const std::string& s) {
    if (opt.progress) opt.progress(s);
  };

  const LoadedModel ref = load_model(model_path);
  std::vector<int32_t> ids = ref.tokenizer->encode(read_text_file(opt.text_file), false);
  if (opt.max_tokens > 0 && static_cast<int64_t>(ids.size()) > opt.max_tokens) ids.resize(opt.max_tokens);
  const int64_t stride = opt.stride > 0 ? opt.stride : opt.ctx;

  std::vector<std::pair<const TaskSpec*, std::vector<ChoiceDoc>>> tasks;
  for (const std::string& name : opt.tasks) {
    const TaskSpec& spec = find_task(name);
    tasks.emplace_back(&spec, load_task_docs(spec, default_data_dir() + "/" + spec.default_file, opt.task_limit));
  }
  auto score_tasks = [&](const LoadedModel& m, SweepRow& r) {
    for (const auto& [spec, docs] : tasks) {
      say(r.recipe + ": " + spec->name);
      const TaskResult t = run_task(*m.model, *m.tokenizer, docs, TaskProtocol::LmEval);
      r.tasks.push_back({spec->name, t[TaskMetric::Acc].value, t[TaskMetric::AccNorm].value,
                         t[TaskMetric::AccNorm].std_error});
    }
  };

  std::vector<SweepRow> rows;
  say("reference: perplexity and speed");
  {
    SweepRow r;
    r.recipe = "reference";
    const PerplexityResult p = perplexity(*ref.model, ids, opt.ctx, stride);
    r.ppl = p.ppl;
    r.ppl_stderr = p.ppl_stderr;
    r.bits_per_weight = r.bits_per_weight_all = 32;  // the reference runs in fp32
    r.file_bytes = static_cast<int64_t>(std::filesystem::file_size(
        std::filesystem::is_directory(model_path) ? std::filesystem::path(model_path) / "model.safetensors"
                                                  : std::filesystem::path(model_path), ec));
    r.decode_tok_s = decode_speed(*ref.model, opt);
    score_tasks(ref, r);
    rows.push_back(r);
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string& recipe = opt.recipes[i];
    const std::string out = opt.out_dir + "/" + file_name_for(recipe);
    say(recipe + (entries[i].target_bpw > 0 ? ": measuring and allocating" : ": quantizing"));
    QuantizeOptions qo = opt.quantize;
    plan_entry(entries[i], ref, opt, qo);
    say(recipe + ": quantizing");
    const QuantizeReport q = quantize_model(ref.source, *ref.tokenizer, qo, out);
    say(recipe + ": evaluating");
    const LoadedModel m = load_model(out);
    const CompareResult c = compare_models(*m.model, *ref.model, ids, opt.ctx, stride);
    SweepRow r;
    r.recipe = recipe;
    r.bits_per_weight = q.bpw_linear();
    r.bits_per_weight_all = q.bpw_all();
    r.file_bytes = static_cast<int64_t>(std::filesystem::file_size(out));
    r.ppl = c.ppl;
    r.ppl_stderr = c.ppl_stderr;
    r.delta_ppl = c.delta_ppl;
    r.kld_mean = c.kld_mean;
    r.kld_p99 = c.kld_p99;
    r.top1_agree = c.top1_agree;
    r.quantize_seconds = q.seconds;
    say(recipe + ": decode speed");
    r.decode_tok_s = decode_speed(*m.model, opt);
    score_tasks(m, r);
    rows.push_back(r);
  }
  mark_pareto(rows);
  return rows;
}

std::string sweep_markdown(const std::vector<SweepRow>& rows, const std::string& title) {
  std::string s = "### " + title + "\n\n";
  s += "| recipe | bits/weight (linear) | bits/weight (all) | file MiB | ppl | Δppl | KLD mean | KLD p99 | top-1 | quantize s | decode tok/s | Pareto |";
  if (!rows.empty())
    for (const auto& t : rows[0].tasks) s += " " + t.task + " acc_norm |";
  s += "\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|";
  if (!rows.empty())
    for (size_t i = 0; i < rows[0].tasks.size(); ++i) s += "---:|";
  s += "\n";
  for (const SweepRow& r : rows) {
    s += "| " + r.recipe + " | " + fmt("%.3f", r.bits_per_weight) + " | " + fmt("%.3f", r.bits_per_weight_all) + " | " +
         fmt("%.2f", r.file_bytes / 1048576.0) + " | " + fmt("%.3f", r.ppl) + " ± " + fmt("%.3f", r.ppl_stderr) + " | " +
         fmt("%+.3f", r.delta_ppl) + " | " + fmt("%.5f", r.kld_mean) + " | " + fmt("%.4f", r.kld_p99) + " | " +
         fmt("%.2f%%", 100.0 * r.top1_agree) + " | " + fmt("%.1f", r.quantize_seconds) + " | " +
         fmt("%.0f", r.decode_tok_s) + " | " + (r.pareto && r.recipe != "reference" ? "★" : "") + " |";
    for (const auto& t : r.tasks)
      s.append(" ").append(fmt("%.2f%%", 100.0 * t.acc_norm)).append(" ± ").append(fmt("%.2f", 100.0 * t.acc_norm_stderr)).append(" |");
    s += "\n";
  }
  return s;
}

std::string sweep_json(const std::vector<SweepRow>& rows) {
  nlohmann::json a = nlohmann::json::array();
  for (const SweepRow& r : rows) {
    nlohmann::json tasks = nlohmann::json::object();
    for (const auto& t : r.tasks)
      tasks[t.task] = {{"acc", t.acc}, {"acc_norm", t.acc_norm}, {"acc_norm_stderr", t.acc_norm_stderr}};
    a.push_back({{"recipe", r.recipe}, {"bits_per_weight", r.bits_per_weight},
                 {"bits_per_weight_all", r.bits_per_weight_all}, {"file_bytes", r.file_bytes}, {"ppl", r.ppl},
                 {"ppl_stderr", r.ppl_stderr}, {"delta_ppl", r.delta_ppl}, {"kld_mean", r.kld_mean},
                 {"kld_p99", r.kld_p99}, {"top1_agree", r.top1_agree}, {"quantize_seconds", r.quantize_seconds},
                 {"decode_tok_s", r.decode_tok_s}, {"pareto", r.pareto}, {"tasks", tasks}});
  }
  return a.dump(2) + "\n";
}

std::string sweep_gnuplot_script(const std::vector<SweepRow>& rows, const std::string& title,
                                 const std::string& png_path) {
  // Quantized rows only (the reference has KLD 0, which a log axis cannot show).
  std::vector<const SweepRow*> q, front;
  for (const SweepRow& r : rows)
    if (r.recipe != "reference" && r.kld_mean > 0) q.push_back(&r);
  for (const SweepRow* r : q)
    if (r->pareto) front.push_back(r);
  std::sort(front.begin(), front.end(), [](auto* a, auto* b) { return a->bits_per_weight_all < b->bits_per_weight_all; });
  std::string s = "set terminal pngcairo size 1000,650 font 'sans,10'\n";
  s += "set output '" + png_path + "'\n";
  s += "set title '" + title + "'\nset xlabel 'bits per weight (all weights: embeddings, norms and lm_head included)'\n";
  s += "set ylabel 'mean KL divergence vs original (nats/token)'\nset logscale y\nset grid\nset key top right\n";
  s += "set offsets graph 0.05, graph 0.25, 0, 0\nset format y '%g'\n";
  s += "$points << EOD\n";
  for (const SweepRow* r : q) s += fmt("%.4f ", r->bits_per_weight_all) + fmt("%.6g ", r->kld_mean) + "\"" + r->recipe + "\"\n";
  s += "EOD\n$front << EOD\n";
  for (const SweepRow* r : front) s += fmt("%.4f ", r->bits_per_weight_all) + fmt("%.6g\n", r->kld_mean);
  s += "EOD\n";
  s += "plot $front using 1:2 with lines lw 2 lc rgb '#2c7fb8' title 'Pareto front', \\\n"
       "     $points using 1:2 with points pt 7 ps 1.3 lc rgb '#d95f02' title 'recipes', \\\n"
       "     $points using 1:2:3 with labels offset 0.8,0.6 left font 'sans,8' notitle\n";
  return s;
}

}  // namespace lowbit
