#pragma once
// Shared by the generate_* tests: the bundled model, its tokenizer, and an
// independent recomputation of a sequence's log-probability (teacher forcing:
// one prefill over prompt + tokens, no decode loop, no beams).
#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/model_file.h"
#include "generate/generator.h"
#include "runtime/engine.h"
#include "sampling/math.h"
#include "tokenizer/tokenizer.h"

namespace nucleus::testutil {

inline std::shared_ptr<const ModelFile> bundled_file() {
  static const auto file = std::make_shared<const ModelFile>(
      load_model_file(std::string(NUCLEUS_MODELS_DIR) + "/stories260K.gguf"));
  return file;
}

inline std::shared_ptr<const Model> bundled_model() {
  static const auto model = std::make_shared<const Model>(bundled_file());
  return model;
}

inline const Tokenizer& bundled_tokenizer() {
  static const std::unique_ptr<Tokenizer> tok = make_tokenizer(bundled_file()->vocab);
  return *tok;
}

inline EngineOptions engine_options(int threads = 1, int64_t max_sequences = 12) {
  EngineOptions o;
  o.threads = threads;
  o.max_sequences = max_sequences;
  return o;
}

inline nlohmann::json load_json(const std::string& rel) {
  std::ifstream in(std::string(NUCLEUS_TEST_DATA) + "/" + rel);
  return nlohmann::json::parse(in);
}

// log p(tokens[i] | prompt, tokens[0..i)) for every i, from one prefill.
inline std::vector<double> token_logprobs(Engine& e, const std::vector<int32_t>& prompt,
                                          const std::vector<int32_t>& tokens) {
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), tokens.begin(), tokens.end());
  all.pop_back();  // the last token is only predicted
  const int32_t seq = e.kv().create();
  std::vector<float> logits;
  e.prefill(seq, all, logits, /*all_positions=*/true);
  e.kv().release(seq);
  const int64_t v = e.vocab_size();
  std::vector<double> out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const size_t row = prompt.size() - 1 + i;
    std::vector<float> lp = sampling::log_softmax(
        std::span<const float>(logits.data() + row * v, static_cast<size_t>(v)));
    out.push_back(lp[static_cast<size_t>(tokens[i])]);
  }
  return out;
}

inline double sum(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;
  return s;
}

inline std::string detok(const std::vector<int32_t>& ids, int32_t prev) {
  StreamingDetokenizer d(bundled_tokenizer(), prev);
  std::string s;
  for (int32_t t : ids) s += d.push(t);
  return s + d.flush();
}

}  // namespace nucleus::testutil
