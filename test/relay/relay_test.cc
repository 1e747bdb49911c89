// The relay in-process: its route handlers on a real SQLite file and real
// key files (RelayState + dispatch, no network), then hut::Relay on a loop
// of its own answering over loopback HTTP.
#include <doctest/doctest.h>
#include <hutopia/relay.h>
#include <hutopia/token.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <string>
#include <thread>

#include "net/http_client.h"
#include "relay/login_page.h"
#include "relay/relay_state.h"
#include "relay/routes.h"
#include "test_util.h"
#include "token/json.h"
#include "util/clock.h"

using namespace hut;
using hut::test::TempDir;

namespace {

// A relay's state in a temporary data dir, and requests run through its
// route table as a pool job would run them.
struct Harness {
  TempDir dir;
  relay::RelayState state;
  explicit Harness(RelayConfig c = RelayConfig()) : state(configure(std::move(c), dir.path())) {
    Status st = state.open();
    REQUIRE_MESSAGE(st.ok(), st.message());
  }
  static RelayConfig configure(RelayConfig c, const std::string& dir) {
    c.relay.data_dir = dir + "/relay";
    c.relay.issuer = "http://127.0.0.1:8700";
    return c;
  }
  net::HttpResponse call(const std::string& method, const std::string& path, const std::string& body = "",
                         const std::string& bearer = "", const std::string& peer = "127.0.0.1") {
    relay::Request req;
    req.method = method;
    req.path = path;
    req.body = body;
    if (!bearer.empty()) req.authorization = "Bearer " + bearer;
    req.peer = peer;
    size_t q = path.find('?');
    if (q != std::string::npos) {
      req.path = path.substr(0, q);
      req.query = path.substr(q + 1);
    }
    relay::Call c{state, req, wall_ms()};
    return relay::dispatch(c);
  }
  // A string field of a JSON answer ("user.id" reaches one level down).
  static std::string field(const std::string& json, const std::string& name) {
    token_json::JsonPtr root = token_json::parse_strict(json);
    if (!root) return {};
    const cJSON* at = root.get();
    std::string rest = name;
    for (size_t dot; (dot = rest.find('.')) != std::string::npos; rest = rest.substr(dot + 1))
      at = cJSON_GetObjectItemCaseSensitive(at, rest.substr(0, dot).c_str());
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(at, rest.c_str());
    return cJSON_IsString(v) ? std::string(v->valuestring) : std::string();
  }
  // Signs up `username` and opens a session: the session token.
  std::string sign_up(const std::string& username, const std::string& password = "correct horse") {
    net::HttpResponse r = call("POST", "/api/v1/accounts",
                               R"({"username":")" + username + R"(","password":")" + password + R"("})");
    REQUIRE_MESSAGE(r.status == 201, r.body);
    r = call("POST", "/api/v1/sessions",
             R"({"username":")" + username + R"(","password":")" + password + R"("})");
    REQUIRE_MESSAGE(r.status == 201, r.body);
    return field(r.body, "session");
  }
  std::string register_space(const std::string& session, const std::string& url) {
    net::HttpResponse r =
        call("POST", "/api/v1/spaces", R"({"name":"Demo","url":")" + url + R"("})", session);
    REQUIRE_MESSAGE(r.status == 201, r.body);
    return field(r.body, "id");
  }
  std::string jwks() {
    net::HttpResponse r = call("GET", "/.well-known/jwks.json");
    REQUIRE(r.status == 200);
    return r.body;
  }
};

// A space's verifier trusting the relay's published key set.
Result<Claims> verify_as_space(const std::string& jwks, const std::string& space_id,
                               const std::string& token) {
  Result<KeySet> keys = KeySet::parse_jwks(jwks);
  if (!keys.ok()) return keys.status();
  TokenVerifier verifier(TokenVerifier::Options{space_id, 30, 300});
  verifier.trust_set(*keys, "http://127.0.0.1:8700");
  return verifier.verify(token, wall_ms() / 1000);
}

}  // namespace

TEST_CASE("relay: accounts are created once, with the rules checked, and log in with their password") {
  Harness h;
  std::string session = h.sign_up("alice");
  CHECK(session.size() >= 32);
  // The same username again, a broken rule, a wrong password.
  CHECK(h.call("POST", "/api/v1/accounts", R"({"username":"alice","password":"another one"})").status == 409);
  net::HttpResponse bad = h.call("POST", "/api/v1/accounts", R"({"username":"Al","password":"12345678"})");
  CHECK(bad.status == 400);
  CHECK(bad.body.find("bad_username") != std::string::npos);
  net::HttpResponse wrong =
      h.call("POST", "/api/v1/sessions", R"({"username":"alice","password":"wrong horse"})");
  CHECK(wrong.status == 401);
  CHECK(h.call("POST", "/api/v1/sessions", R"({"username":"nobody","password":"wrong horse"})").status ==
        401);
  // The session names the account; the password is stored as argon2id only.
  net::HttpResponse me = h.call("GET", "/api/v1/me", "", session);
  REQUIRE(me.status == 200);
  CHECK(Harness::field(me.body, "username") == "alice");
  CHECK(Harness::field(me.body, "name") == "alice");
  relay::RelayDb::Locked l = h.state.db.lock();
  relay::RelayQuery q(l, "SELECT password_hash FROM users WHERE username = 'alice'");
  REQUIRE(q.step());
  CHECK(q.str(0).starts_with("$argon2id$"));
  CHECK(q.str(0).find("correct horse") == std::string::npos);
}

TEST_CASE(
    "relay: a relay.db written before the shared SQLite layer opens with its accounts; a store does not") {
  TempDir dir;
  const std::string path = dir.path() + "/relay.db";
  {
    // The file as the relay's own wrapper wrote it: schema version 2, no
    // application_id, one account.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    const char* sql =
        "CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
        " password_hash TEXT NOT NULL, avatar_type TEXT, avatar BLOB, created_ms INTEGER NOT NULL);"
        "CREATE TABLE sessions (hash BLOB PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE"
        " CASCADE, expires_ms INTEGER NOT NULL);"
        "CREATE INDEX sessions_expiry ON sessions(expires_ms);"
        "CREATE TABLE spaces (id TEXT PRIMARY KEY, name TEXT NOT NULL, url TEXT NOT NULL,"
        " owner_id TEXT NOT NULL REFERENCES users(id), created_ms INTEGER NOT NULL);"
        "CREATE TABLE confirmations (user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
        " space_id TEXT NOT NULL REFERENCES spaces(id) ON DELETE CASCADE, url TEXT NOT NULL,"
        " confirmed_ms INTEGER NOT NULL, PRIMARY KEY (user_id, space_id));"
        "CREATE INDEX spaces_owner ON spaces(owner_id);"
        "INSERT INTO users VALUES ('u_old', 'olduser', 'Old User', '$argon2id$x', NULL, NULL, 1);"
        "PRAGMA user_version = 2;";
    REQUIRE(sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  relay::RelayDb db;
  Status st = db.open("sqlite://" + path);
  REQUIRE_MESSAGE(st.ok(), st.message());
  relay::RelayDb::Locked l = db.lock();
  relay::RelayQuery q(l, "SELECT name FROM users WHERE username = 'olduser'");
  REQUIRE(q.step());
  CHECK(q.str(0) == "Old User");
  CHECK(*sqlite_int(l.lite->db(), "PRAGMA user_version") == 2);

  // A space's store is another kind of file: refused, and left as it was.
  const std::string store = dir.path() + "/store.db";
  {
    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open(store.c_str(), &other) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "PRAGMA application_id = 1213551665", nullptr, nullptr, nullptr) ==
            SQLITE_OK);
    sqlite3_close(other);
  }
  relay::RelayDb wrong;
  Status refused = wrong.open("sqlite://" + store);
  CHECK(refused.code() == Status::Code::kFailedPrecondition);
  CHECK(std::string(refused.message()).find("not a Hutopia relay database") != std::string::npos);
}

TEST_CASE("relay: a login session ends on logout, and an unknown one is refused") {
  Harness h;
  std::string session = h.sign_up("bob");
  CHECK(h.call("GET", "/api/v1/me", "", session).status == 200);
  CHECK(h.call("GET", "/api/v1/me", "", "not-a-session").status == 401);
  CHECK(h.call("GET", "/api/v1/me").status == 401);
  net::HttpResponse out = h.call("DELETE", "/api/v1/sessions", "", session);
  CHECK(out.status == 204);
  CHECK(h.call("GET", "/api/v1/me", "", session).status == 401);
  CHECK(h.call("DELETE", "/api/v1/sessions", "", session).status == 401);
}

TEST_CASE("relay: a token signed for a space is accepted by that space's verifier, and by no other") {
  Harness h;
  std::string session = h.sign_up("carol");
  std::string space = h.register_space(session, "http://127.0.0.1:9123");
  net::HttpResponse r = h.call("POST", "/api/v1/spaces/" + space + "/tokens", "", session);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  std::string token = Harness::field(r.body, "token");
  Result<Claims> claims = verify_as_space(h.jwks(), space, token);
  REQUIRE_MESSAGE(claims.ok(), claims.status().message());
  CHECK(claims->username == "carol");
  CHECK(claims->aud == space);
  CHECK(claims->exp - claims->iat == h.state.config.relay.token_ttl);
  // Another space's verifier refuses it.
  CHECK_FALSE(verify_as_space(h.jwks(), "someotherspace", token).ok());
  // No token for an unregistered space, nor without a session.
  CHECK(h.call("POST", "/api/v1/spaces/nosuchspace/tokens", "", session).status == 404);
  CHECK(h.call("POST", "/api/v1/spaces/" + space + "/tokens").status == 401);
}

TEST_CASE("relay: after a key rotation new tokens use the new key and the old key stays published") {
  Harness h;
  std::string session = h.sign_up("dave");
  std::string space = h.register_space(session, "http://127.0.0.1:9123");
  std::string before =
      Harness::field(h.call("POST", "/api/v1/spaces/" + space + "/tokens", "", session).body, "token");
  Result<std::string> kid = h.state.keys->rotate(wall_ms() / 1000);
  REQUIRE(kid.ok());
  std::string after =
      Harness::field(h.call("POST", "/api/v1/spaces/" + space + "/tokens", "", session).body, "token");
  std::string jwks = h.jwks();
  Result<KeySet> keys = KeySet::parse_jwks(jwks);
  REQUIRE(keys.ok());
  CHECK(keys->keys().size() == 2);
  CHECK(keys->find(*kid) != nullptr);
  // Both verify: the old token until it expires, the new one with the new key.
  CHECK(verify_as_space(jwks, space, before).ok());
  CHECK(verify_as_space(jwks, space, after).ok());
  // The new token names the new key in its header; the old one the old key.
  auto kid_of = [](const std::string& token) {
    Result<std::string> header = base64url_decode(token.substr(0, token.find('.')));
    return header.ok() ? Harness::field(*header, "kid") : std::string();
  };
  CHECK(kid_of(after) == *kid);
  CHECK(kid_of(before) != *kid);
  CHECK_FALSE(kid_of(before).empty());
  // The key files are the relay's alone.
  struct stat st {};
  REQUIRE(::stat((h.state.config.relay.data_dir + "/keys/" + *kid + ".pem").c_str(), &st) == 0);
  CHECK((st.st_mode & 077) == 0);
  // rotate_relay_signing_key (relayd rotate-key) rotates the same files.
  Result<std::string> third = rotate_relay_signing_key(h.state.config);
  REQUIRE(third.ok());
  std::string next =
      Harness::field(h.call("POST", "/api/v1/spaces/" + space + "/tokens", "", session).body, "token");
  Result<KeySet> three = KeySet::parse_jwks(h.jwks());
  REQUIRE(three.ok());
  CHECK(three->keys().size() == 3);
  CHECK(verify_as_space(h.jwks(), space, next).ok());
}

TEST_CASE("relay: the directory lists spaces; only the owner changes one; ids are the relay's") {
  Harness h;
  std::string owner = h.sign_up("erin");
  std::string other = h.sign_up("frank");
  std::string space = h.register_space(owner, "http://127.0.0.1:9123");
  CHECK(space.size() == 26);  // 128 random bits in base32
  net::HttpResponse list = h.call("GET", "/api/v1/spaces");
  REQUIRE(list.status == 200);
  CHECK(list.body.find(space) != std::string::npos);
  CHECK(h.call("GET", "/api/v1/spaces/" + space).status == 200);
  CHECK(h.call("GET", "/api/v1/spaces/unknown").status == 404);
  CHECK(h.call("PATCH", "/api/v1/spaces/" + space, R"({"name":"Renamed"})", other).status == 403);
  net::HttpResponse renamed = h.call("PATCH", "/api/v1/spaces/" + space, R"({"name":"Renamed"})", owner);
  REQUIRE(renamed.status == 200);
  CHECK(Harness::field(h.call("GET", "/api/v1/spaces/" + space).body, "name") == "Renamed");
  // A claimed id is refused; a bad address too.
  CHECK(h.call("POST", "/api/v1/spaces", R"({"id":"mine","name":"X","url":"http://127.0.0.1:1"})", owner)
            .status == 400);
  CHECK(h.call("POST", "/api/v1/spaces", R"({"name":"X","url":"ftp://127.0.0.1:1"})", owner).status == 400);
}

TEST_CASE("relay: the spaces_per_user limit holds") {
  RelayConfig c;
  c.limits.spaces_per_user = 1;
  Harness h(c);
  std::string owner = h.sign_up("gina");
  h.register_space(owner, "http://127.0.0.1:9123");
  net::HttpResponse r =
      h.call("POST", "/api/v1/spaces", R"({"name":"Second","url":"http://127.0.0.1:9124"})", owner);
  CHECK(r.status == 403);
  CHECK(r.body.find("too_many_spaces") != std::string::npos);
}

TEST_CASE("relay: errors are JSON with a code; unknown routes 404, wrong methods 405") {
  Harness h;
  net::HttpResponse r = h.call("GET", "/api/v1/nothing");
  CHECK(r.status == 404);
  CHECK(Harness::field(r.body, "error.code") == "not_found");
  r = h.call("PUT", "/api/v1/spaces");
  CHECK(r.status == 405);
  CHECK(Harness::field(r.body, "error.code") == "method_not_allowed");
  r = h.call("POST", "/api/v1/accounts", "{not json");
  CHECK(r.status == 400);
  CHECK_FALSE(Harness::field(r.body, "error.code").empty());
  // A call from another site's page with the cookie is refused.
  relay::Request req;
  req.method = "POST";
  req.path = "/api/v1/spaces";
  req.origin = "http://evil.example";
  req.body = R"({"name":"X","url":"http://127.0.0.1:1"})";
  relay::Call c{h.state, req, wall_ms()};
  CHECK(relay::dispatch(c).status == 403);
}

TEST_CASE("relay: registration closed refuses new accounts") {
  RelayConfig c;
  c.relay.registration = false;
  Harness h(c);
  net::HttpResponse r =
      h.call("POST", "/api/v1/accounts", R"({"username":"henry","password":"correct horse"})");
  CHECK(r.status == 403);
  CHECK(Harness::field(r.body, "error.code") == "registration_closed");
}

TEST_CASE("relay: the login page is rendered from its templates, every value escaped") {
  Harness h;
  std::string owner = h.sign_up("iris");
  net::HttpResponse sp =
      h.call("POST", "/api/v1/spaces", R"({"name":"<b>Bold</b> & co","url":"http://127.0.0.1:9123"})", owner);
  REQUIRE(sp.status == 201);
  std::string id = Harness::field(sp.body, "id");
  net::HttpResponse page = h.call("GET", "/login?space=" + id + "&return=http://127.0.0.1:9123/app");
  REQUIRE(page.status == 200);
  CHECK(page.content_type.starts_with("text/html"));
  CHECK(page.body.find("<main>") != std::string::npos);
  CHECK(page.body.find("&lt;b&gt;Bold&lt;/b&gt; &amp; co") != std::string::npos);
  CHECK(page.body.find("<b>Bold</b>") == std::string::npos);
  CHECK(page.body.find("{{") == std::string::npos);
  CHECK(page.body.find("<label for=\"p\">Password</label>") != std::string::npos);
  // A return address outside the space: an error page, no form.
  net::HttpResponse off = h.call("GET", "/login?space=" + id + "&return=http://evil.example/");
  CHECK(off.status == 400);
  CHECK(off.body.find("<form") == std::string::npos);
  CHECK(relay::render_template("alert.html", {{"message", "a<b"}}).find("a&lt;b") != std::string::npos);
  CHECK(relay::render_template("no-such.html", {}).empty());
}

TEST_CASE("relay: a RelayConfig built in code is checked like a file") {
  TempDir dir;
  RelayConfig c;
  c.relay.data_dir = dir.file("relay");
  c.relay.listen = "nonsense";
  Result<std::unique_ptr<Relay>> r = Relay::create(c);
  REQUIRE_FALSE(r.ok());
  CHECK(std::string(r.status().message()).find("relay.listen") != std::string::npos);
  c.relay.listen = "127.0.0.1:0";
  c.relay.token_ttl = 0;
  r = Relay::create(c);
  REQUIRE_FALSE(r.ok());
  CHECK(std::string(r.status().message()).find("relay.token_ttl") != std::string::npos);
  c.relay.token_ttl = 60;
  c.admin.token = "short";
  CHECK_FALSE(Relay::create(c).ok());
}

TEST_CASE("relay: hut::Relay serves on its own loop and stops cleanly") {
  TempDir dir;
  RelayConfig c;
  c.relay.data_dir = dir.file("relay");
  c.relay.listen = "127.0.0.1:0";
  c.admin.listen = "127.0.0.1:0";
  c.admin.token = "7c1d0e9a4b3f5a6d8e2c1b0a9f8e7d6c5b4a3928171615141312111009080706";
  Result<std::unique_ptr<Relay>> made = Relay::create(c);
  REQUIRE_MESSAGE(made.ok(), made.status().message());
  std::unique_ptr<Relay> relay = std::move(*made);
  REQUIRE(relay->start().ok());
  CHECK(relay->start().code() == Status::Code::kFailedPrecondition);
  const int port = relay->public_port();
  const int admin = relay->admin_port();
  CHECK(port > 0);
  CHECK(relay->public_url() == "http://127.0.0.1:" + std::to_string(port));
  // Stopped from the loop thread when the test thread says so.
  uv_async_t stop_signal;
  uv_async_init(relay->loop(), &stop_signal, [](uv_async_t* a) {
    static_cast<Relay*>(a->data)->stop([a] { uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr); });
  });
  stop_signal.data = relay.get();
  std::thread loop_thread([&] { relay->run(); });

  test::HttpResult health = test::http_get(admin, "/healthz");
  CHECK(health.status == 200);
  CHECK(test::http_get(admin, "/metrics").status == 401);
  test::HttpResult metrics =
      test::http_get(admin, "/metrics", {{"Authorization", "Bearer " + c.admin.token}});
  CHECK(metrics.status == 200);
  CHECK(metrics.body.find("hutopia_relay_tokens_minted_total") != std::string::npos);
  test::HttpResult jwks = test::http_get(port, "/.well-known/jwks.json");
  REQUIRE(jwks.status == 200);
  CHECK(KeySet::parse_jwks(jwks.body).ok());
  // The relay has no WebSocket endpoint: an upgrade is not accepted.
  test::HttpResult upgrade = test::http_get(port, "/bus",
                                            {{"Upgrade", "websocket"},
                                             {"Connection", "Upgrade"},
                                             {"Sec-WebSocket-Version", "13"},
                                             {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}});
  CHECK(upgrade.status != 101);

  uv_async_send(&stop_signal);
  loop_thread.join();
  CHECK(test::http_get(port, "/.well-known/jwks.json", {}).status == 0);
}
