#include "relay/directory.h"

#include <openssl/rand.h>

#include "relay/accounts.h"
#include "relay/handlers.h"
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

// Runs `write` (an insert or an update of the spaces table: ?1 the id, ?2
// the name, ?3 the url, ?4 the owner) with the fields of `sp`, then answers
// `status` with the entry, or 500 when the write failed.
net::HttpResponse stored_space_answer(int status, const SpaceEntry& sp, RelayQuery& write) {
  Status st = write.bind(1, sp.id).bind(2, sp.name).bind(3, sp.url).bind(4, sp.owner).run();
  if (!st.ok()) return internal_error(std::string(st.message()));
  return space_answer(status, sp);
}

SpaceEntry space_of_row(const RelayQuery& q) { return SpaceEntry{q.str(0), q.str(1), q.str(2), q.str(3)}; }

// {space} of /api/v1/spaces/{space}[/tokens].
std::string space_id_of(const Request& req) {
  constexpr std::string_view kPrefix = "/api/v1/spaces/";
  std::string_view rest = std::string_view(req.path).substr(kPrefix.size());
  return std::string(rest.substr(0, rest.find('/')));
}

}  // namespace

bool load_space(RelayState& relay, const std::string& space_id, SpaceEntry* out) {
  RelayDb::Locked l = relay.db.lock();
  RelayQuery q(l, "SELECT id, name, url, owner_id FROM spaces WHERE id = ?1");
  if (!q.bind(1, space_id).step()) return false;
  *out = space_of_row(q);
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
  RelayDb::Locked l = call.relay.db.lock();
  RelayQuery q(l, "SELECT id, name, url, owner_id FROM spaces ORDER BY id");
  JsonPtr arr(cJSON_CreateArray());
  while (q.step()) {
    cJSON* o = cJSON_CreateObject();
    add_space_fields(o, space_of_row(q));
    cJSON_AddItemToArray(arr.get(), o);
  }
  if (!q.status().ok()) return internal_error(std::string(q.status().message()));
  return json_response(200, token_json::print(arr.get()));
}

net::HttpResponse post_spaces(Call& call) {
  User u;
  SpaceBody body;
  if (auto refused = signed_in_refusal(call, &u, &body)) return *refused;
  // The relay assigns the id: 128 random bits, so nobody can claim the id
  // of a space before its admin, or guess one.
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof(raw)) != 1) return internal_error("no random bytes");
  SpaceEntry space{space_id_from_bytes(std::string_view(reinterpret_cast<char*>(raw), sizeof(raw))),
                   body.name, body.url, u.id};
  RelayDb::Locked l = call.relay.db.lock();
  int64_t owned = 0;
  {
    RelayQuery count(l, "SELECT count(*) FROM spaces WHERE owner_id = ?1");
    if (!count.bind(1, u.id).step())
      return internal_error(std::string(count.no_row(Status::internal("no count")).message()));
    owned = count.i64(0);
  }
  if (owned >= call.relay.config.limits.spaces_per_user)
    return error(403, "too_many_spaces",
                 "this account has registered " + std::to_string(owned) +
                     " spaces, the most this relay allows; change one with PATCH instead");
  RelayQuery insert(l,
                    "INSERT INTO spaces (id, name, url, owner_id, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)");
  return stored_space_answer(201, space, insert.bind(5, call.now_ms));
}

net::HttpResponse get_space(Call& call) {
  SpaceEntry space;
  if (!load_space(call.relay, space_id_of(call.req), &space))
    return error(404, "not_found", "no space with that id is registered");
  return space_answer(200, space);
}

net::HttpResponse patch_space(Call& call) {
  User u;
  SpacePatchBody body;
  if (auto refused = signed_in_refusal(call, &u, &body)) return *refused;
  SpaceEntry space;
  if (!load_space(call.relay, space_id_of(call.req), &space))
    return error(404, "not_found", "no space with that id is registered");
  if (space.owner != u.id) return error(403, "forbidden", "only the space's owner may change it");
  if (body.name) space.name = *body.name;
  if (body.url) space.url = *body.url;
  RelayDb::Locked l = call.relay.db.lock();
  RelayQuery update(l, "UPDATE spaces SET name = ?2, url = ?3 WHERE id = ?1 AND owner_id = ?4");
  return stored_space_answer(200, space, update);
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
