#include "relay/accounts.h"

#include <argon2.h>
#include <openssl/rand.h>

#include "relay/handlers.h"
#include "relay/rules.h"
#include "relay/sessions.h"
#include "token/json.h"
#include "util/random.h"

namespace hut::relay {

namespace {

using token_json::JsonPtr;

// argon2id parameters: OWASP's minimum (19 MiB, 2 passes, 1 lane).
constexpr uint32_t kArgonTime = 2;
constexpr uint32_t kArgonMemoryKiB = 19456;
constexpr uint32_t kArgonLanes = 1;
constexpr size_t kArgonSalt = 16;
constexpr size_t kArgonHash = 32;
// Longer passwords are refused without a hash (the rules allow 1024).
constexpr size_t kMaxPasswordHashed = 4096;

// An argon2id hash, with the parameters above, of a random password nobody
// knows: what a login for an unknown username is verified against. Made once,
// on the first such login (thread-safe static initialization).
const std::string& unknown_user_hash() {
  static const std::string hash = [] {
    unsigned char secret[32];
    unsigned char salt[kArgonSalt];
    char encoded[256] = {0};
    if (RAND_bytes(secret, sizeof(secret)) == 1 && RAND_bytes(salt, sizeof(salt)) == 1)
      argon2id_hash_encoded(kArgonTime, kArgonMemoryKiB, kArgonLanes, secret, sizeof(secret), salt,
                            sizeof(salt), kArgonHash, encoded, sizeof(encoded));
    return std::string(encoded);
  }();
  return hash;
}

net::HttpResponse user_answer(int status, const User& u, const std::string& issuer) {
  JsonPtr o(cJSON_CreateObject());
  add_user_fields(o.get(), u, issuer, true);
  return json_response(status, token_json::print(o.get()));
}

// The user of a row whose first columns are id, username, name and whether
// there is an avatar.
User user_of_row(const RelayQuery& q) { return User{q.str(0), q.str(1), q.str(2), q.i64(3) != 0}; }

}  // namespace

bool load_user(const RelayDb::Locked& l, std::string_view column, std::string_view key, User* out) {
  const char* sql = column == "username" ? "SELECT id, username, name, CASE WHEN avatar_type IS NULL THEN 0 "
                                           "ELSE 1 END FROM users WHERE username = ?1"
                                         : "SELECT id, username, name, CASE WHEN avatar_type IS NULL THEN 0 "
                                           "ELSE 1 END FROM users WHERE id = ?1";
  RelayQuery q(l, sql);
  if (!q.bind(1, key).step()) return false;
  *out = user_of_row(q);
  return true;
}

std::string avatar_url(const std::string& issuer, const User& u) {
  if (!u.has_avatar) return {};
  std::string base = issuer;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/avatars/" + u.id;
}

void add_user_fields(cJSON* obj, const User& u, const std::string& issuer, bool with_username) {
  cJSON_AddStringToObject(obj, "id", u.id.c_str());
  if (with_username) cJSON_AddStringToObject(obj, "username", u.username.c_str());
  cJSON_AddStringToObject(obj, "name", u.name.c_str());
  if (u.has_avatar) cJSON_AddStringToObject(obj, "avatar", avatar_url(issuer, u).c_str());
}

Outcome create_account(Call& call, const std::string& username, const std::string& password,
                       const std::string& name, User* out) {
  RelayState& r = call.relay;
  if (!r.config.relay.registration)
    return fail(403, "registration_closed", "this relay does not take new accounts");
  std::string broken = username_rule_broken(username);
  if (!broken.empty()) return fail(400, "bad_username", broken);
  broken = password_rule_broken(password);
  if (!broken.empty()) return fail(400, "bad_password", broken);
  const std::string& display = name.empty() ? username : name;
  broken = name_rule_broken(display);
  if (!broken.empty()) return fail(400, "bad_name", broken);
  User existing;
  if (load_user(r.db.lock(), "username", username, &existing))
    return fail(409, "username_taken", "that username is taken");
  if (int64_t wait = r.account_limit->take(call.req.peer, call.now_ms))
    return too_many("too_many_accounts", "too many new accounts from this address", wait);
  unsigned char salt[kArgonSalt];
  if (RAND_bytes(salt, sizeof(salt)) != 1) return fail(500, "internal", "no random bytes");
  char encoded[256];
  int rc = argon2id_hash_encoded(kArgonTime, kArgonMemoryKiB, kArgonLanes, password.data(), password.size(),
                                 salt, sizeof(salt), kArgonHash, encoded, sizeof(encoded));
  if (rc != ARGON2_OK) return fail(500, "internal", argon2_error_message(rc));
  User u;
  u.id = "u_" + random_hex(12);
  u.username = username;
  u.name = display;
  Status st =
      RelayQuery(
          r.db.lock(),
          "INSERT INTO users (id, username, name, password_hash, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)")
          .bind(1, u.id)
          .bind(2, u.username)
          .bind(3, u.name)
          .bind(4, std::string_view(encoded))
          .bind(5, call.now_ms)
          .run();
  if (st.code() == Status::Code::kAlreadyExists) return fail(409, "username_taken", "that username is taken");
  if (!st.ok()) return fail(500, "internal", "the store failed");
  r.stats.signups++;
  *out = u;
  return {};
}

Outcome check_password(Call& call, const std::string& username, const std::string& password, User* out) {
  RelayState& r = call.relay;
  // Budgets first, before any hash: per address, then per account (the
  // name as typed, known or not, so the answer tells nothing).
  const std::string account = username.substr(0, 64);
  int64_t wait = r.login_address_limit->take(call.req.peer, call.now_ms);
  if (wait == 0) wait = r.login_account_limit->take(account, call.now_ms);
  if (wait > 0)
    return too_many("too_many_attempts", "too many logins for this account or from this address", wait);
  std::string stored;
  User u;
  bool found = false;
  {
    RelayDb::Locked l = r.db.lock();
    RelayQuery q(l,
                 "SELECT id, username, name, CASE WHEN avatar_type IS NULL THEN 0 ELSE 1 END, password_hash "
                 "FROM users WHERE username = ?1");
    if (q.bind(1, username).step()) {
      found = true;
      u = user_of_row(q);
      stored = q.str(4);
    } else if (!q.status().ok()) {
      return fail(500, "internal", "the store failed");
    }
  }
  // An unknown username costs the same argon2id verification as a known one,
  // so the answer's timing does not tell whether the account exists.
  const std::string& hash = found ? stored : unknown_user_hash();
  bool verified = password.size() <= kMaxPasswordHashed &&
                  argon2id_verify(hash.c_str(), password.data(), password.size()) == ARGON2_OK;
  if (!found || !verified) {
    r.stats.logins_failed++;
    return fail(401, "bad_credentials", "wrong username or password");
  }
  r.stats.logins_ok++;
  r.login_account_limit->clear(account);
  *out = u;
  return {};
}

net::HttpResponse post_accounts(Call& call) {
  if (!call.relay.config.relay.registration)
    return error(403, "registration_closed", "this relay does not take new accounts");
  AccountBody body;
  if (auto refused = body_refusal(call, &body)) return *refused;
  User u;
  Outcome o = create_account(call, body.username, body.password, body.name.value_or(""), &u);
  if (!o.ok()) return as_error(o);
  JsonPtr out(cJSON_CreateObject());
  add_user_fields(cJSON_AddObjectToObject(out.get(), "user"), u, call.issuer(), true);
  return json_response(201, token_json::print(out.get()));
}

net::HttpResponse get_me(Call& call) {
  User u;
  if (!authenticate(call, &u, nullptr)) return unauthenticated();
  return user_answer(200, u, call.issuer());
}

net::HttpResponse patch_me(Call& call) {
  User u;
  ProfileBody body;
  if (auto refused = signed_in_refusal(call, &u, &body)) return *refused;
  if (body.name) {
    Status st = RelayQuery(call.relay.db.lock(), "UPDATE users SET name = ?1 WHERE id = ?2")
                    .bind(1, *body.name)
                    .bind(2, u.id)
                    .run();
    if (!st.ok()) return internal_error(std::string(st.message()));
    u.name = *body.name;
  }
  return user_answer(200, u, call.issuer());
}

net::HttpResponse put_avatar(Call& call) {
  User u;
  if (!authenticate(call, &u, nullptr)) return unauthenticated();
  const std::string& image = call.req.body;
  const char* type = is_png(image) ? "image/png" : is_jpeg(image) ? "image/jpeg" : nullptr;
  if (!type) return error(415, "unsupported_media_type", "an avatar is a PNG or JPEG image");
  Status st = RelayQuery(call.relay.db.lock(), "UPDATE users SET avatar_type = ?1, avatar = ?2 WHERE id = ?3")
                  .bind(1, std::string_view(type))
                  .bind_blob(2, image)
                  .bind(3, u.id)
                  .run();
  if (!st.ok()) return internal_error(std::string(st.message()));
  u.has_avatar = true;
  return user_answer(200, u, call.issuer());
}

net::HttpResponse get_avatar(Call& call) {
  constexpr std::string_view kPrefix = "/avatars/";
  RelayDb::Locked l = call.relay.db.lock();
  RelayQuery q(l, "SELECT avatar_type, avatar FROM users WHERE id = ?1 AND avatar_type IS NOT NULL");
  if (!q.bind(1, std::string_view(call.req.path).substr(kPrefix.size())).step())
    return error(404, "not_found", "no such avatar");
  net::HttpResponse r;
  r.content_type = q.str(0);
  r.body = q.blob(1);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

net::HttpResponse get_user(Call& call) {
  constexpr std::string_view kPrefix = "/api/v1/users/";
  User u;
  if (!load_user(call.relay.db.lock(), "id", std::string_view(call.req.path).substr(kPrefix.size()), &u))
    return error(404, "not_found", "no such user");
  return user_answer(200, u, call.issuer());
}

}  // namespace hut::relay
