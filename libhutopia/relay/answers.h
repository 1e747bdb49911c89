// The answers the relay's handlers build: JSON errors ({"error":{"code",
// "message"}}), JSON bodies, the HTML of the login pages, and the outcome of
// a step shared by the JSON API and the login page (Outcome).
// Thread safety: pure functions; any thread.
#ifndef HUTOPIA_RELAY_ANSWERS_H_
#define HUTOPIA_RELAY_ANSWERS_H_

#include <cstdint>
#include <string>

#include "net/server.h"

namespace hut::relay {

net::HttpResponse json_response(int status, std::string body);
net::HttpResponse error(int status, const char* code, const std::string& message);
// 500, with `what` in the log and not in the answer.
net::HttpResponse internal_error(const std::string& what);
// 401 with WWW-Authenticate: Bearer.
net::HttpResponse unauthenticated();
// A page of the relay (no-store, no framing, inline style only).
net::HttpResponse html_response(int status, std::string body);
// Adds Retry-After when wait_ms > 0.
net::HttpResponse with_retry_after(net::HttpResponse r, int64_t wait_ms);

// The outcome of a step: status 0 when it was done, else the error.
struct Outcome {
  int status = 0;
  std::string code;
  std::string message;
  int64_t retry_ms = 0;  // for 429: when to try again
  bool ok() const { return status == 0; }
};
Outcome fail(int status, const char* code, std::string message);
// 429 "<what>; try again in N seconds".
Outcome too_many(const char* code, const std::string& what, int64_t wait_ms);
// The outcome as a JSON error.
net::HttpResponse as_error(const Outcome& o);

}  // namespace hut::relay

#endif  // HUTOPIA_RELAY_ANSWERS_H_
