#pragma once
// Drafters for exact speculative decoding: cheap guesses of the next tokens,
// which the target model then verifies in one forward of k+1 rows
// (generate/sample_job.cpp). A guess is kept only where it equals the token
// the target itself chooses at that step — from bit-identical logits (the
// kernels are batch-invariant) with the same counter-based random draw — so
// the output never depends on the drafter, only the speed does.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "runtime/batch.h"

namespace nucleus {
class Engine;
}

namespace nucleus::speculative {

class Drafter {
 public:
  virtual ~Drafter() = default;
  // Proposes up to out.size() tokens to follow `ids` (prompt + generated so
  // far); returns how many it wrote. May propose none.
  virtual int64_t propose(std::span<const int32_t> ids, std::span<int32_t> out) = 0;
};

// Prompt lookup (Hugging Face's prompt_lookup_num_tokens with
// max_matching_ngram_size): for n from max_ngram down to 1, find the earliest
// earlier occurrence of the last n tokens in the sequence and propose the
// tokens that followed it.
class LookupDrafter final : public Drafter {
 public:
  explicit LookupDrafter(int64_t max_ngram);
  int64_t propose(std::span<const int32_t> ids, std::span<int32_t> out) override;

 private:
  int64_t max_ngram_;
};

// A smaller model with the same vocabulary, run greedily through its own
// engine and KV sequence; its cache follows the target's sequence (the
// common prefix is kept, the rest recomputed).
class DraftModelDrafter final : public Drafter {
 public:
  explicit DraftModelDrafter(Engine& draft);
  ~DraftModelDrafter() override;
  DraftModelDrafter(const DraftModelDrafter&) = delete;
  DraftModelDrafter& operator=(const DraftModelDrafter&) = delete;
  int64_t propose(std::span<const int32_t> ids, std::span<int32_t> out) override;

 private:
  Engine& engine_;
  int32_t seq_ = -1;
  std::vector<int32_t> cached_;  // ids whose K/V the draft cache holds
  std::vector<float> logits_;
  Batch batch_;
};

}  // namespace nucleus::speculative
