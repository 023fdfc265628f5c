// nucleus tokenize / detokenize: text <-> ids with the model's tokenizer.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "util/error.h"

namespace nucleus::cli {

Command add_tokenize(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    std::string text;
    bool no_bos = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("tokenize", "print the token ids of TEXT as a JSON list");
  o->model.add_to(sub);
  sub->add_flag("--no-bos", o->no_bos, "do not prepend the BOS token");
  sub->add_option("text", o->text, "text to encode")->required();
  return {sub, [o] {
            LoadedModel m = load_model(o->model, LoadDepth::kVocab);
            const Tokenizer& tok = m.need_tokenizer();
            const std::vector<int32_t> ids =
                tok.encode(o->text, !o->no_bos && tok.add_bos_default());
            std::printf("%s\n", nlohmann::json(ids).dump().c_str());
            return 0;
          }};
}

Command add_detokenize(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    std::string ids;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("detokenize", "print the text of comma-separated token ids");
  o->model.add_to(sub);
  sub->add_option("ids", o->ids, "token ids, e.g. 1,403,407")->required();
  return {sub, [o] {
            LoadedModel m = load_model(o->model, LoadDepth::kVocab);
            const Tokenizer& tok = m.need_tokenizer();
            const std::vector<int32_t> ids = parse_ids(o->ids);
            for (int32_t id : ids)
              check(id >= 0 && id < tok.vocab_size(), "token id " + std::to_string(id) +
                                                          " is out of range [0, " +
                                                          std::to_string(tok.vocab_size()) + ")");
            StreamingDetokenizer detok(tok);
            std::string text;
            for (int32_t id : ids) text += detok.push(id);
            text += detok.flush();
            std::printf("%s\n", text.c_str());
            return 0;
          }};
}

}  // namespace nucleus::cli
