// The one table from errors to the wire: the codes of the bus's error frames
// (contract section 2) and of the HTTP APIs' {"error":{"code","message"}}
// bodies (sections 4 and 5), the HTTP status each code answers with, and the
// code a Status becomes.
//
// Thread: pure functions; any thread.
#ifndef HUTOPIA_UTIL_WIRE_ERROR_H_
#define HUTOPIA_UTIL_WIRE_ERROR_H_

#include <hutopia/status.h>

#include <optional>
#include <string>
#include <string_view>

namespace hut {

enum class WireError {
  kBadRequest,       // 400
  kUnauthenticated,  // 401
  kForbidden,        // 403
  kNotFound,         // 404
  kConflict,         // 409
  kMuted,            // 403
  kRateLimited,      // 429
  kTooLarge,         // 413
  kUnavailable,      // 503
  kInternal,         // 500
  kUnprocessable,    // 422 (HTTP only)
};

std::string_view wire_error_name(WireError code);
// nullopt for a name that is no code.
std::optional<WireError> wire_error_from_name(std::string_view name);
int wire_error_http_status(WireError code);
// The failed Status an in-process caller gets for the code: bad request and
// unprocessable are invalid argument, forbidden and muted permission denied,
// conflict already exists, rate limited and too large resource exhausted,
// and the others their namesakes.
Status wire_error_status(WireError code, std::string_view message);

// The code a failed Status answers with: not found, conflict (already
// exists), forbidden (permission denied), bad request (invalid argument),
// too large (a limit reached), unavailable (failed precondition, try later);
// anything else is internal.
WireError wire_error_of(const Status& status);
// The code a plugin hook's negative HUT_E* result (<hutopia/plugin.h>)
// answers with, the same way.
WireError wire_error_of_plugin(int rc);

// {"error":{"code":code,"message":message}}, the HTTP APIs' error body.
std::string http_error_body(std::string_view code, std::string_view message);
inline std::string http_error_body(WireError code, std::string_view message) {
  return http_error_body(wire_error_name(code), message);
}

}  // namespace hut

#endif  // HUTOPIA_UTIL_WIRE_ERROR_H_
