#pragma once
// Every `nucleus` subcommand lives in its own file and exposes one add_*
// function that registers its options and returns how to run it.
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace nucleus::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;  // returns the process exit code; may throw nucleus::Error
};

// Options shared by the commands that load a model.
struct ModelOptions {
  std::string model;            // empty = the bundled stories260K
  std::string tokenizer;        // llama2.c tokenizer.bin; empty = beside the model
  int threads = 0;              // 0 = all hardware threads
  std::string quantize;         // convert matrices at load time: q8_0, q4_0, f16, bf16
  std::string kv_type = "f32";  // KV cache element type (commands that run the engine)
  // BF16 weights' reduction definition: auto, on, off (kernels/matmul_bf16dot.h).
  std::string bf16_dot = "auto";

  void add_to(CLI::App* app);
  // --kv-type and --bf16-dot, for the commands that build an Engine.
  void add_kv_type_to(CLI::App* app);
  std::string model_path() const;  // resolves the default
  int thread_count() const;
};

Command add_generate(CLI::App& app);
Command add_logits(CLI::App& app);
Command add_tokenize(CLI::App& app);
Command add_detokenize(CLI::App& app);
Command add_info(CLI::App& app);
Command add_cost(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_convert(CLI::App& app);
Command add_quantize(CLI::App& app);
Command add_chat(CLI::App& app);
Command add_serve(CLI::App& app);

}  // namespace nucleus::cli
