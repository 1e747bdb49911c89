// Login sessions: the session token (a Bearer header or the hut_session
// cookie), what a request's session names, opening and closing one, and the
// guard that keeps other sites from using the cookie (forgery_refusal).
//
// Routes: POST and DELETE /api/v1/sessions.
// Threads: pool threads. The database keeps only a SHA-256 of each token.
#ifndef HUTOPIA_RELAY_SESSIONS_H_
#define HUTOPIA_RELAY_SESSIONS_H_

#include <optional>
#include <string>

#include "net/server.h"
#include "relay/answers.h"
#include "relay/relay_state.h"
#include "relay/rules.h"

namespace hut::relay {

struct User;

// The session token of a request: the Bearer header, else the cookie; "".
std::string session_token(const Request& req);
// The user of the request's live session; false when none. `hash_out`
// (when given) gets the stored hash of the token.
bool authenticate(Call& call, User* user, std::string* hash_out);
// Opens a session for `u`: a new random token and its expiry (Unix ms).
Outcome new_session(Call& call, const User& u, std::string* token, int64_t* expires_ms);
// The Set-Cookie value that hands `token` to a browser (Secure when the
// issuer is https://).
std::string session_cookie(const Call& call, const std::string& token);
// Whether `origin` (an Origin header) is the relay's own: the issuer's
// scheme, host and port.
bool same_origin(const std::string& origin, const std::string& issuer);
// A state-changing call under /api/v1/ that a page of another origin could
// have made a browser send with the user's cookie gets a refusal; nullopt
// when the call may go on (see docs/relay.md, "Cross-site requests").
std::optional<net::HttpResponse> forgery_refusal(const Request& req, const std::string& issuer);

// The 400 answer when the call's body does not parse as a Body; nullopt
// with `body` filled when it does.
template <class Body>
std::optional<net::HttpResponse> body_refusal(const Call& call, Body* body) {
  BodyError bad;
  if (parse_body(call.req.body, body, &bad)) return std::nullopt;
  return error(400, bad.code.c_str(), bad.message);
}
// The answer that refuses a call needing a session and a Body: 401 without a
// live session, 400 for a bad body; nullopt with both filled.
template <class Body>
std::optional<net::HttpResponse> signed_in_refusal(Call& call, User* user, Body* body) {
  if (!authenticate(call, user, nullptr)) return unauthenticated();
  return body_refusal(call, body);
}

}  // namespace hut::relay

#endif  // HUTOPIA_RELAY_SESSIONS_H_
