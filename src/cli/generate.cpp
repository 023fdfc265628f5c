// nucleus generate: prompt -> streamed text, with Hugging Face generate()
// settings, then a timing/cost summary on stderr (or one JSON object).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "generate/generator.h"
#include "util/error.h"

namespace nucleus::cli {
namespace {

struct GenerateOpts {
  ModelOptions model;
  std::string prompt = "Once upon a time";
  std::string tokens;
  int64_t n = 256;
  bool no_kv_cache = false;
  bool json = false;
  bool trace = false;
  std::string early_stopping = "false";
  std::string bad_words;
  std::string suppress;
  std::string eos;
  sampling::GenerationConfig cfg;
  bool do_sample = false;
};

std::vector<std::vector<int32_t>> parse_id_groups(const std::string& text) {
  // "5,6;7" -> {{5,6},{7}}: sequences separated by ';'.
  std::vector<std::vector<int32_t>> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(';', start), text.size());
    const auto ids = parse_ids(text.substr(start, end - start));
    if (!ids.empty()) out.push_back(ids);
    start = end + 1;
  }
  return out;
}

nlohmann::json phase_json(const PhaseStats& p) {
  return {{"tokens", p.tokens},
          {"seconds", p.seconds},
          {"tokens_per_second", p.seconds > 0 ? static_cast<double>(p.tokens) / p.seconds : 0.0},
          {"flops", p.counters.total_flops()},
          {"weight_bytes", p.counters.weight_bytes},
          {"kv_read_bytes", p.counters.kv_read_bytes},
          {"kv_write_bytes", p.counters.kv_write_bytes}};
}

void print_phase(const char* name, const char* unit, const PhaseStats& p) {
  const double tps = p.seconds > 0 ? static_cast<double>(p.tokens) / p.seconds : 0.0;
  const double flops = static_cast<double>(p.counters.total_flops());
  const double bytes = static_cast<double>(p.counters.weight_bytes + p.counters.kv_read_bytes +
                                           p.counters.kv_write_bytes);
  std::fprintf(stderr,
               "%-8s %6lld %-10s %9.2f ms %10.1f tok/s  %10.3f GFLOP  %8.2f GFLOP/s  %8.2f GB/s\n",
               name, static_cast<long long>(p.tokens), unit, p.seconds * 1e3, tps, flops / 1e9,
               p.seconds > 0 ? flops / p.seconds / 1e9 : 0.0,
               p.seconds > 0 ? bytes / p.seconds / 1e9 : 0.0);
}

int run_generate(GenerateOpts& o) {
  sampling::GenerationConfig& cfg = o.cfg;
  cfg.do_sample = o.do_sample;
  cfg.early_stopping = sampling::parse_early_stopping(o.early_stopping);
  check(o.n > 0, "-n/--max-new-tokens must be positive, got " + std::to_string(o.n));
  cfg.max_new_tokens = o.n;
  if (!o.bad_words.empty()) cfg.bad_words_ids = parse_id_groups(o.bad_words);
  if (!o.suppress.empty()) cfg.suppress_tokens = parse_ids(o.suppress);
  if (!o.eos.empty()) cfg.eos_token_ids = parse_ids(o.eos);
  cfg.validate();
  // Everything checkable without the model is checked before loading it, so a
  // bad setting is reported even when the model path is wrong too.
  GenerateRequest req;
  if (!o.tokens.empty()) {
    try {
      req.prompt = parse_ids(o.tokens);
    } catch (const Error& e) {
      std::string msg = "--tokens: ";
      msg += e.what();
      throw Error(msg);
    }
    check(!req.prompt.empty(), "--tokens: empty prompt (give at least one token id)");
    for (int32_t id : req.prompt)
      check(id >= 0, "--tokens: token id " + std::to_string(id) + " is negative");
  } else {
    check(!o.prompt.empty(), "-p/--prompt: empty prompt (give some text or --tokens)");
  }

  LoadedModel m = load_model(o.model);
  if (o.tokens.empty()) {
    const Tokenizer& tok = m.need_tokenizer();
    req.prompt = tok.encode(o.prompt, tok.add_bos_default());
    check(!req.prompt.empty(), "-p/--prompt: the text encodes to no tokens");
  }
  for (int32_t id : req.prompt)
    check(id < m.model->config().vocab_size,
          "--tokens: token id " + std::to_string(id) + " is out of range [0, " +
              std::to_string(m.model->config().vocab_size) + ")");
  req.config = cfg;
  req.kv_cache = !o.no_kv_cache;
  req.trace = o.trace;

  EngineOptions eo;
  eo.threads = o.model.thread_count();
  eo.max_sequences = std::max<int64_t>(cfg.num_beams, cfg.num_return_sequences) * 2 + 1;
  Engine engine(m.model, eo);

  const bool stream_text = !o.json && cfg.num_beams == 1 && cfg.num_return_sequences == 1;
  if (stream_text && o.tokens.empty()) std::fputs(o.prompt.c_str(), stdout);
  std::fflush(stdout);
  StreamCallback stream;
  if (stream_text) {
    stream = [](int64_t, const std::string& text) {
      std::fputs(text.c_str(), stdout);
      std::fflush(stdout);
    };
  }
  const GenerateResult res = generate(engine, m.tokenizer.get(), req, stream);

  if (o.json) {
    nlohmann::json out;
    out["prompt_tokens"] = req.prompt;
    const SequenceResult& first = res.sequences.front();
    out["tokens"] = first.tokens;
    out["text"] = first.text;
    out["stop_reason"] = first.stop_reason;
    if (res.sequences.size() > 1 || cfg.num_beams > 1) {
      nlohmann::json seqs = nlohmann::json::array();
      for (const SequenceResult& s : res.sequences)
        seqs.push_back({{"tokens", s.tokens}, {"text", s.text}, {"score", s.score},
                        {"stop_reason", s.stop_reason}});
      out["sequences"] = seqs;
    }
    out["sampler_chain"] = res.chain;
    out["kv_peak_bytes"] = res.kv_peak_blocks * res.kv_bytes_per_block;
    out["timings"] = {{"prefill", phase_json(res.prefill)}, {"decode", phase_json(res.decode)}};
    if (o.trace) {
      nlohmann::json traces = nlohmann::json::array();
      for (const SequenceResult& s : res.sequences) {
        nlohmann::json steps = nlohmann::json::array();
        for (const auto& st : s.trace.steps) {
          nlohmann::json recs = nlohmann::json::array();
          for (const auto& r : st.records) {
            nlohmann::json top = nlohmann::json::array();
            for (const auto& c : r.top) top.push_back({{"id", c.id}, {"logit", c.logit}, {"prob", c.prob}});
            recs.push_back({{"processor", r.name}, {"survivors", r.survivors}, {"top", top}});
          }
          steps.push_back({{"step", st.step}, {"processors", recs}});
        }
        traces.push_back(steps);
      }
      out["trace"] = traces.size() == 1 ? traces[0] : traces;
    }
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  if (stream_text) {
    std::fputs("\n", stdout);
  } else {
    for (size_t i = 0; i < res.sequences.size(); ++i) {
      const SequenceResult& s = res.sequences[i];
      std::printf("[%zu] score %.6f (%s)\n%s%s\n", i, s.score, s.stop_reason.c_str(),
                  o.tokens.empty() ? o.prompt.c_str() : "", s.text.c_str());
    }
  }
  if (o.trace) {
    for (size_t i = 0; i < res.sequences.size(); ++i) {
      for (const auto& st : res.sequences[i].trace.steps) {
        std::fprintf(stderr, "trace seq %zu step %lld:", i, static_cast<long long>(st.step));
        for (const auto& r : st.records) {
          std::fprintf(stderr, " %s[%lld", r.name.c_str(), static_cast<long long>(r.survivors));
          for (const auto& c : r.top) std::fprintf(stderr, " %d:%.3f", c.id, c.prob);
          std::fprintf(stderr, "]");
        }
        std::fprintf(stderr, "\n");
      }
    }
  }
  std::fprintf(stderr, "sampler chain: %s\n", res.chain.c_str());
  std::fprintf(stderr, "stop: %s%s\n", res.sequences.front().stop_reason.c_str(),
               req.kv_cache ? "" : " (no KV cache: every step recomputes the sequence)");
  print_phase("prefill", "prompt tok", res.prefill);
  print_phase("decode", "new tok", res.decode);
  return 0;
}

}  // namespace

Command add_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateOpts>();
  CLI::App* sub = app.add_subcommand("generate", "generate text from a prompt");
  o->model.add_to(sub);
  sampling::GenerationConfig& c = o->cfg;
  sub->add_option("-p,--prompt", o->prompt, "prompt text (default: \"Once upon a time\")");
  sub->add_option("--tokens", o->tokens, "prompt as comma-separated token ids, used as given");
  sub->add_option("-n,--max-new-tokens", o->n, "tokens to generate (default 256)");
  sub->add_flag("--no-kv-cache", o->no_kv_cache, "recompute the whole sequence every step");
  sub->add_flag("--json", o->json, "print one JSON object instead of streaming text");
  sub->add_flag("--trace", o->trace, "record what each logits processor kept at each step");
  sub->add_flag("--do-sample", o->do_sample, "sample instead of greedy/beam (HF do_sample)");
  auto* temp = sub->add_option("--temperature", c.temperature, "softmax temperature; 0 = greedy");
  auto* topk = sub->add_option("--top-k", c.top_k, "keep the k most likely (default 50 when sampling)");
  auto* topp = sub->add_option("--top-p", c.top_p, "nucleus: keep the smallest set with mass >= p");
  auto* minp = sub->add_option("--min-p", c.min_p, "drop tokens below min_p x the top probability");
  auto* typ = sub->add_option("--typical-p", c.typical_p, "locally typical sampling mass");
  auto* eps = sub->add_option("--epsilon-cutoff", c.epsilon_cutoff, "drop probabilities below epsilon");
  auto* eta = sub->add_option("--eta-cutoff", c.eta_cutoff, "eta sampling cutoff");
  sub->add_option("--repetition-penalty", c.repetition_penalty, "HF repetition penalty (1 = off)");
  sub->add_option("--no-repeat-ngram-size", c.no_repeat_ngram_size, "ban repeated n-grams");
  sub->add_option("--bad-words", o->bad_words, "banned id sequences, e.g. \"5,6;7\"");
  sub->add_option("--suppress-tokens", o->suppress, "ids never generated, e.g. 5,6");
  sub->add_option("--min-new-tokens", c.min_new_tokens, "EOS suppressed until this many tokens");
  sub->add_option("--num-beams", c.num_beams, "beam search width (1 = no beams)");
  sub->add_option("--length-penalty", c.length_penalty, "beam score = logprob / length^penalty");
  sub->add_option("--early-stopping", o->early_stopping, "beam stopping: true, false or never");
  sub->add_option("--num-return-sequences", c.num_return_sequences, "sequences to return");
  sub->add_option("--stop", c.stop_strings, "stop when this text appears (not emitted); repeatable");
  sub->add_option("--eos", o->eos, "end-of-sequence ids (default: the model's)");
  sub->add_option("--max-time", c.max_time, "stop after this many seconds");
  sub->add_option("--seed", c.seed, "seed of the counter-based sampling RNG");
  sub->add_option("--sampler-order", c.sampler_order, "hf (default) or llama.cpp");
  sub->add_option("--penalty-last-n", c.penalty_last_n, "llama.cpp order: penalty window");
  return {sub, [o, temp, topk, topp, minp, typ, eps, eta] {
            // A sampling knob given on the command line means the user wants to
            // sample (unless temperature is 0, which means greedy).
            const bool knob = temp->count() + topk->count() + topp->count() + minp->count() +
                                  typ->count() + eps->count() + eta->count() > 0;
            if (knob && o->cfg.temperature > 0.0) o->do_sample = true;
            if (temp->count() > 0 && o->cfg.temperature == 0.0) o->do_sample = false;
            return run_generate(*o);
          }};
}

}  // namespace nucleus::cli
