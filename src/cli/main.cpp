#include <cstdio>
#include <exception>
#include <vector>

#include "cli/command.h"
#include "util/error.h"

int main(int argc, char** argv) {
  using namespace nucleus::cli;
  CLI::App app{"nucleus: LLaMA-family inference engine"};
  app.require_subcommand(1);
  std::vector<Command> commands = {
      add_generate(app), add_logits(app), add_tokenize(app), add_detokenize(app),
      add_info(app),     add_cost(app),   add_bench(app),    add_convert(app),
      add_quantize(app), add_chat(app),   add_serve(app),
  };
  CLI11_PARSE(app, argc, argv);
  for (Command& c : commands) {
    if (!c.app->parsed()) continue;
    try {
      return c.run();
    } catch (const nucleus::Error& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "error: out of memory\n");
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;
    }
  }
  return 1;
}
