#include "server/http_server.h"
#include "server/listen_backlog.h"

#include <chrono>
#include <random>

#include "serve/metrics.h"
#include "server/api_error.h"
#include "server/auth.h"
#include "server/connection_queue.h"
#include "server/openai_response.h"
#include "server/peer_socket.h"
#include "util/error.h"

namespace nucleus::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr auto kPoll = std::chrono::milliseconds(50);

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e, int retry_after_s) {
  if (e.status == 429) res.set_header("Retry-After", std::to_string(retry_after_s));
  if (e.status == 401) res.set_header("WWW-Authenticate", "Bearer");
  send_json(res, e.status, e.to_json());
}

uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Polls the client's socket at most every kPoll, however fast events come.
struct PeerWatch {
  int fd = -1;
  Clock::time_point next{};
  bool gone() {
    const auto now = Clock::now();
    if (fd < 0 || now < next) return false;
    next = now + kPoll;
    return peer_closed(fd);
  }
};

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

HttpServer::HttpServer(ServerOptions options) : opts_(std::move(options)) {
  std::random_device rd;
  salt_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  const size_t cap = opts_.max_connections;
  svr_.new_task_queue = [cap] { return new ConnectionQueue(cap); };
  svr_.set_keep_alive_timeout(opts_.keep_alive_timeout_s);
  svr_.set_keep_alive_max_count(opts_.keep_alive_max);
  svr_.set_read_timeout(opts_.io_timeout_s);
  svr_.set_write_timeout(opts_.io_timeout_s);
  svr_.set_payload_max_length(opts_.body.max_bytes);
  routes();
}

HttpServer::~HttpServer() {
  stop();
}

int HttpServer::bind() {
  if (opts_.port == 0) {
    port_ = svr_.bind_to_any_port(opts_.host);
  } else {
    port_ = svr_.bind_to_port(opts_.host, opts_.port) ? opts_.port : -1;
  }
  check(port_ > 0, "cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) +
                       " (address in use, or not an address of this machine)");
  raise_listen_backlog(port_);
  return port_;
}

void HttpServer::start() {
  thread_ = std::thread([this] { svr_.listen_after_bind(); });
}

void HttpServer::stop() {
  if (!thread_.joinable()) return;
  svr_.stop();
  thread_.join();
}

uint64_t HttpServer::next_seed() {
  return splitmix(salt_ ^ splitmix(counter_.fetch_add(1)));
}

std::string HttpServer::next_id(const char* prefix) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s-%016llx", prefix,
                static_cast<unsigned long long>(next_seed()));
  return buf;
}

const Backend& HttpServer::ready() const {
  const Backend* b = backend_.load();
  if (b == nullptr) throw ApiError(503, "the model is still loading", "", "loading");
  return *b;
}

void HttpServer::routes() {
  const int retry = opts_.retry_after_s;
  // Every handler answers errors in OpenAI's shape, whatever was thrown.
  auto wrap = [retry](auto f) {
    return [f, retry](const httplib::Request& req, httplib::Response& res) {
      try {
        f(req, res);
      } catch (const ApiError& e) {
        send_error(res, e, retry);
      } catch (const Error& e) {
        send_error(res, ApiError(422, e.what(), "", "invalid_value"), retry);
      } catch (const std::bad_alloc&) {
        send_error(res, ApiError(500, "out of memory"), retry);
      } catch (const std::exception& e) {
        send_error(res, ApiError(500, std::string("internal error: ") + e.what()), retry);
      }
    };
  };

  svr_.set_pre_routing_handler([this, retry](const httplib::Request& req, httplib::Response& res) {
    if (opts_.api_key.empty() || req.path == "/health")
      return httplib::Server::HandlerResponse::Unhandled;
    if (bearer_matches(req.get_header_value("Authorization"), opts_.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res,
               ApiError(401, "missing or incorrect API key (send 'Authorization: Bearer KEY')", "",
                        "invalid_api_key"),
               retry);
    return httplib::Server::HandlerResponse::Handled;
  });
  // Statuses httplib sets itself (no route, body too large, bad request
  // line) still get a JSON error body.
  svr_.set_error_handler(httplib::Server::HandlerWithResponse(
      [retry](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string msg = "bad request";
        if (res.status == 404) msg = "no such endpoint: " + req.method + " " + req.path;
        if (res.status == 413) msg = "request body exceeds the size limit";
        if (res.status == 405) msg = "method not allowed: " + req.method + " " + req.path;
        send_error(res, ApiError(res.status, msg), retry);
        return httplib::Server::HandlerResponse::Handled;
      }));
  svr_.set_exception_handler(
      [retry](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        send_error(res, ApiError(500, "internal error"), retry);
      });

  svr_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const Backend* b = backend_.load();
    if (b == nullptr) return send_json(res, 503, {{"status", "loading"}});
    if (b->service->draining()) return send_json(res, 503, {{"status", "draining"}});
    send_json(res, 200, {{"status", "ok"}});
  });
  auto model_entry = [](const Backend& b) {
    return json{{"id", b.model.id},
                {"object", "model"},
                {"created", b.created},
                {"owned_by", "nucleus"},
                {"max_model_len", b.model.context_length}};
  };
  svr_.Get("/v1/models", wrap([this, model_entry](const httplib::Request&, httplib::Response& res) {
             send_json(res, 200, {{"object", "list"}, {"data", {model_entry(ready())}}});
           }));
  svr_.Get(R"(/v1/models/(.+))",
           wrap([this, model_entry](const httplib::Request& req, httplib::Response& res) {
             const Backend& b = ready();
             if (req.matches[1] != b.model.id)
               throw ApiError(404,
                              "the model '" + short_dump(json(std::string(req.matches[1]))) +
                                  "' does not exist",
                              "model", "model_not_found");
             send_json(res, 200, model_entry(b));
           }));
  svr_.Get("/metrics", wrap([this](const httplib::Request&, httplib::Response& res) {
             res.set_content(serve::to_prometheus(ready().service->metrics()),
                             "text/plain; version=0.0.4; charset=utf-8");
           }));
  svr_.Post("/tokenize", wrap([this](const httplib::Request& req, httplib::Response& res) {
              const Backend& b = ready();
              send_json(res, 200, tokenize_request(parse_json_body(req.body, opts_.body), b.model));
            }));
  svr_.Post("/detokenize", wrap([this](const httplib::Request& req, httplib::Response& res) {
              const Backend& b = ready();
              send_json(res, 200,
                        detokenize_request(parse_json_body(req.body, opts_.body), b.model));
            }));
  svr_.Post("/v1/completions", wrap([this](const httplib::Request& req, httplib::Response& res) {
              generate(req, res, Endpoint::Completions);
            }));
  svr_.Post("/v1/chat/completions",
            wrap([this](const httplib::Request& req, httplib::Response& res) {
              generate(req, res, Endpoint::Chat);
            }));
}

void HttpServer::generate(const httplib::Request& req, httplib::Response& res, Endpoint ep) {
  const Backend& b = ready();
  const json body = parse_json_body(req.body, opts_.body);
  const ParsedRequest pr =
      ep == Endpoint::Chat ? parse_chat_request(body, b.model, opts_.request, next_seed())
                           : parse_completion_request(body, b.model, opts_.request, next_seed());
  std::shared_ptr<serve::RequestHandle> handle;
  try {
    handle = b.service->submit(pr.options);
  } catch (const Error& e) {
    throw ApiError(422, e.what(), "", "invalid_value");
  }
  if (!handle) {
    if (b.service->draining()) throw ApiError(503, "the server is shutting down", "", "draining");
    throw ApiError(429, "too many requests are waiting; retry later", "", "queue_full");
  }
  ResponseContext ctx;
  ctx.id = next_id(ep == Endpoint::Chat ? "chatcmpl" : "cmpl");
  ctx.model = b.model.id;
  ctx.created = unix_now();
  ctx.fingerprint = b.fingerprint;
  ctx.tokenizer = b.model.tokenizer;
  auto builder = std::make_shared<ResponseBuilder>(pr, ctx);
  // The connection's socket, to notice a client that leaves while nothing
  // is being written (queued, prefilling, or a non-streaming request).
  PeerWatch watch{find_request_socket(req)};

  if (!pr.stream) {
    serve::Event ev;
    for (;;) {
      const bool got = handle->next(ev, kPoll);
      if (watch.gone()) {
        handle->cancel();
        res.status = 499;  // nobody reads it; nginx's "client closed request"
        return;
      }
      if (!got) continue;
      if (ev.kind == serve::Event::Kind::Token) {
        builder->on_token(ev.token);
      } else if (ev.kind == serve::Event::Kind::Done) {
        return send_json(res, 200, builder->body(ev.result));
      } else {
        throw ApiError(500, "generation failed: " + ev.error, "", "generation_failed");
      }
    }
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [handle, builder, watch](size_t, httplib::DataSink& sink) mutable {
        auto send = [&](const json& j) {
          const std::string line = "data: " + dump(j) + "\n\n";
          return sink.write(line.data(), line.size());
        };
        serve::Event ev;
        for (;;) {
          const bool got = handle->next(ev, kPoll);
          if (watch.gone()) {
            handle->cancel();
            return false;
          }
          if (!got) continue;
          bool ok = true;
          if (ev.kind == serve::Event::Kind::Token) {
            for (const json& c : builder->on_token(ev.token)) ok = ok && send(c);
          } else {
            if (ev.kind == serve::Event::Kind::Done) {
              for (const json& c : builder->done_chunks(ev.result)) ok = ok && send(c);
            } else {
              ok = send(ApiError(500, "generation failed: " + ev.error, "", "generation_failed")
                            .to_json());
            }
            static const char kDone[] = "data: [DONE]\n\n";
            ok = ok && sink.write(kDone, sizeof kDone - 1);
            if (ok) sink.done();
            return ok;
          }
          if (!ok) {  // the client went away mid-stream
            handle->cancel();
            return false;
          }
        }
      },
      [handle](bool success) {
        if (!success) handle->cancel();
      });
}

}  // namespace nucleus::server
