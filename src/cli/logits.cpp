// nucleus logits: the forward pass's output for a list of ids, as JSON, so
// outside checks can verify the model against another implementation.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "runtime/engine.h"
#include "util/error.h"

namespace nucleus::cli {

Command add_logits(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    std::string tokens;
    bool all = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("logits", "print the logits of a forward pass as JSON");
  o->model.add_to(sub);
  sub->add_option("--tokens", o->tokens, "prompt as comma-separated token ids")->required();
  sub->add_flag("--all", o->all, "logits of every position, not just the last");
  return {sub, [o] {
            const std::vector<int32_t> ids = parse_ids(o->tokens);
            check(!ids.empty(), "--tokens: empty prompt");
            LoadedModel m = load_model(o->model);
            EngineOptions eo;
            eo.threads = o->model.thread_count();
            eo.max_sequences = 1;
            Engine engine(m.model, eo);
            std::vector<float> logits;
            engine.prefill(engine.kv().create(), ids, logits, o->all);
            const int64_t vocab = engine.vocab_size();
            nlohmann::json out;
            auto row = [&](int64_t r) {
              return std::vector<float>(logits.begin() + r * vocab,
                                        logits.begin() + (r + 1) * vocab);
            };
            if (o->all) {
              nlohmann::json rows = nlohmann::json::array();
              for (size_t r = 0; r < ids.size(); ++r) rows.push_back(row(static_cast<int64_t>(r)));
              out["logits"] = rows;
            } else {
              out["logits"] = row(0);
            }
            std::printf("%s\n", out.dump().c_str());
            return 0;
          }};
}

}  // namespace nucleus::cli
