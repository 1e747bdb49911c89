#include "relay/sessions.h"

#include <openssl/sha.h>

#include "relay/accounts.h"
#include "relay/handlers.h"
#include "relay/rules.h"
#include "token/json.h"
#include "util/random.h"

namespace hut::relay {

namespace {

const char kCookie[] = "hut_session";
// Longer tokens are not looked up (a relay's are 43 characters).
constexpr size_t kMaxTokenSize = 256;

std::string sha256(std::string_view text) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out);
  return std::string(reinterpret_cast<char*>(out), sizeof(out));
}

bool has_bearer(const Request& req) {
  const std::string& a = req.authorization;
  return a.size() > 7 && (a.compare(0, 7, "Bearer ") == 0 || a.compare(0, 7, "bearer ") == 0);
}

// "; Path=/; HttpOnly; SameSite=Lax", and Secure when browsers reach the
// relay over https, so that the cookie never travels in the clear.
std::string cookie_flags(const Call& call) {
  return std::string("; Path=/; HttpOnly; SameSite=Lax") +
         (call.issuer().starts_with("https://") ? "; Secure" : "");
}

// The media type of a Content-Type value: lower case, without parameters.
std::string media_type(std::string_view content_type) {
  std::string out;
  for (char c : content_type.substr(0, content_type.find(';'))) {
    if (c == ' ' || c == '\t') continue;
    out.push_back(static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c));
  }
  return out;
}

}  // namespace

std::string session_token(const Request& req) {
  if (has_bearer(req)) {
    std::string t = req.authorization.substr(7);
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
    return t;
  }
  std::string_view c = req.cookie;
  const std::string prefix = std::string(kCookie) + "=";
  while (!c.empty()) {
    size_t semi = c.find(';');
    std::string_view part = c.substr(0, semi);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.starts_with(prefix)) return std::string(part.substr(prefix.size()));
    if (semi == std::string_view::npos) break;
    c.remove_prefix(semi + 1);
  }
  return {};
}

bool authenticate(Call& call, User* user, std::string* hash_out) {
  std::string tok = session_token(call.req);
  if (tok.empty() || tok.size() > kMaxTokenSize) return false;
  std::string hash = sha256(tok);
  RelayDb::Locked l = call.relay.db.lock();
  std::string uid;
  {
    RelayQuery q(l, "SELECT user_id FROM sessions WHERE hash = ?1 AND expires_ms > ?2");
    if (!q.bind_blob(1, hash).bind(2, call.now_ms).step()) return false;
    uid = q.str(0);
  }
  if (hash_out) *hash_out = hash;
  return load_user(l, "id", uid, user);
}

Outcome new_session(Call& call, const User& u, std::string* token, int64_t* expires_ms) {
  *token = random_token(32);
  *expires_ms = call.now_ms + call.relay.config.relay.session_ttl * 1000;
  const std::string hash = sha256(*token);
  RelayDb::Locked l = call.relay.db.lock();
  // Expired sessions go as new ones come.
  (void)RelayQuery(l, "DELETE FROM sessions WHERE expires_ms <= ?1").bind(1, call.now_ms).run();
  Status st = RelayQuery(l, "INSERT INTO sessions (hash, user_id, expires_ms) VALUES (?1, ?2, ?3)")
                  .bind_blob(1, hash)
                  .bind(2, u.id)
                  .bind(3, *expires_ms)
                  .run();
  if (!st.ok()) return fail(500, "internal", "the store failed");
  return {};
}

std::string session_cookie(const Call& call, const std::string& token) {
  return std::string(kCookie) + "=" + token + cookie_flags(call) +
         "; Max-Age=" + std::to_string(call.relay.config.relay.session_ttl);
}

bool same_origin(const std::string& origin, const std::string& issuer) {
  ParsedUrl o, own;
  return parse_url(origin, &o) && parse_url(issuer, &own) && o.scheme == own.scheme && o.host == own.host &&
         o.port == own.port;
}

// Bearer calls cannot be forged (a browser adds no Authorization header by
// itself). Otherwise an Origin, when present, must be the relay's own; and a
// call that carries the session cookie must have that Origin and, with a
// body, a JSON body (a PNG or JPEG for the avatar), which a form of another
// site cannot send.
std::optional<net::HttpResponse> forgery_refusal(const Request& req, const std::string& issuer) {
  if (has_bearer(req)) return std::nullopt;
  if (!req.origin.empty() && !same_origin(req.origin, issuer))
    return error(403, "forbidden",
                 "this call comes from another origin; the relay's API takes calls from its own pages "
                 "(Origin " +
                     issuer + ") or with Authorization: Bearer");
  if (session_token(req).empty()) return std::nullopt;
  if (req.origin.empty())
    return error(403, "forbidden",
                 "a call with the session cookie needs the Origin header of the relay's own pages; other "
                 "clients use Authorization: Bearer");
  if (req.body.empty()) return std::nullopt;
  std::string type = media_type(req.content_type);
  if (req.path == "/api/v1/me/avatar") {
    if (type != "image/png" && type != "image/jpeg")
      return error(415, "unsupported_media_type",
                   "an avatar sent with the session cookie has Content-Type image/png or image/jpeg");
  } else if (type != "application/json") {
    return error(415, "unsupported_media_type",
                 "a call with the session cookie has Content-Type application/json");
  }
  return std::nullopt;
}

net::HttpResponse post_sessions(Call& call) {
  CredentialsBody body;
  if (auto refused = body_refusal(call, &body)) return *refused;
  User u;
  Outcome o = check_password(call, body.username, body.password, &u);
  if (!o.ok()) return as_error(o);
  std::string tok;
  int64_t expires = 0;
  o = new_session(call, u, &tok, &expires);
  if (!o.ok()) return as_error(o);
  token_json::JsonPtr out(cJSON_CreateObject());
  cJSON_AddStringToObject(out.get(), "session", tok.c_str());
  cJSON_AddNumberToObject(out.get(), "expires_at", static_cast<double>(expires));
  add_user_fields(cJSON_AddObjectToObject(out.get(), "user"), u, call.issuer(), true);
  net::HttpResponse r = json_response(201, token_json::print(out.get()));
  r.headers.emplace_back("Set-Cookie", session_cookie(call, tok));
  return r;
}

net::HttpResponse delete_sessions(Call& call) {
  User u;
  std::string hash;
  if (!authenticate(call, &u, &hash)) return unauthenticated();
  Status st =
      RelayQuery(call.relay.db.lock(), "DELETE FROM sessions WHERE hash = ?1").bind_blob(1, hash).run();
  if (!st.ok()) return internal_error(std::string(st.message()));
  net::HttpResponse r;
  r.status = 204;
  r.content_type = "";
  r.headers.emplace_back("Set-Cookie", std::string(kCookie) + "=" + cookie_flags(call) + "; Max-Age=0");
  return r;
}

}  // namespace hut::relay
