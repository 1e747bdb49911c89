#include <doctest/doctest.h>

#include <hutopia/config.h>

#include <map>
#include <string>

#include <toml++/toml.h>

#include "config/schema.h"
#include "test_util.h"
#include "util/url.h"

namespace hut {
namespace {

// An environment made of a map, so tests never touch the process's.
EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

const EnvLookup kNoEnv = env_of({});

std::string space_error(const std::string& text, const EnvLookup& env = kNoEnv) {
  Result<SpaceConfig> r = parse_space_config(text, "spaced.toml", env);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().is_invalid_argument());
  return std::string(r.status().message());
}

std::string relay_error(const std::string& text, const EnvLookup& env = kNoEnv) {
  Result<RelayConfig> r = parse_relay_config(text, "relayd.toml", env);
  REQUIRE_FALSE(r.ok());
  return std::string(r.status().message());
}

const char kFullSpace[] = R"(# every key
[space]
id = "my-space.1"
name = "My space"
listen = "0.0.0.0:9080"
url = "https://space.example.org"
data_dir = "/srv/space"
plugins_dir = "/srv/plugins"

[admin]
listen = "[::1]:9999"
token = "s3cret-s3cret-s3cret-s3cret-s3cret"

[auth]
relay_issuer = "https://relay.example.org"
relay_jwks = "https://relay.example.org/.well-known/jwks.json"
relay_login = "https://relay.example.org/signin"
app_issuer = "my-app"
app_secret = "0123456789abcdef0123456789abcdef"
max_token_lifetime = 600
leeway = 5
app_token_ttl = 120

[store]
url = "postgres://user@db.example.org/space"

[limits]
max_message = 1000
bad_frames = 3
bad_frame_window = 4
backpressure = 5000
hello_timeout = 6
post_rate = 7
post_burst = 8
max_connections = 9
)";

TEST_CASE("config: an empty file gives the defaults") {
  Result<SpaceConfig> s = parse_space_config("", "spaced.toml", kNoEnv);
  REQUIRE(s.ok());
  CHECK(s->space.id == "demo");
  CHECK(s->space.name == "Demo space");
  CHECK(s->space.listen == "127.0.0.1:8080");
  CHECK(s->space.url == "");
  CHECK(s->space.data_dir == "var/space");
  CHECK(s->space.plugins_dir == "plugins");
  CHECK(s->admin.listen == "127.0.0.1:7999");
  CHECK(s->admin.token == "");
  CHECK(s->auth.relay_issuer == "");
  CHECK(s->auth.app_secret == "");
  CHECK(s->auth.max_token_lifetime == 300);
  CHECK(s->auth.leeway == 30);
  CHECK(s->auth.app_token_ttl == 300);
  CHECK(s->store.url == "sqlite://var/space/space.db");
  CHECK(s->limits.max_message == 65536);
  CHECK(s->limits.bad_frames == 20);
  CHECK(s->limits.bad_frame_window == 10);
  CHECK(s->limits.backpressure == 1048576);
  CHECK(s->limits.hello_timeout == 10);
  CHECK(s->limits.post_rate == 50);
  CHECK(s->limits.post_burst == 500);
  CHECK(s->limits.max_connections == 100000);

  Result<RelayConfig> r = parse_relay_config("# nothing\n", "relayd.toml", kNoEnv);
  REQUIRE(r.ok());
  CHECK(r->relay.listen == "127.0.0.1:8700");
  CHECK(r->relay.issuer == "http://127.0.0.1:8700");
  CHECK(r->relay.data_dir == "var/relay");
  CHECK(r->relay.token_ttl == 60);
  CHECK(r->relay.session_ttl == 2592000);
  CHECK(r->relay.registration == true);
}

TEST_CASE("config: every key of spaced.toml is read from the file") {
  Result<SpaceConfig> s = parse_space_config(kFullSpace, "spaced.toml", kNoEnv);
  REQUIRE_MESSAGE(s.ok(), s.status().to_string());
  CHECK(s->space.id == "my-space.1");
  CHECK(s->space.name == "My space");
  CHECK(s->space.listen == "0.0.0.0:9080");
  CHECK(s->space.url == "https://space.example.org");
  CHECK(s->space.data_dir == "/srv/space");
  CHECK(s->space.plugins_dir == "/srv/plugins");
  CHECK(s->admin.listen == "[::1]:9999");
  CHECK(s->admin.token == "s3cret-s3cret-s3cret-s3cret-s3cret");
  CHECK(s->auth.relay_issuer == "https://relay.example.org");
  CHECK(s->auth.relay_jwks == "https://relay.example.org/.well-known/jwks.json");
  CHECK(s->auth.relay_login == "https://relay.example.org/signin");
  CHECK(s->auth.app_issuer == "my-app");
  CHECK(s->auth.app_secret == "0123456789abcdef0123456789abcdef");
  CHECK(s->auth.max_token_lifetime == 600);
  CHECK(s->auth.leeway == 5);
  CHECK(s->auth.app_token_ttl == 120);
  CHECK(s->store.url == "postgres://user@db.example.org/space");
  CHECK(s->limits.max_message == 1000);
  CHECK(s->limits.bad_frames == 3);
  CHECK(s->limits.bad_frame_window == 4);
  CHECK(s->limits.backpressure == 5000);
  CHECK(s->limits.hello_timeout == 6);
  CHECK(s->limits.post_rate == 7);
  CHECK(s->limits.post_burst == 8);
  CHECK(s->limits.max_connections == 9);
}

TEST_CASE("config: every key of relayd.toml is read from the file") {
  Result<RelayConfig> r = parse_relay_config(R"([relay]
listen = "[::]:0"
issuer = "https://relay.example.org"
data_dir = "/srv/relay"
token_ttl = 30
session_ttl = 3600
registration = false
)",
                                             "relayd.toml", kNoEnv);
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  CHECK(r->relay.listen == "[::]:0");
  CHECK(r->relay.issuer == "https://relay.example.org");
  CHECK(r->relay.data_dir == "/srv/relay");
  CHECK(r->relay.token_ttl == 30);
  CHECK(r->relay.session_ttl == 3600);
  CHECK(r->relay.registration == false);
}

TEST_CASE("config: a value of the wrong type names the file, line and key") {
  CHECK(space_error("\n[space]\n\nlisten = 8080\n") == "spaced.toml:4: space.listen: expected a string");
  CHECK(space_error("[auth]\nleeway = \"5\"\n") == "spaced.toml:2: auth.leeway: expected an integer");
  CHECK(space_error("[limits]\nmax_message = 1.5\n") ==
        "spaced.toml:2: limits.max_message: expected an integer");
  CHECK(space_error("[admin]\ntoken = true\n") == "spaced.toml:2: admin.token: expected a string");
  CHECK(space_error("[store]\nurl = [\"sqlite://a\"]\n") == "spaced.toml:2: store.url: expected a string");
  CHECK(relay_error("[relay]\nregistration = \"no\"\n") ==
        "relayd.toml:2: relay.registration: expected a boolean");
  CHECK(relay_error("[relay]\ntoken_ttl = true\n") == "relayd.toml:2: relay.token_ttl: expected an integer");
  // A section that is not a table.
  CHECK(space_error("space = \"x\"\n") == "spaced.toml:1: space: expected a table");
  CHECK(space_error("[[space]]\nid = \"x\"\n").find("spaced.toml:1: space: expected a table") == 0);
}

TEST_CASE("config: the first error in file order is the one reported") {
  // toml++ sorts keys by name; the message must still point at line 2.
  CHECK(space_error("[space]\nname = 1\nid = 2\n") == "spaced.toml:2: space.name: expected a string");
}

TEST_CASE("config: unknown keys and sections are refused with their line") {
  CHECK(space_error("[space]\nid = \"a\"\nlisten_port = 80\n") ==
        "spaced.toml:3: unknown key space.listen_port");
  CHECK(space_error("[space]\nid = \"a\"\n\n[spaec]\nx = 1\n") ==
        "spaced.toml:4: unknown section [spaec] (known: [space], [admin], [auth], [store], [cluster], [log], "
        "[limits])");
  CHECK(space_error("id = \"a\"\n").find("spaced.toml:1: unknown key id") == 0);
  CHECK(space_error("[space.extra]\nx = 1\n") == "spaced.toml:1: unknown key space.extra");
  // The relay's file knows only [relay], [admin], [log] and [limits].
  CHECK(relay_error("[relay]\n[space]\nid = \"x\"\n") ==
        "relayd.toml:2: unknown section [space] (known: [relay], [admin], [store], [log], [limits])");
}

TEST_CASE("config: a TOML syntax error names its line") {
  std::string e = space_error("[space]\nid = \"demo\"\nname = \"unterminated\n");
  CHECK(e.find("spaced.toml:3: syntax error: ") == 0);
  e = space_error("[space]\nid = \"a\"\nid = \"b\"\n");
  CHECK(e.find("spaced.toml:3: syntax error: ") == 0);
  e = relay_error("[relay\n");
  CHECK(e.find("relayd.toml:1: syntax error: ") == 0);
}

TEST_CASE("config: environment variables override the file") {
  EnvLookup env = env_of({{"HUTOPIA_ADMIN_TOKEN", "from-env-0123456789abcdef0123456789"},
                          {"HUTOPIA_SPACE_LISTEN", "127.0.0.1:0"},
                          {"HUTOPIA_AUTH_APP_SECRET", "shh"},
                          {"HUTOPIA_AUTH_LEEWAY", "7"},
                          {"HUTOPIA_LIMITS_MAX_CONNECTIONS", " +12 "}});
  Result<SpaceConfig> s = parse_space_config(
      "[admin]\ntoken = \"from-file-0123456789abcdef0123456789\"\n[auth]\nleeway = 3\n", "spaced.toml", env);
  REQUIRE_MESSAGE(s.ok(), s.status().to_string());
  CHECK(s->admin.token == "from-env-0123456789abcdef0123456789");
  CHECK(s->space.listen == "127.0.0.1:0");
  CHECK(s->auth.app_secret == "shh");
  CHECK(s->auth.leeway == 7);
  CHECK(s->limits.max_connections == 12);
  CHECK(s->space.id == "demo");

  // The file says the opposite of the variable each time.
  for (const auto& c :
       {std::pair{"false", false}, {"0", false}, {"No", false}, {"true", true}, {"ON", true}}) {
    std::string file = std::string("[relay]\nregistration = ") + (c.second ? "false" : "true") + "\n";
    Result<RelayConfig> r =
        parse_relay_config(file, "relayd.toml", env_of({{"HUTOPIA_RELAY_REGISTRATION", c.first}}));
    REQUIRE(r.ok());
    CHECK_MESSAGE(r->relay.registration == c.second, c.first);
  }
  Result<RelayConfig> r = parse_relay_config("", "relayd.toml", env_of({{"HUTOPIA_RELAY_TOKEN_TTL", "90"}}));
  REQUIRE(r.ok());
  CHECK(r->relay.token_ttl == 90);
}

TEST_CASE("config: an environment value that does not parse names the variable") {
  CHECK(space_error("", env_of({{"HUTOPIA_AUTH_LEEWAY", "ten"}})) ==
        "environment variable HUTOPIA_AUTH_LEEWAY: auth.leeway: expected an integer, got \"ten\"");
  CHECK(space_error("", env_of({{"HUTOPIA_LIMITS_MAX_MESSAGE", ""}})) ==
        "environment variable HUTOPIA_LIMITS_MAX_MESSAGE: limits.max_message: expected an integer, got \"\"");
  CHECK(space_error("", env_of({{"HUTOPIA_LIMITS_POST_RATE", "99999999999999999999"}}))
            .find("environment variable HUTOPIA_LIMITS_POST_RATE: limits.post_rate: expected an integer") ==
        0);
  CHECK(
      relay_error("", env_of({{"HUTOPIA_RELAY_REGISTRATION", "maybe"}}))
          .find("environment variable HUTOPIA_RELAY_REGISTRATION: relay.registration: expected a boolean") ==
      0);
  // A value that parses but is invalid also names the variable.
  CHECK(space_error("", env_of({{"HUTOPIA_AUTH_LEEWAY", "31"}})) ==
        "environment variable HUTOPIA_AUTH_LEEWAY: auth.leeway: must be between 0 and 30");
  CHECK(space_error("", env_of({{"HUTOPIA_SPACE_ID", "a b"}}))
            .find("environment variable HUTOPIA_SPACE_ID: space.id: ") == 0);
}

TEST_CASE("config: every key has its variable, and each one is read") {
  for (const ConfigKeyInfo& k : space_config_keys()) {
    std::string value = k.type == "integer" ? (k.key == "max_token_lifetime" ? "400" : "7") : "sqlite://x";
    if (k.key == "listen") value = "127.0.0.1:1";
    if (k.key == "id") value = "x";
    if (k.key.find("relay_") == 0 || k.key == "url") value = k.section == "store" ? "sqlite://x" : "http://x";
    if (k.key == "relay_jwks") value = "http://127.0.0.1/jwks";
    if (k.key == "token") value = "0123456789abcdef0123456789abcdef";
    if (k.type == "boolean") value = "true";
    if (k.section == "log") value = "debug";
    if (k.section == "cluster") {
      const std::map<std::string, std::string> cluster = {{"redis", "redis://127.0.0.1:6379"},
                                                          {"node", "n1"},
                                                          {"heartbeat_ms", "100"},
                                                          {"node_timeout_ms", "7000"},
                                                          {"reconnect_min_ms", "200"},
                                                          {"reconnect_max_ms", "6000"}};
      value = cluster.at(k.key);
    }
    // A cluster needs a shared store.
    const char* base = k.section == "cluster" ? "[store]\nurl = \"postgres://h/db\"\n" : "";
    Result<SpaceConfig> s = parse_space_config(base, "spaced.toml", env_of({{k.env, value}}));
    REQUIRE_MESSAGE(s.ok(), k.env, " ", s.status().to_string());
    Result<SpaceConfig> d = parse_space_config(base, "spaced.toml", kNoEnv);
    // The variable changed something: serialize the two to compare.
    auto dump = [](const SpaceConfig& c) {
      return c.space.id + c.space.name + c.space.listen + c.space.url + c.space.data_dir +
             c.space.plugins_dir + c.space.tls_cert + c.space.tls_key + c.admin.listen + c.admin.token +
             c.auth.relay_issuer + c.auth.relay_jwks + c.auth.relay_login + c.auth.app_issuer +
             c.auth.app_secret + std::to_string(c.auth.max_token_lifetime) + "," +
             std::to_string(c.auth.leeway) + "," + std::to_string(c.auth.app_token_ttl) + "," +
             std::to_string(c.auth.resume_ttl) + c.store.url + "," + std::to_string(c.limits.max_message) +
             "," + std::to_string(c.limits.bad_frames) + "," + std::to_string(c.limits.bad_frame_window) +
             "," + std::to_string(c.limits.backpressure) + "," + std::to_string(c.limits.hello_timeout) +
             "," + std::to_string(c.limits.post_rate) + "," + std::to_string(c.limits.post_burst) + "," +
             std::to_string(c.limits.max_connections) + "," + c.auth.relay_ca_file +
             (c.auth.relay_jwks_insecure ? "i" : "s") + std::to_string(c.limits.max_body) + "," +
             std::to_string(c.limits.max_body_total) + "," + std::to_string(c.limits.widget_rate) + "," +
             std::to_string(c.limits.widget_burst) + "," + std::to_string(c.limits.widget_pending) + "," +
             std::to_string(c.limits.plugin_timeout) + "," + std::to_string(c.limits.http_pending) + "," +
             std::to_string(c.limits.rooms_per_user) + "," + std::to_string(c.limits.dms_per_hour) +
             c.log.level + c.cluster.redis + c.cluster.node + "," + std::to_string(c.cluster.heartbeat_ms) +
             "," + std::to_string(c.cluster.node_timeout_ms) + "," +
             std::to_string(c.cluster.reconnect_min_ms) + "," + std::to_string(c.cluster.reconnect_max_ms);
    };
    CHECK_MESSAGE(dump(*s) != dump(*d), k.env);
  }
  std::vector<std::string> names;
  for (const ConfigKeyInfo& k : relay_config_keys()) names.push_back(k.env);
  CHECK(names == std::vector<std::string>{"HUTOPIA_RELAY_LISTEN",
                                          "HUTOPIA_RELAY_ISSUER",
                                          "HUTOPIA_RELAY_DATA_DIR",
                                          "HUTOPIA_RELAY_TOKEN_TTL",
                                          "HUTOPIA_RELAY_SESSION_TTL",
                                          "HUTOPIA_RELAY_REGISTRATION",
                                          "HUTOPIA_ADMIN_LISTEN",
                                          "HUTOPIA_ADMIN_TOKEN",
                                          "HUTOPIA_STORE_URL",
                                          "HUTOPIA_LOG_LEVEL",
                                          "HUTOPIA_LIMITS_LOGIN_ATTEMPTS_PER_ACCOUNT",
                                          "HUTOPIA_LIMITS_LOGIN_ATTEMPTS_PER_ADDRESS",
                                          "HUTOPIA_LIMITS_LOGIN_WINDOW",
                                          "HUTOPIA_LIMITS_ACCOUNTS_PER_ADDRESS",
                                          "HUTOPIA_LIMITS_ACCOUNT_WINDOW",
                                          "HUTOPIA_LIMITS_TOKENS_PER_USER",
                                          "HUTOPIA_LIMITS_TOKEN_WINDOW",
                                          "HUTOPIA_LIMITS_SPACES_PER_USER",
                                          "HUTOPIA_LIMITS_HASH_WORKERS",
                                          "HUTOPIA_LIMITS_HASH_QUEUE"});
}

TEST_CASE("config: [log] level takes the four level names") {
  Result<SpaceConfig> s = parse_space_config("[log]\nlevel = \"debug\"\n", "spaced.toml", kNoEnv);
  REQUIRE(s.ok());
  CHECK(s->log.level == "debug");
  CHECK(space_error("[log]\nlevel = \"loud\"\n") ==
        "spaced.toml:2: log.level: must be debug, info, warn or error");
  Result<RelayConfig> r = parse_relay_config("", "relayd.toml", kNoEnv);
  REQUIRE(r.ok());
  CHECK(r->admin.listen == "127.0.0.1:8799");
  CHECK(r->log.level == "info");
}

TEST_CASE("config: the relay's [store] url is checked like the space's, and empty means relay.db") {
  Result<RelayConfig> r = parse_relay_config("[relay]\ndata_dir = \"/srv/relay/\"\n", "relayd.toml", kNoEnv);
  REQUIRE(r.ok());
  CHECK(relay_store_url(*r) == "sqlite:///srv/relay/relay.db");
  r = parse_relay_config("[store]\nurl = \"postgresql:///relay?host=/run/pg\"\n", "relayd.toml", kNoEnv);
  REQUIRE(r.ok());
  CHECK(relay_store_url(*r) == "postgresql:///relay?host=/run/pg");
  r = parse_relay_config("[store]\nurl = \"mysql://x\"\n", "relayd.toml", kNoEnv);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "relayd.toml:2: store.url: must start with sqlite:// or postgres://");
}

TEST_CASE("config: process_env reads the process environment") {
  EnvLookup env = process_env();
  CHECK_FALSE(env("HUTOPIA_TEST_SURELY_UNSET_VARIABLE").has_value());
  std::optional<std::string> root = env("HUT_SOURCE_ROOT");
  if (std::getenv("HUT_SOURCE_ROOT") != nullptr) {
    REQUIRE(root.has_value());
    CHECK(*root == std::getenv("HUT_SOURCE_ROOT"));
  }
}

TEST_CASE("config: listen addresses") {
  Result<ListenAddress> a = parse_listen_address("127.0.0.1:8080");
  REQUIRE(a.ok());
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 8080);
  a = parse_listen_address("[::1]:80");
  REQUIRE(a.ok());
  CHECK(a->host == "::1");
  CHECK(a->port == 80);
  a = parse_listen_address("localhost:0");
  REQUIRE(a.ok());
  CHECK(a->host == "localhost");
  CHECK(a->port == 0);
  a = parse_listen_address("[::]:65535");
  REQUIRE(a.ok());
  CHECK(a->host == "::");
  CHECK(a->port == 65535);

  for (const char* bad :
       {"", "8080", ":8080", "host:", "host:65536", "host:-1", "host:+80", "host:80x", "::1:80", "[::1]80",
        "[::1]", "[::1:80", "[nothost]:80", "host name:80", "host:123456", "[]:80"}) {
    Result<ListenAddress> r = parse_listen_address(bad);
    CHECK_MESSAGE(!r.ok(), bad);
    if (!r.ok()) CHECK(r.status().is_invalid_argument());
  }
  CHECK(parse_listen_address("::1:80").status().message() ==
        "an IPv6 address needs brackets, as in [::1]:8080");
  CHECK(parse_listen_address("h:99999").status().message() == "the port must be a number from 0 to 65535");
}

TEST_CASE("config: invalid values name the file, line and key") {
  CHECK(space_error("[auth]\n\nleeway = 31\n") == "spaced.toml:3: auth.leeway: must be between 0 and 30");
  CHECK(space_error("[auth]\nleeway = -1\n") == "spaced.toml:2: auth.leeway: must be between 0 and 30");
  CHECK(parse_space_config("[auth]\nleeway = 0\n", "s", kNoEnv).ok());
  CHECK(space_error("[auth]\nmax_token_lifetime = 0\n") ==
        "spaced.toml:2: auth.max_token_lifetime: must be between 1 and 315360000");
  CHECK(space_error("[auth]\nmax_token_lifetime = 100\n") ==
        "spaced.toml: auth.app_token_ttl: must not exceed auth.max_token_lifetime (100)");
  CHECK(space_error("[auth]\nmax_token_lifetime = 100\napp_token_ttl = 200\n") ==
        "spaced.toml:3: auth.app_token_ttl: must not exceed auth.max_token_lifetime (100)");
  for (const char* key : {"max_message", "bad_frames", "bad_frame_window", "backpressure", "hello_timeout",
                          "post_rate", "post_burst", "max_connections"}) {
    std::string e = space_error(std::string("[limits]\n") + key + " = 0\n");
    CHECK(e.find(std::string("spaced.toml:2: limits.") + key + ": must be between 1 and ") == 0);
  }
  CHECK(space_error("[space]\nlisten = \"localhost\"\n") ==
        "spaced.toml:2: space.listen: expected host:port or [v6]:port, the port is missing");
  CHECK(space_error("[admin]\nlisten = \"127.0.0.1:70000\"\n") ==
        "spaced.toml:2: admin.listen: the port must be a number from 0 to 65535");
  CHECK(space_error("[space]\nid = \"\"\n") == "spaced.toml:2: space.id: must not be empty");
  CHECK(space_error("[space]\nid = \"my space\"\n") ==
        "spaced.toml:2: space.id: may hold only letters, digits, '_', '.' and '-'");
  CHECK(space_error("[space]\nid = \"a/b\"\n").find("spaced.toml:2: space.id:") == 0);
  CHECK(space_error("[store]\nurl = \"mysql://x\"\n") ==
        "spaced.toml:2: store.url: must start with sqlite:// or postgres://");
  CHECK(space_error("[store]\nurl = \"sqlite://\"\n") ==
        "spaced.toml:2: store.url: needs a path or address after sqlite://");
  CHECK(parse_space_config("[store]\nurl = \"postgresql://h/db\"\n", "s", kNoEnv).ok());
  CHECK(parse_space_config("[store]\nurl = \"sqlite:///abs/space.db\"\n", "s", kNoEnv).ok());
  CHECK(space_error("[space]\nurl = \"space.example.org\"\n") ==
        "spaced.toml:2: space.url: must be empty or an http:// or https:// URL");
  CHECK(space_error("[space]\ndata_dir = \"\"\n") == "spaced.toml:2: space.data_dir: must not be empty");
  CHECK(relay_error("[relay]\nissuer = \"\"\n") ==
        "relayd.toml:2: relay.issuer: must be an http:// or https:// URL");
  CHECK(relay_error("[relay]\ntoken_ttl = 0\n") ==
        "relayd.toml:2: relay.token_ttl: must be between 1 and 315360000");
  CHECK(relay_error("[relay]\nlisten = \"[::1]\"\n").find("relayd.toml:2: relay.listen: ") == 0);
}

TEST_CASE("config: the example files load and give the documented values") {
  Result<SpaceConfig> s = load_space_config(test::source_path("examples/spaced.toml"), kNoEnv);
  REQUIRE_MESSAGE(s.ok(), s.status().to_string());
  CHECK(s->space.id == "demo");
  CHECK(s->space.name == "Demo space");
  CHECK(s->space.listen == "127.0.0.1:8080");
  CHECK(s->space.url == "");
  CHECK(s->space.data_dir == "var/space");
  CHECK(s->space.plugins_dir == "plugins");
  CHECK(s->admin.listen == "127.0.0.1:7999");
  CHECK(s->admin.token == "");
  CHECK(s->auth.relay_issuer == "http://127.0.0.1:8700");
  CHECK(s->auth.relay_jwks == "http://127.0.0.1:8700/.well-known/jwks.json");
  CHECK(s->auth.relay_login == "");
  CHECK(s->auth.app_issuer == "my-app");
  CHECK(s->auth.app_secret == "");
  CHECK(s->auth.max_token_lifetime == 300);
  CHECK(s->auth.leeway == 30);
  CHECK(s->auth.app_token_ttl == 300);
  CHECK(s->store.url == "sqlite://var/space/space.db");
  CHECK(s->limits.max_message == 65536);
  CHECK(s->limits.bad_frames == 20);
  CHECK(s->limits.bad_frame_window == 10);
  CHECK(s->limits.backpressure == 1048576);
  CHECK(s->limits.hello_timeout == 10);
  CHECK(s->limits.post_rate == 50);
  CHECK(s->limits.post_burst == 500);
  CHECK(s->limits.max_connections == 100000);

  Result<RelayConfig> r = load_relay_config(test::source_path("examples/relayd.toml"), kNoEnv);
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  CHECK(r->relay.listen == "127.0.0.1:8700");
  CHECK(r->relay.issuer == "http://127.0.0.1:8700");
  CHECK(r->relay.data_dir == "var/relay");
  CHECK(r->relay.token_ttl == 60);
  CHECK(r->relay.session_ttl == 2592000);
  CHECK(r->relay.registration == true);
}

TEST_CASE("config: the example files set every key, and the docs describe every key") {
  std::string docs = test::read_file(test::source_path("docs/configuration.md"));
  REQUIRE_FALSE(docs.empty());
  struct File {
    const char* path;
    std::vector<ConfigKeyInfo> keys;
  };
  for (const File& f : {File{"examples/spaced.toml", space_config_keys()},
                        File{"examples/relayd.toml", relay_config_keys()}}) {
    toml::table t = toml::parse_file(test::source_path(f.path));
    for (const ConfigKeyInfo& k : f.keys) {
      CHECK_MESSAGE(t[k.section][k.key].node() != nullptr, f.path, " lacks ", k.section, ".", k.key);
      std::string row = config_markdown_rows({k}, k.section);
      CHECK_MESSAGE(docs.find(row) != std::string::npos, "docs/configuration.md lacks the row\n", row);
    }
  }
}

TEST_CASE("config: a missing file is named in the error") {
  test::TempDir dir;
  Result<SpaceConfig> s = load_space_config(dir.file("nope.toml"), kNoEnv);
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().is_not_found());
  CHECK(s.status().message() ==
        dir.file("nope.toml") + ": cannot open the configuration file: No such file or directory");
  Result<RelayConfig> r = load_relay_config(dir.path(), kNoEnv);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find(dir.path() + ": cannot read the configuration file") == 0);

  // A file on disk: messages carry the path as given.
  test::write_file(dir.file("spaced.toml"), "[space]\nlisten = 1\n");
  s = load_space_config(dir.file("spaced.toml"), kNoEnv);
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().message() == dir.file("spaced.toml") + ":2: space.listen: expected a string");
  test::write_file(dir.file("spaced.toml"), "[space]\nid = \"x\"\n");
  s = load_space_config(dir.file("spaced.toml"), env_of({{"HUTOPIA_SPACE_NAME", "N"}}));
  REQUIRE(s.ok());
  CHECK(s->space.id == "x");
  CHECK(s->space.name == "N");
}

TEST_CASE("config: a placeholder or short admin token is refused with its file and line") {
  CHECK(space_error("[space]\nid = \"x\"\n[admin]\ntoken = \"change-me\"\n") ==
        "spaced.toml:4: admin.token: is a placeholder, not a secret; make one with `openssl rand -hex 32`");
  CHECK(space_error("[admin]\ntoken = \"CHANGE-ME-please-0123456789abcdef0123456789\"\n")
            .find("spaced.toml:2: admin.token: is a placeholder") == 0);
  CHECK(space_error("[admin]\ntoken = \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n")
            .find("spaced.toml:2: admin.token: is a placeholder") == 0);
  CHECK(space_error("[admin]\ntoken = \"0123456789abcdef0123456789abcde\"\n") ==
        "spaced.toml:2: admin.token: must be at least 32 bytes; make one with `openssl rand -hex 32`");
  CHECK(space_error("", env_of({{"HUTOPIA_ADMIN_TOKEN", "short"}})) ==
        "environment variable HUTOPIA_ADMIN_TOKEN: admin.token: must be at least 32 bytes; make one with "
        "`openssl rand -hex 32`");
  // 32 bytes, and empty (the management API refuses every call), pass.
  CHECK(parse_space_config("[admin]\ntoken = \"0123456789abcdef0123456789abcdef\"\n", "spaced.toml", kNoEnv)
            .ok());
  CHECK(parse_space_config("[admin]\ntoken = \"\"\n", "spaced.toml", kNoEnv).ok());
}

TEST_CASE("config: relay_jwks over http:// is refused off loopback unless relay_jwks_insecure") {
  CHECK(space_error("[auth]\nrelay_issuer = \"http://relay.example.org\"\n"
                    "relay_jwks = \"http://relay.example.org/.well-known/jwks.json\"\n") ==
        "spaced.toml:3: auth.relay_jwks: http:// is accepted only on loopback (the key set would travel "
        "unauthenticated); use https://, or set auth.relay_jwks_insecure = true");
  CHECK(space_error("[auth]\nrelay_jwks = \"http://10.0.0.1:8700/jwks\"\n")
            .find("spaced.toml:2: auth.relay_jwks: http://") == 0);
  CHECK(space_error("[auth]\nrelay_jwks = \"http://127.0.0.1.example.org/jwks\"\n")
            .find("spaced.toml:2: auth.relay_jwks: http://") == 0);
  for (const char* ok : {"http://127.0.0.1:8700/jwks", "http://127.9.8.7/jwks", "http://localhost:1/jwks",
                         "http://[::1]:8700/jwks", "https://relay.example.org/jwks"}) {
    std::string text = std::string("[auth]\nrelay_jwks = \"") + ok + "\"\n";
    CHECK_MESSAGE(parse_space_config(text, "spaced.toml", kNoEnv).ok(), ok);
  }
  CHECK(parse_space_config(
            "[auth]\nrelay_jwks = \"http://relay.example.org/jwks\"\nrelay_jwks_insecure = true\n",
            "spaced.toml", kNoEnv)
            .ok());
}

TEST_CASE("config: [cluster] takes a Redis address, a node id and consistent timings") {
  Result<SpaceConfig> ok = parse_space_config(
      "[cluster]\nredis = \"redis://127.0.0.1:6390\"\nnode = \"a-1\"\nheartbeat_ms = 200\nnode_timeout_ms "
      "= "
      "1500\n[store]\nurl = \"postgres://db.example/space\"\n",
      "spaced.toml", kNoEnv);
  REQUIRE_MESSAGE(ok.ok(), ok.status().to_string());
  CHECK(ok->cluster.redis == "redis://127.0.0.1:6390");
  CHECK(ok->cluster.node == "a-1");
  CHECK(ok->cluster.heartbeat_ms == 200);
  CHECK(ok->cluster.node_timeout_ms == 1500);
  CHECK(parse_space_config(
            "[cluster]\nredis = \"unix:///run/redis.sock\"\n[store]\nurl = \"postgresql:///space\"\n",
            "spaced.toml", kNoEnv)
            .ok());
  // The nodes of a cluster share one store: a SQLite file of its own each is refused.
  for (const char* store : {"", "[store]\nurl = \"sqlite://space.db\"\n"}) {
    Result<SpaceConfig> alone = parse_space_config(
        std::string("[cluster]\nredis = \"redis://127.0.0.1:6390\"\n") + store, "spaced.toml", kNoEnv);
    REQUIRE_FALSE(alone.ok());
    CHECK(alone.status().message().find("cluster.redis: the nodes of a cluster share one store") !=
          std::string::npos);
  }
  Result<RedisAddress> tcp = parse_redis_address("redis://localhost");
  REQUIRE(tcp.ok());
  CHECK(tcp->host == "localhost");
  CHECK(tcp->port == 6379);
  Result<RedisAddress> unix_socket = parse_redis_address("unix:///tmp/r.sock");
  REQUIRE(unix_socket.ok());
  CHECK(unix_socket->unix_path == "/tmp/r.sock");
  struct Bad {
    const char* text;
    const char* error;
  };
  for (const Bad& b : {
           Bad{"[cluster]\nredis = \"http://127.0.0.1:6379\"\n",
               "spaced.toml:2: cluster.redis: must be redis://"},
           Bad{"[cluster]\nredis = \"unix://relative.sock\"\n",
               "spaced.toml:2: cluster.redis: a unix:// Redis"},
           Bad{"[cluster]\nredis = \"redis://h:6379/0\"\n",
               "spaced.toml:2: cluster.redis: a redis:// address"},
           Bad{"[cluster]\nredis = \"redis://h:99999\"\n", "spaced.toml:2: cluster.redis: bad"},
           Bad{"[cluster]\nnode = \"a b\"\n", "spaced.toml:2: cluster.node: may hold only"},
           Bad{"[cluster]\nheartbeat_ms = 1000\nnode_timeout_ms = 2000\n",
               "spaced.toml:3: cluster.node_timeout_ms: must exceed twice"},
           Bad{"[cluster]\nreconnect_min_ms = 900\nreconnect_max_ms = 800\n",
               "spaced.toml:2: cluster.reconnect_min_ms: must not exceed"},
       }) {
    Result<SpaceConfig> r = parse_space_config(b.text, "spaced.toml", kNoEnv);
    REQUIRE_FALSE_MESSAGE(r.ok(), b.text);
    CHECK_MESSAGE(std::string(r.status().message()).find(b.error) == 0, r.status().to_string());
  }
}

}  // namespace
}  // namespace hut
