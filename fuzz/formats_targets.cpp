// Model-file surfaces: GGUF, safetensors, HF checkpoint directories, llama2.c.
#include <filesystem>
#include <memory>

#include "formats/gguf.h"
#include "formats/hf_checkpoint.h"
#include "formats/llama2c.h"
#include "formats/model_file.h"
#include "formats/safetensors.h"
#include "fuzz/targets.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace nucleus::fuzz {

namespace {

// What a front end does with a loaded model file: build the runnable Model
// (every weight typed and checked, quantized ones repacked) and, when the file
// has a vocabulary, a tokenizer that encodes and decodes a little text.
void use_model_file(std::shared_ptr<ModelFile> file) {
  for (const auto& [key, value] : file->metadata) (void)key.size(), (void)value.size();
  if (!file->vocab.empty()) {
    auto tok = make_tokenizer(file->vocab);
    const std::vector<int32_t> ids = tok->encode("Hello world, 123 héllo!", true);
    (void)tok->decode(ids);
  }
  if (!file->tensors.empty()) Model model(file);
}

}  // namespace

void gguf(Input in) {
  try {
    GgufFile g("fuzz.gguf", in);
    for (const auto& [key, value] : g.metadata()) (void)value.to_string();
    (void)gguf_vocab(g);
    use_model_file(std::make_shared<ModelFile>(gguf_model(g)));
  } catch (const Error&) {
  }
}

void safetensors(Input in) {
  const std::string path = scratch_dir() + "/fuzz.safetensors";
  write_file(path, std::string_view(reinterpret_cast<const char*>(in.data()), in.size()));
  try {
    SafetensorsFile st = read_safetensors(path);
    for (const auto& [name, t] : st.tensors) {
      // Touch the first and last byte: the reader promised they are in the file.
      if (t.nbytes > 0) {
        volatile uint8_t sink = t.data[0];
        sink = t.data[t.nbytes - 1];
        (void)sink;
      }
    }
  } catch (const Error&) {
  }
}

void hf_checkpoint(Input in) {
  const std::vector<std::string> parts = split_parts(in, 2);
  const std::string dir = scratch_dir() + "/hf";
  std::filesystem::create_directories(dir);
  write_file(dir + "/config.json", parts[0]);
  write_file(dir + "/model.safetensors", parts[1]);
  try {
    use_model_file(std::make_shared<ModelFile>(load_hf_checkpoint(dir)));
  } catch (const Error&) {
  }
}

void llama2c(Input in) {
  const std::vector<std::string> parts = split_parts(in, 2);
  const std::string model = scratch_dir() + "/model.bin";
  const std::string tokenizer = scratch_dir() + "/tokenizer.bin";
  write_file(model, parts[0]);
  write_file(tokenizer, parts[1]);
  try {
    use_model_file(std::make_shared<ModelFile>(read_llama2c(model, tokenizer)));
  } catch (const Error&) {
  }
  try {
    (void)read_llama2c_vocab(tokenizer, -1);
  } catch (const Error&) {
  }
}

}  // namespace nucleus::fuzz
