#include "generate/generator.h"

#include <algorithm>
#include <chrono>

#include "generate/beam_search.h"
#include "generate/text_stream.h"
#include "sampling/math.h"
#include "sampling/select.h"
#include "util/error.h"

namespace nucleus {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct LiveSequence {
  int32_t kv = -1;
  std::vector<int32_t> ids;  // prompt + generated
  bool done = false;
  SequenceResult result;
  std::unique_ptr<TextStream> text;
};

}  // namespace

void prepare_request(const Engine& engine, const Tokenizer* tokenizer, GenerateRequest& req) {
  sampling::GenerationConfig& cfg = req.config;
  cfg.validate();
  check(!req.prompt.empty(), "empty prompt: give at least one token");
  for (int32_t id : req.prompt)
    check(id >= 0 && id < engine.vocab_size(), "prompt token id " + std::to_string(id) +
                                                   " is out of range [0, " +
                                                   std::to_string(engine.vocab_size()) + ")");
  const int64_t room = engine.context_length() - static_cast<int64_t>(req.prompt.size());
  check(room > 0, "the prompt (" + std::to_string(req.prompt.size()) +
                      " tokens) fills the context length of " +
                      std::to_string(engine.context_length()));
  if (!cfg.max_new_tokens) cfg.max_new_tokens = room;
  check(*cfg.max_new_tokens > 0,
        "max_new_tokens must be positive, got " + std::to_string(*cfg.max_new_tokens));
  cfg.max_new_tokens = std::min(*cfg.max_new_tokens, room);
  // EOS: the request's, else the checkpoint config's, else the vocabulary's.
  if (cfg.eos_token_ids.empty()) cfg.eos_token_ids = engine.config().eos_ids;
  if (cfg.eos_token_ids.empty() && engine.model().vocab().eos_id >= 0)
    cfg.eos_token_ids.push_back(engine.model().vocab().eos_id);
  if (cfg.eos_token_ids.empty() && tokenizer != nullptr && tokenizer->eos_id() >= 0)
    cfg.eos_token_ids.push_back(tokenizer->eos_id());
  check(cfg.stop_strings.empty() || tokenizer != nullptr,
        "stop strings need a tokenizer, and this model has none");
  for (const std::string& s : cfg.stop_strings) check(!s.empty(), "stop strings must not be empty");
}

GenerateResult generate(Engine& engine, const Tokenizer* tokenizer, const GenerateRequest& request,
                        const StreamCallback& stream) {
  GenerateRequest req = request;
  prepare_request(engine, tokenizer, req);
  const sampling::GenerationConfig& cfg = req.config;
  if (cfg.num_beams > 1) return beam_search(engine, tokenizer, req);

  const sampling::ProcessorChain chain = sampling::build_chain(cfg);
  const int64_t n_seq = cfg.num_return_sequences;
  check(n_seq == 1 || cfg.sampling(),
        "num_return_sequences > 1 needs sampling (do_sample with temperature > 0) or beams");
  const int64_t vocab = engine.vocab_size();
  const auto deadline_start = Clock::now();
  const int32_t last_prompt = req.prompt.back();

  GenerateResult out;
  out.chain = chain.describe();
  KvCache& kv = engine.kv();
  out.kv_bytes_per_block = kv.memory().bytes_per_block;
  const auto note_peak = [&] {
    out.kv_peak_blocks = std::max(out.kv_peak_blocks, kv.memory().blocks_used);
  };
  std::vector<LiveSequence> seqs(static_cast<size_t>(n_seq));
  for (int64_t i = 0; i < n_seq; ++i) {
    // Room for every token up front, so that decoding appends without allocating.
    seqs[i].ids.reserve(req.prompt.size() + static_cast<size_t>(*cfg.max_new_tokens));
    seqs[i].ids = req.prompt;
    seqs[i].result.tokens.reserve(static_cast<size_t>(*cfg.max_new_tokens));
    seqs[i].text = std::make_unique<TextStream>(tokenizer, last_prompt, cfg.stop_strings);
    seqs[i].result.trace.top_n = 5;
  }

  // Prefill once; the other sequences fork the prompt's blocks.
  std::vector<float> logits;
  engine.reset_counters();
  auto t0 = Clock::now();
  if (req.kv_cache) {
    seqs[0].kv = kv.create();
    engine.prefill(seqs[0].kv, req.prompt, logits);
    for (int64_t i = 1; i < n_seq; ++i) seqs[i].kv = kv.fork(seqs[0].kv);
    note_peak();
  } else {
    const int32_t tmp = kv.create();
    engine.prefill(tmp, req.prompt, logits);
    note_peak();
    kv.release(tmp);
  }
  out.prefill.seconds = seconds_since(t0);
  out.prefill.tokens = static_cast<int64_t>(req.prompt.size());
  out.prefill.counters = engine.counters();
  // Every sequence starts from the same prompt logits.
  std::vector<float> rows(static_cast<size_t>(n_seq * vocab));
  for (int64_t i = 0; i < n_seq; ++i)
    std::copy(logits.begin(), logits.end(), rows.begin() + i * vocab);

  engine.reset_counters();
  t0 = Clock::now();
  // Everything a step needs is allocated here and reused, so that once the
  // first step has warmed the processors' scratch a step allocates nothing
  // (tracing, text and the KV cache's block tables aside).
  std::vector<float> logprobs(static_cast<size_t>(vocab));
  std::vector<float> probs(static_cast<size_t>(vocab));
  sampling::ProcessorScratch scratch;
  Batch batch;
  batch.rows.reserve(static_cast<size_t>(n_seq));
  std::vector<int64_t> row_of(static_cast<size_t>(n_seq));
  for (int64_t step = 0;; ++step) {
    // Choose the next token of every live sequence from its row.
    for (int64_t i = 0; i < n_seq; ++i) {
      LiveSequence& s = seqs[i];
      if (s.done) continue;
      std::span<float> row(rows.data() + row_of[i] * vocab, static_cast<size_t>(vocab));
      sampling::log_softmax(row, logprobs);
      chain.apply(row, sampling::make_view(s.ids, static_cast<int64_t>(req.prompt.size())),
                  scratch, req.trace ? &s.result.trace : nullptr);
      const int32_t tok = cfg.sampling()
                              ? sampling::sample(row, probs, cfg.seed, static_cast<uint64_t>(i),
                                                 static_cast<uint64_t>(step))
                              : sampling::greedy(row);
      s.ids.push_back(tok);
      s.result.tokens.push_back(tok);
      s.result.score += logprobs[static_cast<size_t>(tok)];
      const std::string piece = s.text->push(tok);
      if (!piece.empty() && stream) stream(i, piece);
      if (std::find(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end(), tok) !=
          cfg.eos_token_ids.end()) {
        s.done = true;
        s.result.stop_reason = "eos";
      } else if (s.text->stopped()) {
        s.done = true;
        s.result.stop_reason = "stop";
      } else if (static_cast<int64_t>(s.result.tokens.size()) >= *cfg.max_new_tokens) {
        s.done = true;
        s.result.stop_reason = "length";
      } else if (cfg.max_time && seconds_since(deadline_start) >= *cfg.max_time) {
        s.done = true;
        s.result.stop_reason = "time";
      }
    }
    // One decode row per live sequence (or a full recompute without a cache).
    batch.clear();
    int64_t r = 0;
    for (int64_t i = 0; i < n_seq; ++i) {
      if (seqs[i].done) continue;
      row_of[i] = r++;
      batch.add(seqs[i].kv, seqs[i].ids.back(), true);
    }
    if (batch.rows.empty()) break;
    if (req.kv_cache) {
      engine.forward(batch, rows);
      note_peak();
    } else {
      rows.resize(static_cast<size_t>(r * vocab));
      for (int64_t i = 0; i < n_seq; ++i) {
        if (seqs[i].done) continue;
        const int32_t tmp = kv.create();
        engine.prefill(tmp, seqs[i].ids, logits);
        note_peak();
        kv.release(tmp);
        std::copy(logits.begin(), logits.end(), rows.begin() + row_of[i] * vocab);
      }
    }
  }
  out.decode.seconds = seconds_since(t0);
  out.decode.counters = engine.counters();

  for (int64_t i = 0; i < n_seq; ++i) {
    LiveSequence& s = seqs[i];
    const std::string rest = s.text->finish();
    if (!rest.empty() && stream) stream(i, rest);
    s.result.text = s.text->text();
    out.decode.tokens += static_cast<int64_t>(s.result.tokens.size());
    if (s.kv >= 0) kv.release(s.kv);
    out.sequences.push_back(std::move(s.result));
  }
  // The first token of each sequence came from the prefill's logits.
  out.decode.tokens -= n_seq;
  return out;
}

}  // namespace nucleus
