#pragma once
// The one error type of the HTTP API: an HTTP status plus OpenAI's error
// object {"error": {"message", "type", "param", "code"}}.
//
// Statuses: 400 the body is not a well-formed request (bad JSON, not UTF-8,
// nested too deep, a field of the wrong type); 401 missing or wrong API key;
// 404 unknown model or route; 413 body over the size limit; 422 well-formed
// but a value is refused (out of range, beyond the context, above a cap,
// unsupported); 429 the waiting queue is full; 503 loading or draining.
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace nucleus::server {

struct ApiError : std::runtime_error {
  int status;
  std::string type;   // "invalid_request_error", "authentication_error", ...
  std::string param;  // the offending request field, "" when none
  std::string code;   // machine-readable reason, "" when none

  ApiError(int status_, std::string message, std::string param_ = "", std::string code_ = "",
           std::string type_ = "")
      : std::runtime_error(std::move(message)),
        status(status_),
        type(type_.empty() ? default_type(status_) : std::move(type_)),
        param(std::move(param_)),
        code(std::move(code_)) {}

  static std::string default_type(int status) {
    switch (status) {
      case 401:
        return "authentication_error";
      case 404:
        return "not_found_error";
      case 429:
        return "rate_limit_error";
      case 503:
        return "service_unavailable_error";
      default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
  }

  nlohmann::json to_json() const {
    auto opt = [](const std::string& s) {
      return s.empty() ? nlohmann::json() : nlohmann::json(s);
    };
    return {{"error",
             {{"message", what()}, {"type", type}, {"param", opt(param)}, {"code", opt(code)}}}};
  }
};

}  // namespace nucleus::server
