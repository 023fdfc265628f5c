#include "sampling/trace.h"

#include <cstdio>

namespace nucleus::sampling {

nlohmann::json to_json(const StepTrace& step) {
  nlohmann::json records = nlohmann::json::array();
  for (const TraceRecord& r : step.records) {
    nlohmann::json top = nlohmann::json::array();
    for (const TraceCandidate& c : r.top)
      top.push_back({{"id", c.id}, {"logit", c.logit}, {"prob", c.prob}});
    records.push_back({{"name", r.name}, {"survivors", r.survivors}, {"top", std::move(top)}});
  }
  return {{"step", step.step}, {"records", std::move(records)}};
}

nlohmann::json to_json(const SamplingTrace& trace) {
  nlohmann::json steps = nlohmann::json::array();
  for (const StepTrace& s : trace.steps) steps.push_back(to_json(s));
  return {{"top_n", trace.top_n}, {"steps", std::move(steps)}};
}

std::string format_step(const StepTrace& step) {
  std::string s = "step ";
  s += std::to_string(step.step);
  s += ":";
  for (size_t i = 0; i < step.records.size(); ++i) {
    const TraceRecord& r = step.records[i];
    s += i == 0 ? " " : " | ";
    s += r.name;
    s += " ";
    s += std::to_string(r.survivors);
    s += " [";
    for (size_t j = 0; j < r.top.size(); ++j) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s%d %.3f", j == 0 ? "" : ", ", r.top[j].id,
                    static_cast<double>(r.top[j].prob));
      s += buf;
    }
    s += "]";
  }
  return s;
}

}  // namespace nucleus::sampling
