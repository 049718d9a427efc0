// The per-step record of a training run (finetune, train) and its three forms: train_log.csv,
// the JSON a checkpoint carries, and back.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lowbit {

struct StepLog {
  int64_t step = 0;       // 1-based
  double loss = 0;        // mean nats per target over the step's micro-batches
  double lr = 0, grad_norm = 0;
  int64_t tokens = 0;     // tokens fed so far (padding excluded)
  double seconds = 0;     // training time so far (evaluation excluded)
};

// train_log.csv: "step,loss,lr,grad_norm,tokens,seconds", one row per step (written atomically).
void write_train_log_csv(const std::string& path, const std::vector<StepLog>& log);

// [[step, loss, lr, grad_norm, tokens, seconds], ...]
nlohmann::json train_log_json(const std::vector<StepLog>& log);
// The inverse; throws nlohmann::json::exception on a malformed array (callers name the file).
std::vector<StepLog> train_log_from_json(const nlohmann::json& a);

}  // namespace lowbit
