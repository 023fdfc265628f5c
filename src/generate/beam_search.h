#pragma once
// Beam search with Hugging Face generate() semantics on the shared KV cache:
// beams fork from the prompt's blocks and from each other, so a step costs
// num_beams decode rows and never a copy of the cache.
#include "generate/generator.h"

namespace nucleus {

// Expects a request already validated by generate() (config.num_beams > 1).
GenerateResult beam_search(Engine& engine, const Tokenizer* tokenizer, const GenerateRequest& req);

// Shared by generate() and beam_search(): validates and fills defaults.
void prepare_request(const Engine& engine, const Tokenizer* tokenizer, GenerateRequest& req);

}  // namespace nucleus
