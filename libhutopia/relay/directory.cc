#include "relay/directory.h"

#include <openssl/rand.h>

#include "relay/accounts.h"
#include "relay/rules.h"
#include "relay/sessions.h"
#include "token/json.h"
#include "util/random.h"

namespace hut::relay {

namespace {

using token_json::JsonPtr;

void add_space_fields(cJSON* o, const SpaceEntry& sp) {
  cJSON_AddStringToObject(o, "id", sp.id.c_str());
  cJSON_AddStringToObject(o, "name", sp.name.c_str());
  cJSON_AddStringToObject(o, "url", sp.url.c_str());
  cJSON_AddStringToObject(o, "owner", sp.owner.c_str());
}

net::HttpResponse space_answer(int status, const SpaceEntry& sp) {
  JsonPtr o(cJSON_CreateObject());
  add_space_fields(o.get(), sp);
  return json_response(status, token_json::print(o.get()));
}

// {space} of /api/v1/spaces/{space}[/tokens].
std::string space_id_of(const Request& req) {
  constexpr std::string_view kPrefix = "/api/v1/spaces/";
  std::string_view rest = std::string_view(req.path).substr(kPrefix.size());
  return std::string(rest.substr(0, rest.find('/')));
}

}  // namespace

bool load_space(RelayState& relay, const std::string& space_id, SpaceEntry* out) {
  std::lock_guard<std::mutex> lock(relay.db.mutex());
  Stmt st(relay.db.db(), "SELECT id, name, url, owner_id FROM spaces WHERE id = ?");
  st.text(1, space_id);
  if (st.step() != SQLITE_ROW) return false;
  *out = SpaceEntry{st.col_text(0), st.col_text(1), st.col_text(2), st.col_text(3)};
  return true;
}

Outcome mint_token(Call& call, const User& u, const std::string& space_id, std::string* token,
                   int64_t* expires_ms) {
  RelayState& r = call.relay;
  SpaceEntry space;
  if (!load_space(r, space_id, &space) || space.url.empty())
    return fail(404, "not_found", "no space with that id is registered");
  if (int64_t wait = r.token_limit->take(u.id, call.now_ms))
    return too_many("too_many_tokens", "too many relay tokens for this user", wait);
  Result<Key> key = r.keys->signing_key();
  if (!key.ok()) return fail(500, "internal", std::string(key.status().message()));
  Claims c;
  c.iss = call.issuer();
  c.sub = u.id;
  c.aud = space_id;
  c.iat = call.now_ms / 1000;
  c.exp = c.iat + r.config.relay.token_ttl;
  c.jti = random_token(16);
  c.name = u.name;
  c.username = u.username;
  c.avatar = avatar_url(call.issuer(), u);
  Result<std::string> signed_token = sign_token(*key, c);
  if (!signed_token.ok()) return fail(500, "internal", std::string(signed_token.status().message()));
  r.stats.tokens_minted++;
  *token = *signed_token;
  *expires_ms = c.exp * 1000;
  return {};
}

net::HttpResponse get_spaces(Call& call) {
  RelayDb& db = call.relay.db;
  std::lock_guard<std::mutex> lock(db.mutex());
  Stmt st(db.db(), "SELECT id, name, url, owner_id FROM spaces ORDER BY id");
  if (!st.ok()) return internal_error(sqlite3_errmsg(db.db()));
  JsonPtr arr(cJSON_CreateArray());
  while (st.step() == SQLITE_ROW) {
    cJSON* o = cJSON_CreateObject();
    add_space_fields(o, SpaceEntry{st.col_text(0), st.col_text(1), st.col_text(2), st.col_text(3)});
    cJSON_AddItemToArray(arr.get(), o);
  }
  return json_response(200, token_json::print(arr.get()));
}

net::HttpResponse post_spaces(Call& call) {
  User u;
  if (!authenticate(call, &u, nullptr)) return unauthenticated();
  SpaceBody body;
  BodyError bad;
  if (!parse_space_body(call.req.body, &body, &bad)) return error(400, bad.code.c_str(), bad.message);
  // The relay assigns the id: 128 random bits, so nobody can claim the id
  // of a space before its admin, or guess one.
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof(raw)) != 1) return internal_error("no random bytes");
  SpaceEntry space{space_id_from_bytes(std::string_view(reinterpret_cast<char*>(raw), sizeof(raw))),
                   body.name, body.url, u.id};
  RelayDb& db = call.relay.db;
  std::lock_guard<std::mutex> lock(db.mutex());
  Stmt count(db.db(), "SELECT count(*) FROM spaces WHERE owner_id = ?");
  count.text(1, u.id);
  if (count.step() != SQLITE_ROW) return internal_error(sqlite3_errmsg(db.db()));
  if (count.col_int(0) >= call.relay.config.limits.spaces_per_user)
    return error(403, "too_many_spaces",
                 "this account has registered " + std::to_string(count.col_int(0)) +
                     " spaces, the most this relay allows; change one with PATCH instead");
  Stmt st(db.db(), "INSERT INTO spaces (id, name, url, owner_id, created_ms) VALUES (?, ?, ?, ?, ?)");
  st.text(1, space.id);
  st.text(2, space.name);
  st.text(3, space.url);
  st.text(4, space.owner);
  st.int64(5, call.now_ms);
  if (st.step() != SQLITE_DONE) return internal_error(sqlite3_errmsg(db.db()));
  return space_answer(201, space);
}

net::HttpResponse get_space(Call& call) {
  SpaceEntry space;
  if (!load_space(call.relay, space_id_of(call.req), &space))
    return error(404, "not_found", "no space with that id is registered");
  return space_answer(200, space);
}

net::HttpResponse patch_space(Call& call) {
  User u;
  if (!authenticate(call, &u, nullptr)) return unauthenticated();
  SpacePatchBody body;
  BodyError bad;
  if (!parse_space_patch_body(call.req.body, &body, &bad)) return error(400, bad.code.c_str(), bad.message);
  SpaceEntry space;
  if (!load_space(call.relay, space_id_of(call.req), &space))
    return error(404, "not_found", "no space with that id is registered");
  if (space.owner != u.id) return error(403, "forbidden", "only the space's owner may change it");
  if (body.name) space.name = *body.name;
  if (body.url) space.url = *body.url;
  RelayDb& db = call.relay.db;
  std::lock_guard<std::mutex> lock(db.mutex());
  Stmt st(db.db(), "UPDATE spaces SET name = ?, url = ? WHERE id = ? AND owner_id = ?");
  st.text(1, space.name);
  st.text(2, space.url);
  st.text(3, space.id);
  st.text(4, u.id);
  if (st.step() != SQLITE_DONE) return internal_error(sqlite3_errmsg(db.db()));
  return space_answer(200, space);
}

net::HttpResponse post_space_tokens(Call& call) {
  User u;
  if (!authenticate(call, &u, nullptr)) return unauthenticated();
  std::string token;
  int64_t expires = 0;
  Outcome o = mint_token(call, u, space_id_of(call.req), &token, &expires);
  if (!o.ok()) return as_error(o);
  JsonPtr out(cJSON_CreateObject());
  cJSON_AddStringToObject(out.get(), "token", token.c_str());
  cJSON_AddNumberToObject(out.get(), "expires_at", static_cast<double>(expires));
  return json_response(200, token_json::print(out.get()));
}

net::HttpResponse get_jwks(Call& call) {
  Result<std::string> jwks = call.relay.keys->jwks(call.now_ms / 1000);
  if (!jwks.ok()) return internal_error(std::string(jwks.status().message()));
  net::HttpResponse r;
  r.body = *jwks;
  r.headers.emplace_back("Cache-Control", "max-age=60");
  return r;
}

}  // namespace hut::relay
