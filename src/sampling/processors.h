#pragma once
// The individual logits processors. Each factory validates its parameters
// (throwing nucleus::Error naming the parameter) and returns one chain unit.
// Semantics follow Hugging Face transformers 4.40 (LogitsProcessor /
// LogitsWarper classes) unless the name says llama.cpp.
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "sampling/processor.h"

namespace nucleus::sampling {

using TokenSeq = std::vector<int32_t>;

// HF SequenceBiasLogitsProcessor: adds bias to the last token of each sequence
// when the sequence's other tokens are the last ids generated so far (single
// tokens: always). Sequences must be non-empty.
std::unique_ptr<LogitsProcessor> make_sequence_bias(std::vector<std::pair<TokenSeq, double>> bias);

// HF RepetitionPenaltyLogitsProcessor over every id in the sequence (prompt
// included), each distinct id once: logit < 0 ? logit * p : logit / p.
std::unique_ptr<LogitsProcessor> make_repetition_penalty(double penalty);

// llama.cpp penalties over the last `last_n` ids (-1: the whole sequence, 0:
// none): repeat penalty as above but on logit <= 0, then
// logit -= count * frequency + (count > 0) * presence.
std::unique_ptr<LogitsProcessor> make_llama_penalties(int64_t last_n, double repeat,
                                                      double frequency, double presence);

// HF NoRepeatNGramLogitsProcessor: bans every token that would complete an
// n-gram already present in the sequence (prompt included).
std::unique_ptr<LogitsProcessor> make_no_repeat_ngram(int64_t n);

// HF NoBadWordsLogitsProcessor: a sequence equal to a single EOS id is dropped
// (as HF does); the rest ban their last token when their prefix matches.
std::unique_ptr<LogitsProcessor> make_bad_words(std::vector<TokenSeq> bad_words,
                                                const TokenSeq& eos_ids);

// HF MinLengthLogitsProcessor: EOS ids -> -inf while total length < min_length.
std::unique_ptr<LogitsProcessor> make_min_length(int64_t min_length, TokenSeq eos_ids);

// HF MinNewTokensLengthLogitsProcessor: EOS ids -> -inf while generated < min_new_tokens.
std::unique_ptr<LogitsProcessor> make_min_new_tokens(int64_t min_new_tokens, TokenSeq eos_ids);

// HF ForcedEOSTokenLogitsProcessor with max_length = prompt + max_new_tokens:
// at the last step every logit is -inf except the EOS ids, which become 0.
std::unique_ptr<LogitsProcessor> make_forced_eos(int64_t max_new_tokens, TokenSeq eos_ids);

// HF SuppressTokensLogitsProcessor.
std::unique_ptr<LogitsProcessor> make_suppress_tokens(TokenSeq ids);

// Parameters are doubles like the Python floats HF receives; each is rounded
// to float32 exactly where torch rounds it (when it meets a float32 tensor).
// Warpers (sampling only). min_keep is min_tokens_to_keep (1; 2 under beams).
std::unique_ptr<LogitsProcessor> make_temperature(double t);
std::unique_ptr<LogitsProcessor> make_top_k(int64_t k, int64_t min_keep);
std::unique_ptr<LogitsProcessor> make_top_p(double p, int64_t min_keep);
std::unique_ptr<LogitsProcessor> make_min_p(double p, int64_t min_keep);
std::unique_ptr<LogitsProcessor> make_typical_p(double p, int64_t min_keep);
std::unique_ptr<LogitsProcessor> make_epsilon_cutoff(double epsilon, int64_t min_keep);
std::unique_ptr<LogitsProcessor> make_eta_cutoff(double epsilon, int64_t min_keep);

}  // namespace nucleus::sampling
