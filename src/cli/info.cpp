// nucleus info: what a model file holds.
#include <cstdio>
#include <map>

#include "cli/common.h"
#include "util/error.h"

namespace nucleus::cli {

Command add_info(CLI::App& app) {
  auto o = std::make_shared<ModelOptions>();
  CLI::App* sub = app.add_subcommand("info", "print a model's hyper-parameters and tensors");
  o->add_to(sub);
  return {
      sub, [o] {
        // The file is read and checked but not turned into a runnable
        // model (no repacking); a vocabulary-only file still shows its
        // tokenizer.
        LoadedModel m;
        try {
          m = load_model(*o, LoadDepth::kFile);
        } catch (const Error& e) {
          LoadedModel v;
          try {
            v = load_model(*o, LoadDepth::kVocab);
          } catch (const Error&) {
            throw e;
          }
          if (v.file->vocab.empty()) throw;
          std::printf("file:            %s\n", o->model_path().c_str());
          std::printf("weights:         none usable (%s)\n", e.what());
          std::printf("tokenizer:       %s, %zu tokens, BOS %d, EOS %d\n",
                      v.file->vocab.model.c_str(), v.file->vocab.tokens.size(),
                      v.file->vocab.bos_id, v.file->vocab.eos_id);
          std::printf("chat template:   %s\n",
                      v.file->vocab.chat_template.empty() ? "none" : "yes");
          return 0;
        }
        const ModelConfig& c = m.file->config;
        std::printf("file:            %s\n", o->model_path().c_str());
        std::printf("format:          %s\n", c.format.c_str());
        std::printf("architecture:    %s\n", c.arch.c_str());
        std::printf("context length:  %lld\n", static_cast<long long>(c.context_length));
        std::printf("embedding size:  %lld\n", static_cast<long long>(c.dim));
        std::printf("layers:          %lld\n", static_cast<long long>(c.n_layers));
        std::printf("heads:           %lld (KV heads %lld, head size %lld)\n",
                    static_cast<long long>(c.n_heads), static_cast<long long>(c.n_kv_heads),
                    static_cast<long long>(c.head_dim));
        std::printf("FFN size:        %lld\n", static_cast<long long>(c.ffn_dim));
        std::printf("vocab size:      %lld\n", static_cast<long long>(c.vocab_size));
        std::printf("rope base:       %g (%s pairs)\n", c.rope_theta,
                    c.rope_layout == RopeLayout::Interleaved ? "interleaved" : "rotate-half");
        std::printf("RMS norm eps:    %g\n", c.rms_eps);
        std::printf("tied embeddings: %s\n", c.tied_embeddings ? "yes" : "no");
        std::map<std::string, int> types;
        for (const auto& [name, t] : m.file->tensors) ++types[dtype_name(t.type)];
        std::printf("tensors:         %zu (", m.file->tensors.size());
        bool first = true;
        for (const auto& [type, count] : types) {
          std::printf("%s%s: %d", first ? "" : ", ", type.c_str(), count);
          first = false;
        }
        std::printf(")\n");
        size_t bytes = 0;
        for (const auto& [name, t] : m.file->tensors) bytes += t.nbytes;
        std::printf("tensor data:     %.2f MiB\n", static_cast<double>(bytes) / (1024.0 * 1024.0));
        if (m.tokenizer) {
          std::printf("tokenizer:       %s, %zu tokens, BOS %d, EOS %d\n",
                      m.file->vocab.model.c_str(), m.file->vocab.tokens.size(),
                      m.file->vocab.bos_id, m.file->vocab.eos_id);
        } else {
          std::printf("tokenizer:       none\n");
        }
        std::printf("chat template:   %s\n", m.file->vocab.chat_template.empty() ? "none" : "yes");
        return 0;
      }};
}

}  // namespace nucleus::cli
