#pragma once
// Rendering of SamplingTrace for the CLI: one text line per processor, or JSON.
#include <nlohmann/json.hpp>
#include <string>

#include "sampling/processor.h"

namespace nucleus::sampling {

// {"step": s, "records": [{"name": "top_k", "survivors": 50,
//   "top": [{"id": 432, "logit": 17.8, "prob": 0.97}, ...]}, ...]}
nlohmann::json to_json(const StepTrace& step);
// {"top_n": n, "steps": [...]}
nlohmann::json to_json(const SamplingTrace& trace);

// "step 3: input 512 [432 0.970, 383 0.029] | top_k 50 [...] | ..."
std::string format_step(const StepTrace& step);

}  // namespace nucleus::sampling
