#include "relay/answers.h"

#include <cjson/cJSON.h>

#include "relay/limits.h"
#include "token/json.h"
#include "util/log.h"

namespace hut::relay {

net::HttpResponse json_response(int status, std::string body) {
  net::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

net::HttpResponse error(int status, const char* code, const std::string& message) {
  token_json::JsonPtr root(cJSON_CreateObject());
  cJSON* e = cJSON_AddObjectToObject(root.get(), "error");
  cJSON_AddStringToObject(e, "code", code);
  cJSON_AddStringToObject(e, "message", message.c_str());
  return json_response(status, token_json::print(root.get()));
}

net::HttpResponse internal_error(const std::string& what) {
  log_printf(LogLevel::kError, "relay", "%s", what.c_str());
  return error(500, "internal", "the relay could not complete the request");
}

net::HttpResponse unauthenticated() {
  net::HttpResponse r = error(401, "unauthenticated", "a valid session is required (Authorization: Bearer)");
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

net::HttpResponse html_response(int status, std::string body) {
  net::HttpResponse r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(body);
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
  // Not no-referrer: under it browsers send "Origin: null" with the page's own
  // form POST, which the login CSRF check must refuse.
  r.headers.emplace_back("Referrer-Policy", "same-origin");
  return r;
}

net::HttpResponse with_retry_after(net::HttpResponse r, int64_t wait_ms) {
  if (wait_ms > 0) r.headers.emplace_back("Retry-After", std::to_string(retry_after_seconds(wait_ms)));
  return r;
}

Outcome fail(int status, const char* code, std::string message) {
  return Outcome{status, code, std::move(message), 0};
}

Outcome too_many(const char* code, const std::string& what, int64_t wait_ms) {
  return Outcome{429, code,
                 what + "; try again in " + std::to_string(retry_after_seconds(wait_ms)) + " seconds",
                 wait_ms};
}

net::HttpResponse as_error(const Outcome& o) {
  return with_retry_after(error(o.status, o.code.c_str(), o.message), o.retry_ms);
}

}  // namespace hut::relay
