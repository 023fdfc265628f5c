#pragma once
// What several commands share: loading a model with its tokenizer, parsing
// id lists, printing JSON.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "formats/model_file.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace nucleus::cli {

struct LoadedModel {
  std::shared_ptr<const ModelFile> file;
  std::shared_ptr<const Model> model;
  std::unique_ptr<Tokenizer> tokenizer;  // null when the file has no vocabulary

  const Tokenizer& need_tokenizer() const;
};

// What to load: the vocabulary only (tokenize/detokenize, vocabulary-only
// files), the whole file without building a runnable Model (info: no
// repacking), or everything.
enum class LoadDepth { kVocab, kFile, kModel };
LoadedModel load_model(const ModelOptions& opts, LoadDepth depth = LoadDepth::kModel);

// The weight type of the layer matrices (files often keep the embedding or
// lm_head in another type); the largest matrix's type when there is no layer 0.
DType layer_weight_type(const ModelFile& file);

// One stderr line after writing a model file: path, size, type, seconds since t0.
void report_written(const std::string& path, DType type, std::chrono::steady_clock::time_point t0);

// "1,403,407" -> ids; throws Error on anything that is not a list of integers.
std::vector<int32_t> parse_ids(const std::string& text);

}  // namespace nucleus::cli
