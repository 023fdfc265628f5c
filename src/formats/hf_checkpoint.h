#pragma once
// Hugging Face checkpoint directories: config.json plus model.safetensors or
// a sharded model.safetensors.index.json. Tensors are renamed to the GGUF
// names of formats/model_file.h and stay views into the mapped shards.
#include <string>

#include "formats/model_file.h"

namespace nucleus {

// Architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM.
// Q/K rows stay in HF's rotate-half order (config.rope_layout = Half).
// The vocabulary is left empty; ModelFile::metadata records
// "hf.tokenizer_json" (and "hf.tokenizer_config_json") when those files exist.
// Throws Error naming the file and field for anything missing or inconsistent.
ModelFile load_hf_checkpoint(const std::string& dir);

// Maps an HF tensor name to its GGUF name; returns "" for names nucleus does
// not know (callers decide whether that is an error).
std::string hf_to_gguf_name(const std::string& hf_name);

// True for the tensors quantize_weights (and the GGUF writer) quantize:
// every 2-D matrix, token_embd and output included, whose rows hold a whole
// number of 32-element blocks. Norms, biases and other 1-D tensors never are.
bool is_quantizable(const TensorView& t);

// Converts the quantizable tensors (see is_quantizable) to type t (Q8_0, Q4_0,
// F16, BF16 or F32) in owned buffers; other tensors keep their type and views.
void quantize_weights(ModelFile& model, DType t);

}  // namespace nucleus
