#pragma once
// The HTTP API of `nucleus serve` (OpenAI-compatible): routes, API key,
// limits, SSE streaming, client-disconnect cancellation. It only translates
// between HTTP/JSON and serve::Service; every generation decision lives below.
//
//   POST /v1/completions, /v1/chat/completions   (stream: SSE, "data: [DONE]")
//   GET  /v1/models, /v1/models/{id}
//   GET  /health    200 ready, 503 loading or draining (never needs the key)
//   GET  /metrics   Prometheus text
//   POST /tokenize, /detokenize
#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "serve/service.h"
#include "server/json_body.h"
#include "server/openai_request.h"

namespace nucleus::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;      // 0: any free port (see HttpServer::port())
  std::string api_key;  // empty: no authentication
  BodyLimits body;
  RequestLimits request;
  size_t max_connections = 1024;  // threads serving connections at once
  int keep_alive_timeout_s = 5;
  size_t keep_alive_max = 1000;  // requests per connection
  int io_timeout_s = 60;         // socket read/write
  int retry_after_s = 1;         // Retry-After of a 429
};

// What a loaded model gives the endpoints. Must outlive the server's use of it.
struct Backend {
  serve::Service* service = nullptr;
  ModelInfo model;
  std::string fingerprint;  // system_fingerprint
  int64_t created = 0;      // model "created" time (Unix seconds)
};

class HttpServer {
 public:
  explicit HttpServer(ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port; throws nucleus::Error when it cannot. Returns the port.
  int bind();
  int port() const { return port_; }
  // Serves on a background thread until stop(). Until set_backend(), every
  // endpoint but /health answers 503 (loading).
  void start();
  void set_backend(const Backend* backend) { backend_.store(backend); }
  // Stops accepting and waits for the open connections to finish.
  void stop();

 private:
  void routes();
  const Backend& ready() const;  // throws ApiError 503 unless ready
  void generate(const httplib::Request& req, httplib::Response& res, Endpoint ep);
  uint64_t next_seed();
  std::string next_id(const char* prefix);

  ServerOptions opts_;
  httplib::Server svr_;
  std::atomic<const Backend*> backend_{nullptr};
  std::thread thread_;
  int port_ = -1;
  std::atomic<uint64_t> counter_{0};
  uint64_t salt_ = 0;
};

}  // namespace nucleus::server
