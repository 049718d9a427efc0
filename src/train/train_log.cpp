#include "train/train_log.h"

#include <cstdio>

#include "base/atomic_file.h"

namespace lowbit {

void write_train_log_csv(const std::string& path, const std::vector<StepLog>& log) {
  std::string s = "step,loss,lr,grad_norm,tokens,seconds\n";
  char line[160];
  for (const StepLog& l : log) {
    std::snprintf(line, sizeof line, "%lld,%.6f,%.6g,%.6g,%lld,%.3f\n", static_cast<long long>(l.step), l.loss, l.lr,
                  l.grad_norm, static_cast<long long>(l.tokens), l.seconds);
    s += line;
  }
  AtomicFile f(path);
  f.write(s);
  f.commit();
}

nlohmann::json train_log_json(const std::vector<StepLog>& log) {
  nlohmann::json a = nlohmann::json::array();
  for (const StepLog& l : log) a.push_back({l.step, l.loss, l.lr, l.grad_norm, l.tokens, l.seconds});
  return a;
}

std::vector<StepLog> train_log_from_json(const nlohmann::json& a) {
  std::vector<StepLog> log;
  for (const nlohmann::json& e : a) {
    StepLog l;
    l.step = e.at(0).get<int64_t>();
    l.loss = e.at(1).get<double>();
    l.lr = e.at(2).get<double>();
    l.grad_norm = e.at(3).get<double>();
    l.tokens = e.at(4).get<int64_t>();
    l.seconds = e.at(5).get<double>();
    log.push_back(l);
  }
  return log;
}

}  // namespace lowbit
