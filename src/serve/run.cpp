// generate(): one request run to the end through the same scheduler that
// serves many — the CLI (generate, chat) and the server share one loop.
#include <limits>

#include "generate/generator.h"
#include "generate/job.h"
#include "serve/scheduler.h"
#include "util/error.h"

namespace nucleus {

GenerateResult generate(Engine& engine, const Tokenizer* tokenizer, const GenerateRequest& request,
                        const StreamCallback& stream) {
  GenerateRequest req = request;
  prepare_request(engine, tokenizer, req);
  serve::SchedulerOptions opts;
  opts.max_running = 1;
  // Alone, the prompt runs in one pass (chunks would give the same bits, only slower).
  opts.step_tokens = std::numeric_limits<int32_t>::max();
  opts.prefix_cache = false;  // nothing to share with
  serve::Scheduler sched(engine, tokenizer, opts);
  JobTokenSink sink;
  if (stream) {
    sink = [&stream](const JobToken& t) {
      if (!t.text.empty()) stream(t.index, std::string(t.text));
    };
  }
  GenerateResult out;
  std::string error;
  serve::RequestCallbacks cb;
  cb.on_done = [&out](GenerateResult&& r) { out = std::move(r); };
  cb.on_error = [&error](const std::string& msg) { error = msg; };
  sched.add_job(make_job(JobContext{&engine, nullptr}, tokenizer, req, std::move(sink)),
                std::move(cb));
  while (!sched.idle()) sched.step();
  if (!error.empty()) throw Error(error);
  return out;
}

}  // namespace nucleus
