// nucleus generate: prompt -> streamed text, with Hugging Face generate()
// settings, then a timing/cost summary on stderr (or one JSON object).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/generation_flags.h"
#include "cli/perf_report.h"
#include "cost/probe.h"
#include "generate/generator.h"
#include "util/error.h"

namespace nucleus::cli {
namespace {

struct GenerateOpts {
  ModelOptions model;
  GenerationFlags gen;
  std::string prompt = "Once upon a time";
  std::string tokens;
  bool no_kv_cache = false;
  bool json = false;
  bool trace = false;
  // Exact speculative decoding.
  std::string speculative;  // "", "lookup", "draft"
  std::string draft_model;
  std::string draft_quantize;
  int64_t draft_max = 8;
  int64_t ngram = 3;
};

PhasePerf measured(const PhaseStats& p, const cost::MachinePeaks& peaks, DType dtype, int threads) {
  return phase_perf(p.tokens, p.seconds, p.counters, peaks, dtype, threads);
}

// The perf figures plus the raw counters (the bytes split by kind).
nlohmann::json phase_json(const PhaseStats& p, const PhasePerf& perf) {
  nlohmann::json j = phase_perf_json(perf);
  j["matmul_flops"] = p.counters.matmul_flops;
  j["attention_flops"] = p.counters.attention_flops;
  j["weight_bytes"] = p.counters.weight_bytes;
  j["kv_read_bytes"] = p.counters.kv_read_bytes;
  j["kv_write_bytes"] = p.counters.kv_write_bytes;
  return j;
}

// Drafted / accepted tokens and what they bought: generated tokens per
// decode forward of the target (1.0 without speculation).
nlohmann::json spec_json(const GenerateResult& res) {
  const SpeculativeStats& s = res.speculative;
  const double rate = s.drafted > 0 ? static_cast<double>(s.accepted) / s.drafted : 0.0;
  const double per_forward =
      s.forwards > 0 ? static_cast<double>(res.decode.tokens) / s.forwards : 0.0;
  return {{"drafted", s.drafted},
          {"accepted", s.accepted},
          {"acceptance_rate", rate},
          {"verify_forwards", s.verify_forwards},
          {"forwards", s.forwards},
          {"tokens_per_forward", per_forward}};
}

int run_generate(GenerateOpts& o) {
  // Everything checkable without the model is checked before loading it, so a
  // bad setting is reported even when the model path is wrong too.
  const sampling::GenerationConfig cfg = o.gen.resolve(o.model.model_path());
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
      check(id >= 0,
            "--tokens: token id " + std::to_string(id) + " is out of range (ids are >= 0)");
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
  eo.kv_type = parse_kv_type(o.model.kv_type);
  eo.bf16_dot = kernels::parse_bf16_dot(o.model.bf16_dot.c_str());
  eo.max_sequences = std::max<int64_t>(cfg.num_beams, cfg.num_return_sequences) * 2 + 1;
  Engine engine(m.model, eo);

  // The draft model (if any) runs in its own engine with one KV sequence per
  // generated sequence.
  std::unique_ptr<Engine> draft_engine;
  LoadedModel draft;
  if (o.speculative == "lookup") {
    req.speculative.mode = SpeculativeOptions::Mode::Lookup;
  } else if (o.speculative == "draft") {
    check(!o.draft_model.empty() || !o.draft_quantize.empty(),
          "--speculative draft needs --draft-model (or --draft-quantize for a re-quantized copy "
          "of the target)");
    ModelOptions dm = o.model;
    if (!o.draft_model.empty()) dm.model = o.draft_model;
    dm.quantize = o.draft_quantize;
    draft = load_model(dm);
    EngineOptions deo = eo;
    deo.context_length = engine.context_length();
    draft_engine = std::make_unique<Engine>(draft.model, deo);
    req.speculative.mode = SpeculativeOptions::Mode::Draft;
    req.speculative.draft_engine = draft_engine.get();
  } else {
    check(o.speculative.empty(), "--speculative must be lookup or draft, got '" + o.speculative + "'");
  }
  req.speculative.draft_max = o.draft_max;
  req.speculative.ngram = o.ngram;

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
  const DType wtype = m.model->weight_type();
  cost::MachinePeaks peaks = cost::cached_or_default_peaks();
  if (wtype == DType::BF16 && kernels::bf16dot_enabled(eo.bf16_dot))
    peaks = cost::with_bf16_dot_peak(peaks);
  const PhasePerf prefill_perf = measured(res.prefill, peaks, wtype, eo.threads);
  const PhasePerf decode_perf = measured(res.decode, peaks, wtype, eo.threads);

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
        seqs.push_back({{"tokens", s.tokens},
                        {"text", s.text},
                        {"score", s.score},
                        {"stop_reason", s.stop_reason}});
      out["sequences"] = seqs;
    }
    out["sampler_chain"] = res.chain;
    if (req.speculative.mode != SpeculativeOptions::Mode::Off) out["speculative"] = spec_json(res);
    out["kv_peak_bytes"] = res.kv_peak_blocks * res.kv_bytes_per_block;
    out["timings"] = {{"prefill", phase_json(res.prefill, prefill_perf)},
                      {"decode", phase_json(res.decode, decode_perf)},
                      {"peaks",
                       {{"source", peaks.source},
                        {"flops_per_second", cost::peak_flops(peaks, wtype, eo.threads)},
                        {"bytes_per_second", cost::peak_bandwidth(peaks, eo.threads)},
                        {"weight_dtype", dtype_info(wtype).name},
                        {"threads", eo.threads}}}};
    if (o.trace) {
      nlohmann::json traces = nlohmann::json::array();
      for (const SequenceResult& s : res.sequences) {
        nlohmann::json steps = nlohmann::json::array();
        for (const auto& st : s.trace.steps) {
          nlohmann::json recs = nlohmann::json::array();
          for (const auto& r : st.records) {
            nlohmann::json top = nlohmann::json::array();
            for (const auto& c : r.top)
              top.push_back({{"id", c.id}, {"logit", c.logit}, {"prob", c.prob}});
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
    std::fflush(stdout);  // the summary goes to stderr; keep it after the text
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
  std::fprintf(stderr, "%s\n", phase_line("prefill", "prompt tok", prefill_perf).c_str());
  std::fprintf(stderr, "%s\n", phase_line("decode", "new tok", decode_perf).c_str());
  std::fprintf(stderr, "%s\n", peaks_line(peaks, wtype, eo.threads).c_str());
  if (req.speculative.mode != SpeculativeOptions::Mode::Off) {
    const nlohmann::json j = spec_json(res);
    std::fprintf(stderr,
                 "speculative %s: drafted %lld, accepted %lld (%.1f %%), %.2f tokens per forward\n",
                 o.speculative.c_str(), static_cast<long long>(res.speculative.drafted),
                 static_cast<long long>(res.speculative.accepted),
                 100.0 * j["acceptance_rate"].get<double>(), j["tokens_per_forward"].get<double>());
  }
  return 0;
}

}  // namespace

Command add_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateOpts>();
  CLI::App* sub = app.add_subcommand("generate", "generate text from a prompt");
  o->model.add_to(sub);
  o->model.add_kv_type_to(sub);
  sub->add_option("-p,--prompt", o->prompt, "prompt text (default: \"Once upon a time\")");
  sub->add_option("--tokens", o->tokens, "prompt as comma-separated token ids, used as given");
  sub->add_flag("--no-kv-cache", o->no_kv_cache, "recompute the whole sequence every step");
  sub->add_flag("--json", o->json, "print one JSON object instead of streaming text");
  sub->add_flag("--trace", o->trace, "record what each logits processor kept at each step");
  sub->add_option("--speculative", o->speculative,
                  "exact speculative decoding: lookup (prompt n-grams) or draft (a draft model); "
                  "the output is the same as without it");
  sub->add_option("--draft-model", o->draft_model, "draft model file (same vocabulary)");
  sub->add_option("--draft-quantize", o->draft_quantize,
                  "convert the draft model's matrices at load (q4_0, q8_0 …); without "
                  "--draft-model, a re-quantized copy of the target (self-speculation)");
  sub->add_option("--draft-max", o->draft_max, "most tokens drafted per step (default 8)")
      ->check(CLI::Range(1, 64));
  sub->add_option("--ngram", o->ngram, "lookup: longest n-gram matched (default 3)")
      ->check(CLI::Range(1, 64));
  o->gen.add_to(sub);
  return {sub, [o] { return run_generate(*o); }};
}

}  // namespace nucleus::cli
