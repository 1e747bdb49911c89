// Loading spaced.toml and relayd.toml. One schema per file (a table of keys
// with their type, place in the struct, limits and description) drives
// parsing, environment overrides, validation and the documentation rows.
#include <arpa/inet.h>

#include <hutopia/config.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <toml++/toml.h>

#include "config/schema.h"
#include "util/url.h"

namespace hut {
namespace {

// What a string value must look like beyond being a string.
enum class Check {
  kNone,
  kNonEmpty,
  kListen,          // parse_listen_address
  kListenOrEmpty,   // the same, or empty: no such listener
  kSpaceId,         // non-empty, [A-Za-z0-9_.-]
  kStoreUrl,        // empty (derived from data_dir), sqlite://<path> or postgres://...
  kHttpUrl,         // http:// or https://
  kHttpUrlOrEmpty,  // the same, or empty
  kSecret,          // empty, or at least 32 bytes and not a known placeholder
  kLogLevel,        // debug, info, warn or error
  kRedisOrEmpty,    // empty, redis://host:port or unix:///path
  kIdOrEmpty,       // empty, or as kSpaceId
};

// What the key table says of a key beyond for_each_key (config.h), which
// gives its name, its type and its field.
struct KeyRow {
  std::string_view key;  // "space.listen"
  std::string_view description;
  Check check = Check::kNone;
  int64_t min = 0;  // integers: the accepted range, inclusive
  int64_t max = 0;
};

constexpr int64_t kMaxSeconds = 315360000;  // ten years
constexpr int64_t kMaxBytes = int64_t{1} << 30;
constexpr int64_t kMaxCount = 1000000000;

// The rows both files share.
constexpr KeyRow kAdminTokenRow{
    "admin.token",
    "Bearer token of the admin listener (a space's management API), at least 32 bytes (`openssl rand -hex "
    "32`); empty: every call but `GET /healthz` is refused.",
    Check::kSecret};
constexpr KeyRow kStoreUrlRow{
    "store.url",
    "The durable store: `sqlite://<path>` (relative to the working directory; `sqlite:///abs/path` for an "
    "absolute one) or `postgres://...`; empty: `sqlite://<data_dir>/space.db` (a relay: `relay.db`).",
    Check::kStoreUrl};
constexpr KeyRow kLogLevelRow{
    "log.level", "Least severe log records written: `debug`, `info`, `warn` or `error`; a reload applies it.",
    Check::kLogLevel};

const KeyRow kSpaceRows[] = {
    {"space.id",
     "The space's id: the `aud` every token must carry (with a relay, the id it assigned when the space was "
     "registered); letters, digits, `_`, `.` and `-`.",
     Check::kSpaceId},
    {"space.name", "The name shown to users."},
    {"space.listen",
     "Public listener (pages, HTTP API, the widget bus at `/bus`), `host:port` or `[v6]:port`; port 0 picks "
     "a "
     "free port.",
     Check::kListen},
    {"space.url", "Public URL of the space as browsers reach it; empty: `http://<listen>`.",
     Check::kHttpUrlOrEmpty},
    {"space.data_dir", "Folder for SQLite files and caches; relative paths start at the working directory.",
     Check::kNonEmpty},
    {"space.plugins_dir",
     "Folder of plugin files (`<name>.so`, `<name>.toml`); relative paths start at the working directory.",
     Check::kNonEmpty},
    {"space.tls_cert",
     "PEM certificate chain of the public listener; with `tls_key` it serves HTTPS and `wss://` only; empty: "
     "plain HTTP."},
    {"space.tls_key", "PEM private key of `tls_cert`."},
    {"admin.listen",
     "Management API listener, `host:port`; keep it on loopback or a private network; empty: no management "
     "API.",
     Check::kListenOrEmpty},
    kAdminTokenRow,
    {"auth.relay_issuer",
     "The `iss` relay tokens must carry (the relay's public URL); empty: no relay is trusted."},
    {"auth.relay_jwks",
     "URL of the relay's key set, `<relay>/.well-known/jwks.json`; `https://` (certificates checked), or "
     "`http://` on loopback only unless `relay_jwks_insecure`.",
     Check::kHttpUrlOrEmpty},
    {"auth.relay_jwks_insecure",
     "Allow an `http://` `relay_jwks` on a host other than loopback (the key set then travels "
     "unauthenticated "
     "and is never saved)."},
    {"auth.relay_ca_file",
     "PEM file of the certificate authorities trusted for an `https://` `relay_jwks`; empty: the system "
     "store."},
    {"auth.relay_login", "The relay's login page for browsers; empty: `<relay_issuer>/login`.",
     Check::kHttpUrlOrEmpty},
    {"auth.app_issuer", "The `iss` of HS256 app tokens made by an embedding app's backend (optional)."},
    {"auth.app_secret", "HS256 secret shared with that backend (optional); empty: app tokens are refused."},
    {"auth.max_token_lifetime", "Longest lifetime (`exp - iat`) accepted in a token, seconds.", Check::kNone,
     1, kMaxSeconds},
    {"auth.leeway", "Clock skew allowed when checking `exp`, `nbf` and `iat`, seconds.", Check::kNone, 0, 30},
    {"auth.app_token_ttl",
     "Lifetime of tokens from `POST /api/v1/tokens` without `ttl`, seconds; at most `max_token_lifetime`.",
     Check::kNone, 1, kMaxSeconds},
    {"auth.resume_ttl", "Lifetime of the single-use resume credential a `welcome` carries, seconds.",
     Check::kNone, 1, kMaxSeconds},
    kStoreUrlRow,
    {"cluster.redis",
     "Redis between the nodes of one space: `redis://host:port` or `unix:///path/to/socket`; empty: this "
     "spaced is the whole space. The nodes share one PostgreSQL store (`[store] url`).",
     Check::kRedisOrEmpty},
    {"cluster.node",
     "This node's id, unique in the cluster (letters, digits, `_`, `.` and `-`); empty: host name and pid.",
     Check::kIdOrEmpty},
    {"cluster.heartbeat_ms",
     "How often a node tells the others it is alive (with its online users), milliseconds.", Check::kNone, 50,
     60000},
    {"cluster.node_timeout_ms",
     "A node not heard from this long is gone and its users offline, milliseconds; more than twice "
     "`heartbeat_ms`.",
     Check::kNone, 100, 600000},
    {"cluster.reconnect_min_ms", "First wait before connecting to Redis again after losing it, milliseconds.",
     Check::kNone, 10, 60000},
    {"cluster.reconnect_max_ms",
     "Longest wait between attempts (each failure doubles the wait up to it), milliseconds.", Check::kNone,
     10, 600000},
    kLogLevelRow,
    {"limits.max_message",
     "Largest WebSocket message (all fragments), bytes; a bigger one closes the connection with 1009.",
     Check::kNone, 1, kMaxBytes},
    {"limits.bad_frames",
     "Bad frames tolerated within `bad_frame_window` before the connection is closed with 1008.",
     Check::kNone, 1, kMaxCount},
    {"limits.bad_frame_window", "The window of `bad_frames`, seconds.", Check::kNone, 1, kMaxSeconds},
    {"limits.backpressure", "Unsent bytes one connection may have queued before it is closed with 4008.",
     Check::kNone, 1, kMaxBytes},
    {"limits.hello_timeout", "Seconds a new connection has to authenticate (`hello`) before it gets 4001.",
     Check::kNone, 1, 3600},
    {"limits.post_rate", "Posts per second one session may sustain; over it: `rate_limited`.", Check::kNone,
     1, kMaxCount},
    {"limits.post_burst", "Posts one session may send at once before `post_rate` applies.", Check::kNone, 1,
     kMaxCount},
    {"limits.max_connections",
     "Connections to the public listener (HTTP and WebSocket) accepted at once; more are refused.",
     Check::kNone, 1, kMaxCount},
    {"limits.max_body", "Largest HTTP request body, bytes; over it: 413.", Check::kNone, 1, kMaxBytes},
    {"limits.max_body_total",
     "HTTP request body bytes buffered at once across all connections; a request that would pass it: 503.",
     Check::kNone, 1, kMaxBytes},
    {"limits.widget_rate", "`widget` ops per second one session may sustain; over it: `rate_limited`.",
     Check::kNone, 1, kMaxCount},
    {"limits.widget_burst", "`widget` ops one session may send at once before `widget_rate` applies.",
     Check::kNone, 1, kMaxCount},
    {"limits.widget_pending",
     "`widget` ops of one session waiting for their plugin at once; over it: `rate_limited`.", Check::kNone,
     1, kMaxCount},
    {"limits.plugin_timeout",
     "Seconds a plugin has to answer a `widget` op (then `unavailable`) or an HTTP request (then 504).",
     Check::kNone, 1, 3600},
    {"limits.http_pending", "HTTP requests waiting for plugins at once; over it: 503.", Check::kNone, 1,
     kMaxCount},
    {"limits.rooms_per_user",
     "Rooms one user may have created with `create` that still exist (direct-message rooms and rooms of the "
     "management API do not count); over it: `rate_limited`; 0: no limit.",
     Check::kNone, 0, kMaxCount},
    {"limits.dms_per_hour",
     "New direct-message rooms one user may open per hour (opening an existing one is free); over it: "
     "`rate_limited`.",
     Check::kNone, 1, kMaxCount},
};

const KeyRow kRelayRows[] = {
    {"relay.listen", "Listener of the relay, `host:port` or `[v6]:port`; port 0 picks a free port.",
     Check::kListen},
    {"relay.issuer", "Public URL of the relay: the `iss` of its tokens and the base of its login page.",
     Check::kHttpUrl},
    {"relay.data_dir",
     "Folder for the accounts database, the signing key and avatars; relative paths start at the working "
     "directory.",
     Check::kNonEmpty},
    {"relay.token_ttl", "Lifetime of the relay tokens it issues, seconds.", Check::kNone, 1, kMaxSeconds},
    {"relay.session_ttl", "Lifetime of a login session, seconds.", Check::kNone, 1, kMaxSeconds},
    {"relay.registration",
     "Whether anyone may create an account (`POST /api/v1/accounts`); false: only existing accounts log in."},
    {"admin.listen",
     "Admin listener (`GET /metrics`, `GET /healthz`), `host:port`; keep it on loopback or a private "
     "network.",
     Check::kListen},
    kAdminTokenRow,
    kStoreUrlRow,
    kLogLevelRow,
    {"limits.login_attempts_per_account",
     "Logins (right or wrong) for one username within `login_window`; over it: 429 with `Retry-After`. A "
     "successful login gives the account its budget back.",
     Check::kNone, 1, kMaxCount},
    {"limits.login_attempts_per_address",
     "Logins (any username) from one client address within `login_window`; over it: 429 with `Retry-After`.",
     Check::kNone, 1, kMaxCount},
    {"limits.login_window", "The window of the login budgets, seconds; a budget refills evenly over it.",
     Check::kNone, 1, kMaxSeconds},
    {"limits.accounts_per_address",
     "New accounts from one client address within `account_window`; over it: 429 with `Retry-After`.",
     Check::kNone, 1, kMaxCount},
    {"limits.account_window", "The window of `accounts_per_address`, seconds.", Check::kNone, 1, kMaxSeconds},
    {"limits.tokens_per_user",
     "Relay tokens one user may get (API and login page together) within `token_window`; over it: 429 with "
     "`Retry-After`.",
     Check::kNone, 1, kMaxCount},
    {"limits.token_window", "The window of `tokens_per_user`, seconds.", Check::kNone, 1, kMaxSeconds},
    {"limits.spaces_per_user", "Spaces one account may register; over it: 403 `too_many_spaces`.",
     Check::kNone, 1, kMaxCount},
    {"limits.hash_workers",
     "Password hashes (argon2id, 19 MiB each) computed at once; keep it below the thread pool's size "
     "(`UV_THREADPOOL_SIZE`, 4 by default) so other routes always find a thread.",
     Check::kNone, 1, 64},
    {"limits.hash_queue",
     "Requests (logins, sign-ups) waiting for a hash worker; beyond it: 503 with `Retry-After`.",
     Check::kNone, 0, kMaxCount},
};

// A key of a file: its row, and from for_each_key its name and type.
template <typename C>
struct Key {
  std::string_view section;
  std::string_view name;
  size_t type;  // 0: string, 1: integer, 2: boolean (the alternatives of Field)
  std::string_view description;
  Check check;
  int64_t min;
  int64_t max;
};

using Field = std::variant<std::string*, int64_t*, bool*>;

template <typename C>
std::span<const KeyRow> rows();
template <>
std::span<const KeyRow> rows<SpaceConfig>() {
  return kSpaceRows;
}
template <>
std::span<const KeyRow> rows<RelayConfig>() {
  return kRelayRows;
}

// The keys of C in for_each_key's order, each with its row (an empty one
// when the table lacks it: config_key_table_errors() reports that).
template <typename C>
const std::vector<Key<C>>& keys_of() {
  static const std::vector<Key<C>> keys = [] {
    std::vector<Key<C>> out;
    C config;
    for_each_key(config, [&](std::string_view full, auto& value) {
      Field field = &value;
      std::span<const KeyRow> table = rows<C>();
      auto row = std::find_if(table.begin(), table.end(), [&](const KeyRow& r) { return r.key == full; });
      KeyRow r = row == table.end() ? KeyRow{full, {}} : *row;
      size_t dot = full.find('.');
      out.push_back(
          {full.substr(0, dot), full.substr(dot + 1), field.index(), r.description, r.check, r.min, r.max});
    });
    return out;
  }();
  return keys;
}

// "section.key" names `key`.
template <typename C>
bool is_named(const Key<C>& key, std::string_view full) {
  size_t n = key.section.size();
  return full.size() == n + 1 + key.name.size() && full.substr(0, n) == key.section && full[n] == '.' &&
         full.substr(n + 1) == key.name;
}

// The field of `config` that `key` sets.
template <typename C>
Field field_of(const Key<C>& key, C& config) {
  Field out;
  for_each_key(config, [&](std::string_view full, auto& value) {
    if (is_named(key, full)) out = &value;
  });
  return out;
}

template <typename C>
const Key<C>* find_key(std::string_view full) {
  for (const Key<C>& k : keys_of<C>()) {
    if (is_named(k, full)) return &k;
  }
  return nullptr;
}

// Where a value came from, for messages.
struct Origin {
  uint32_t line = 0;  // in the file; 0: unknown or not from the file
  std::string env;    // the variable, when the environment set it
};

std::string where(std::string_view source, const Origin& origin) {
  if (!origin.env.empty()) return "environment variable " + origin.env;
  std::string out(source);
  if (origin.line > 0) out += ":" + std::to_string(origin.line);
  return out;
}

template <typename C>
std::string key_name(const Key<C>& key) {
  return std::string(key.section) + "." + std::string(key.name);
}

template <typename C>
std::string env_name(const Key<C>& key) {
  std::string out = "HUTOPIA_" + std::string(key.section) + "_" + std::string(key.name);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string type_name(size_t index) {
  switch (index) {
    case 0:
      return "string";
    case 1:
      return "integer";
    default:
      return "boolean";
  }
}

std::string expected(size_t index) {
  return index == 1 ? "expected an integer" : "expected a " + type_name(index);
}

// A value of the environment, shown in a message; never a string's value,
// which may be a secret.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text.substr(0, 40)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > 40) out += "...";
  return out + "\"";
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool parse_int(std::string_view text, int64_t* out) {
  text = trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool parse_bool(std::string_view text, bool* out) {
  std::string t(trim(text));
  for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "true" || t == "1" || t == "yes" || t == "on") {
    *out = true;
    return true;
  }
  if (t == "false" || t == "0" || t == "no" || t == "off") {
    *out = false;
    return true;
  }
  return false;
}

bool is_http_url(std::string_view s) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (s.size() > scheme.size() && s.substr(0, scheme.size()) == scheme) {
      return std::none_of(s.begin(), s.end(), [](char c) { return c <= ' ' || c == 0x7f; });
    }
  }
  return false;
}

// A value copied from an example rather than made: "change-me" and the like,
// or one character repeated.
bool is_placeholder(std::string_view v) {
  std::string lower(v);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view word : {"change-me", "changeme", "change_me", "replace-me", "replaceme", "replace_me",
                                "placeholder", "your-token", "your_token", "secret-here"}) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return std::all_of(v.begin(), v.end(), [&](char c) { return c == v.front(); });
}

// The host of an http:// or https:// URL is loopback: localhost, 127.0.0.0/8
// or [::1].
bool url_host_is_loopback(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return false;
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  std::string host;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return false;
    host = std::string(rest.substr(1, close - 1));
    in6_addr a6{};
    return inet_pton(AF_INET6, host.c_str(), &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
  }
  host = std::string(rest.substr(0, rest.find(':')));
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (host == "localhost") return true;
  in_addr a4{};
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

// Why a string value is refused, or empty when it is fine.
std::string check_string(Check check, const std::string& v) {
  switch (check) {
    case Check::kNone:
      return "";
    case Check::kNonEmpty:
      return v.empty() ? "must not be empty" : "";
    case Check::kListen:
    case Check::kListenOrEmpty: {
      if (v.empty() && check == Check::kListenOrEmpty) return "";
      Result<ListenAddress> a = parse_listen_address(v);
      return a.ok() ? "" : std::string(a.status().message());
    }
    case Check::kRedisOrEmpty: {
      if (v.empty()) return "";
      Result<RedisAddress> a = parse_redis_address(v);
      return a.ok() ? "" : std::string(a.status().message());
    }
    case Check::kIdOrEmpty:
      if (v.empty()) return "";
      return check_string(Check::kSpaceId, v);
    case Check::kSpaceId: {
      if (v.empty()) return "must not be empty";
      bool ok = std::all_of(v.begin(), v.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '.' || c == '-';
      });
      return ok ? "" : "may hold only letters, digits, '_', '.' and '-'";
    }
    case Check::kStoreUrl: {
      if (v.empty()) return "";
      std::string_view s = v;
      for (std::string_view scheme : {"sqlite://", "postgres://", "postgresql://"}) {
        if (s.substr(0, scheme.size()) == scheme) {
          return s.size() > scheme.size() ? "" : "needs a path or address after " + std::string(scheme);
        }
      }
      return "must start with sqlite:// or postgres://";
    }
    case Check::kHttpUrl:
      return is_http_url(v) ? "" : "must be an http:// or https:// URL";
    case Check::kHttpUrlOrEmpty:
      return v.empty() || is_http_url(v) ? "" : "must be empty or an http:// or https:// URL";
    case Check::kLogLevel:
      return v == "debug" || v == "info" || v == "warn" || v == "error"
                 ? ""
                 : "must be debug, info, warn or error";
    case Check::kSecret:
      if (v.empty()) return "";
      if (is_placeholder(v)) return "is a placeholder, not a secret; make one with `openssl rand -hex 32`";
      if (v.size() < 32) return "must be at least 32 bytes; make one with `openssl rand -hex 32`";
      return "";
  }
  return "";
}

// What a file starts from: the struct's defaults, except where the daemon's
// default differs from a program's. A space built in code has no management
// API unless it asks for one; spaced listens on 127.0.0.1:7999.
template <typename C>
C file_defaults() {
  C config;
  if constexpr (std::is_same_v<C, SpaceConfig>) config.admin.listen = "127.0.0.1:7999";
  return config;
}

template <typename C>
std::string default_text(const Key<C>& key) {
  C config = file_defaults<C>();
  switch (key.type) {
    case 0:
      return "\"" + *std::get<0>(field_of(key, config)) + "\"";
    case 1:
      return std::to_string(*std::get<1>(field_of(key, config)));
    default:
      return *std::get<2>(field_of(key, config)) ? "true" : "false";
  }
}

// The line of a node or key in the file, 0 when toml++ does not know it.
uint32_t line_of(const toml::source_region& region) { return region.begin.line; }

template <typename C>
std::string known_sections(std::span<const Key<C>> keys) {
  std::string out;
  for (const Key<C>& k : keys) {
    std::string s = "[" + std::string(k.section) + "]";
    if (out.find(s) == std::string::npos) out += (out.empty() ? "" : ", ") + s;
  }
  return out;
}

// Sets the key from a TOML value; an error message when the type is wrong.
template <typename C>
std::string set_from_toml(const Key<C>& key, const toml::node& node, C& config) {
  switch (key.type) {
    case 0:
      if (!node.is_string()) return expected(0);
      *std::get<0>(field_of(key, config)) = node.as_string()->get();
      return "";
    case 1:
      if (!node.is_integer()) return expected(1);
      *std::get<1>(field_of(key, config)) = node.as_integer()->get();
      return "";
    default:
      if (!node.is_boolean()) return expected(2);
      *std::get<2>(field_of(key, config)) = node.as_boolean()->get();
      return "";
  }
}

// Sets the key from an environment variable's text; an error message when it
// does not parse as the key's type.
template <typename C>
std::string set_from_env(const Key<C>& key, const std::string& text, C& config) {
  switch (key.type) {
    case 0:
      *std::get<0>(field_of(key, config)) = text;
      return "";
    case 1:
      if (!parse_int(text, std::get<1>(field_of(key, config)))) return expected(1) + ", got " + quoted(text);
      return "";
    default:
      if (!parse_bool(text, std::get<2>(field_of(key, config)))) {
        return expected(2) + " (true, false, 1, 0, yes, no, on, off), got " + quoted(text);
      }
      return "";
  }
}

template <typename C>
std::string validate(const Key<C>& key, C& config) {
  switch (key.type) {
    case 0:
      return check_string(key.check, *std::get<0>(field_of(key, config)));
    case 1: {
      int64_t v = *std::get<1>(field_of(key, config));
      if (v >= key.min && v <= key.max) return "";
      return "must be between " + std::to_string(key.min) + " and " + std::to_string(key.max);
    }
    default:
      return "";
  }
}

struct FileError {
  uint32_t line;
  std::string message;
};

// Reads the TOML document into `config`, recording where each key was set.
template <typename C>
Status apply_file(std::string_view text, std::string_view source, std::span<const Key<C>> keys, C& config,
                  std::vector<Origin>& origins) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    Origin at{line_of(e.source()), {}};
    return Status::invalid_argument(where(source, at) + ": syntax error: " + std::string(e.description()));
  } catch (const std::exception& e) {
    return Status::internal(std::string(source) + ": " + e.what());
  }

  // toml++ keeps keys sorted by name; report the first problem in file order.
  std::vector<FileError> errors;
  auto fail = [&](uint32_t line, std::string message) {
    errors.push_back({line, where(source, Origin{line, {}}) + ": " + std::move(message)});
  };
  for (auto&& [section_key, section_node] : root) {
    std::string section(section_key.str());
    uint32_t section_line = line_of(section_key.source());
    if (section_line == 0) section_line = line_of(section_node.source());
    bool known = std::any_of(keys.begin(), keys.end(), [&](const Key<C>& k) { return k.section == section; });
    const toml::table* table = section_node.as_table();
    if (!known) {
      if (table) {
        fail(section_line, "unknown section [" + section + "] (known: " + known_sections(keys) + ")");
      } else {
        fail(section_line,
             "unknown key " + section + ": keys belong in a section (" + known_sections(keys) + ")");
      }
      continue;
    }
    if (!table) {
      fail(section_line, section + ": expected a table");
      continue;
    }
    for (auto&& [name_key, node] : *table) {
      std::string name(name_key.str());
      uint32_t line = line_of(name_key.source());
      if (line == 0) line = line_of(node.source());
      auto it = std::find_if(keys.begin(), keys.end(),
                             [&](const Key<C>& k) { return k.section == section && k.name == name; });
      if (it == keys.end()) {
        fail(line, "unknown key " + section + "." + name);
        continue;
      }
      std::string error = set_from_toml(*it, node, config);
      if (!error.empty()) {
        fail(line, key_name(*it) + ": " + error);
        continue;
      }
      origins[static_cast<size_t>(it - keys.begin())] = Origin{line, {}};
    }
  }
  if (errors.empty()) return Status();
  auto first = std::min_element(errors.begin(), errors.end(), [](const FileError& a, const FileError& b) {
    return (a.line == 0 ? UINT32_MAX : a.line) < (b.line == 0 ? UINT32_MAX : b.line);
  });
  return Status::invalid_argument(first->message);
}

// The one set of rules for a configuration, read from a file or built in
// code: every key's own check, then the rules between keys. `origins` says
// where each key was set (empty for a configuration built in code), so that a
// message reads "spaced.toml:4: space.listen: ..." for a file and
// "space.listen: ..." for code.
template <typename C>
Status check_config(const C& checked, std::string_view source, const std::vector<Origin>& origins,
                    std::span<const Key<C>> keys) {
  C config = checked;  // the field accessors take a mutable config
  auto at = [&](size_t i) {
    std::string w = where(source, i < origins.size() ? origins[i] : Origin{});
    return w.empty() ? w : w + ": ";
  };
  auto at_key = [&](std::string_view section, std::string_view name) {
    auto it = std::find_if(keys.begin(), keys.end(),
                           [&](const Key<C>& k) { return k.section == section && k.name == name; });
    return at(static_cast<size_t>(it - keys.begin()));
  };
  for (size_t i = 0; i < keys.size(); ++i) {
    std::string error = validate(keys[i], config);
    if (!error.empty()) return Status::invalid_argument(at(i) + key_name(keys[i]) + ": " + error);
  }
  if constexpr (std::is_same_v<C, SpaceConfig>) {
    const std::string& jwks = config.auth.relay_jwks;
    if (jwks.rfind("http://", 0) == 0 && !url_host_is_loopback(jwks) && !config.auth.relay_jwks_insecure) {
      return Status::invalid_argument(
          at_key("auth", "relay_jwks") +
          "auth.relay_jwks: http:// is accepted only on loopback (the key set would "
          "travel unauthenticated); use https://, or set auth.relay_jwks_insecure = "
          "true");
    }
    if (config.cluster.node_timeout_ms <= 2 * config.cluster.heartbeat_ms) {
      return Status::invalid_argument(at_key("cluster", "node_timeout_ms") +
                                      "cluster.node_timeout_ms: must exceed twice cluster.heartbeat_ms");
    }
    // The nodes of a cluster are one space only on one shared store: with a
    // SQLite file each, a room id would name a different room on every node.
    const std::string& store = config.store.url;
    if (!config.cluster.redis.empty() && store.rfind("postgres://", 0) != 0 &&
        store.rfind("postgresql://", 0) != 0) {
      return Status::invalid_argument(at_key("cluster", "redis") +
                                      "cluster.redis: the nodes of a cluster share one store; set store.url "
                                      "to a postgres:// URL");
    }
    if (config.cluster.reconnect_min_ms > config.cluster.reconnect_max_ms) {
      return Status::invalid_argument(at_key("cluster", "reconnect_min_ms") +
                                      "cluster.reconnect_min_ms: must not exceed cluster.reconnect_max_ms");
    }
    if (config.auth.app_token_ttl > config.auth.max_token_lifetime) {
      return Status::invalid_argument(at_key("auth", "app_token_ttl") +
                                      "auth.app_token_ttl: must not exceed auth.max_token_lifetime (" +
                                      std::to_string(config.auth.max_token_lifetime) + ")");
    }
  }
  return Status();
}

template <typename C>
Result<C> parse_config(std::string_view text, std::string_view source, const EnvLookup& env,
                       std::span<const Key<C>> keys) {
  C config = file_defaults<C>();
  std::vector<Origin> origins(keys.size());
  HUT_RETURN_IF_ERROR(apply_file(text, source, keys, config, origins));

  if (env) {
    for (size_t i = 0; i < keys.size(); ++i) {
      std::string name = env_name(keys[i]);
      std::optional<std::string> value = env(name);
      if (!value) continue;
      origins[i] = Origin{0, name};
      std::string error = set_from_env(keys[i], *value, config);
      if (!error.empty())
        return Status::invalid_argument(where(source, origins[i]) + ": " + key_name(keys[i]) + ": " + error);
    }
  }
  HUT_RETURN_IF_ERROR(check_config<C>(config, source, origins, keys));
  if constexpr (std::is_same_v<C, SpaceConfig>) config.store.url = space_store_url(config);
  return config;
}

Result<std::string> read_whole_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    int err = errno;
    std::string msg = path + ": cannot open the configuration file: " + std::strerror(err);
    return err == ENOENT ? Status::not_found(msg) : Status::io_error(msg);
  }
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  bool failed = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (failed) return Status::io_error(path + ": cannot read the configuration file: " + std::strerror(err));
  return out;
}

template <typename C>
std::vector<ConfigKeyInfo> describe(std::span<const Key<C>> keys) {
  std::vector<ConfigKeyInfo> out;
  for (const Key<C>& k : keys) {
    out.push_back({std::string(k.section), std::string(k.name), type_name(k.type), default_text(k),
                   env_name(k), std::string(k.description)});
  }
  return out;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v != nullptr) return std::string(v);
    return read_credential(name);
  };
}

std::optional<std::string> read_credential(const std::string& env_name) {
  const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
  constexpr std::string_view kPrefix = "HUTOPIA_";
  if (dir == nullptr || *dir == '\0' || env_name.rfind(kPrefix, 0) != 0) return std::nullopt;
  std::string id = env_name.substr(kPrefix.size());
  for (char& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::FILE* f = std::fopen((std::string(dir) + "/" + id).c_str(), "rb");
  if (f == nullptr) return std::nullopt;
  std::string out;
  char buf[4096];
  size_t n;
  // A credential is a short secret; 64 KiB is far beyond any.
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && out.size() < 65536) out.append(buf, n);
  std::fclose(f);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// The values of an options object, in the library's struct.
struct ConfigOptions::Impl {
  virtual ~Impl() = default;
  virtual std::unique_ptr<Impl> clone() const = 0;
  // `value`'s alternative is the type: 0 string, 1 integer, 2 boolean.
  virtual Status set(std::string_view key, const std::variant<std::string_view, int64_t, bool>& value) = 0;
  virtual Result<std::variant<std::string, int64_t, bool>> get(std::string_view key) const = 0;
  virtual Status validate() const = 0;
};

namespace {

template <typename C>
struct OptionsImpl final : ConfigOptions::Impl {
  C config;

  std::unique_ptr<Impl> clone() const override { return std::make_unique<OptionsImpl>(*this); }

  Status set(std::string_view name, const std::variant<std::string_view, int64_t, bool>& value) override {
    const Key<C>* key = find_key<C>(name);
    if (key == nullptr) return Status::invalid_argument("unknown key " + std::string(name));
    if (key->type != value.index())
      return Status::invalid_argument(key_name(*key) + ": " + expected(key->type));
    C next = config;
    std::visit(
        [&](auto* field) {
          using T = std::remove_pointer_t<decltype(field)>;
          if constexpr (std::is_same_v<T, std::string>) {
            *field = std::string(std::get<std::string_view>(value));
          } else {
            *field = std::get<T>(value);
          }
        },
        field_of(*key, next));
    std::string error = hut::validate(*key, next);
    if (!error.empty()) return Status::invalid_argument(key_name(*key) + ": " + error);
    config = std::move(next);
    return Status();
  }

  Result<std::variant<std::string, int64_t, bool>> get(std::string_view name) const override {
    const Key<C>* key = find_key<C>(name);
    if (key == nullptr) return Status::invalid_argument("unknown key " + std::string(name));
    C copy = config;
    return std::visit([](auto* field) { return std::variant<std::string, int64_t, bool>(*field); },
                      field_of(*key, copy));
  }

  Status validate() const override { return check_config<C>(config, {}, {}, keys_of<C>()); }
};

template <typename C>
C& config_of(ConfigOptions& options) {
  return const_cast<OptionsImpl<C>&>(static_cast<const OptionsImpl<C>&>(options.impl())).config;
}

// One alternative of a value read by key; kInvalidArgument naming the key's
// type when it is another.
template <size_t I>
auto get_as(const ConfigOptions::Impl& impl, std::string_view key)
    -> Result<std::variant_alternative_t<I, std::variant<std::string, int64_t, bool>>> {
  auto value = impl.get(key);
  if (!value.ok()) return value.status();
  if (value->index() != I) {
    return Status::invalid_argument(std::string(key) + ": the key is a " + type_name(value->index()) +
                                    ", not a " + type_name(I));
  }
  return std::get<I>(std::move(*value));
}

template <typename C>
Status parse_into(std::string_view text, std::string_view source, const EnvLookup& env, ConfigOptions* out) {
  Result<C> config = parse_config<C>(text, source, env, keys_of<C>());
  if (!config.ok()) return config.status();
  config_of<C>(*out) = std::move(*config);
  return Status();
}

template <typename C>
Status load_into(const std::string& path, const EnvLookup& env, ConfigOptions* out) {
  Result<std::string> text = read_whole_file(path);
  if (!text.ok()) return text.status();
  return parse_into<C>(*text, path, env, out);
}

}  // namespace

ConfigOptions::ConfigOptions(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ConfigOptions::ConfigOptions(const ConfigOptions& other) : impl_(other.impl_->clone()) {}
ConfigOptions& ConfigOptions::operator=(const ConfigOptions& other) {
  if (this != &other) impl_ = other.impl_->clone();
  return *this;
}
ConfigOptions::~ConfigOptions() = default;

Status ConfigOptions::set(std::string_view key, std::string_view value) { return impl_->set(key, value); }
Status ConfigOptions::set(std::string_view key, int64_t value) { return impl_->set(key, value); }
Status ConfigOptions::set(std::string_view key, bool value) { return impl_->set(key, value); }
Result<std::string> ConfigOptions::get_string(std::string_view key) const { return get_as<0>(*impl_, key); }
Result<int64_t> ConfigOptions::get_int(std::string_view key) const { return get_as<1>(*impl_, key); }
Result<bool> ConfigOptions::get_bool(std::string_view key) const { return get_as<2>(*impl_, key); }
Status ConfigOptions::validate() const { return impl_->validate(); }

SpaceOptions::SpaceOptions() : ConfigOptions(std::make_unique<OptionsImpl<SpaceConfig>>()) {}
RelayOptions::RelayOptions() : ConfigOptions(std::make_unique<OptionsImpl<RelayConfig>>()) {}

const SpaceConfig& options_config(const SpaceOptions& options) {
  return static_cast<const OptionsImpl<SpaceConfig>&>(options.impl()).config;
}
const RelayConfig& options_config(const RelayOptions& options) {
  return static_cast<const OptionsImpl<RelayConfig>&>(options.impl()).config;
}

SpaceConfig& options_config(SpaceOptions& options) { return config_of<SpaceConfig>(options); }
RelayConfig& options_config(RelayOptions& options) { return config_of<RelayConfig>(options); }

Status parse_space_options(std::string_view toml_text, std::string_view source_name, const EnvLookup& env,
                           SpaceOptions* out) {
  return parse_into<SpaceConfig>(toml_text, source_name, env, out);
}
Status parse_relay_options(std::string_view toml_text, std::string_view source_name, const EnvLookup& env,
                           RelayOptions* out) {
  return parse_into<RelayConfig>(toml_text, source_name, env, out);
}
Status load_space_options(const std::string& path, const EnvLookup& env, SpaceOptions* out) {
  return load_into<SpaceConfig>(path, env, out);
}
Status load_relay_options(const std::string& path, const EnvLookup& env, RelayOptions* out) {
  return load_into<RelayConfig>(path, env, out);
}

Status check_space_config(const SpaceConfig& config) {
  return check_config<SpaceConfig>(config, {}, {}, keys_of<SpaceConfig>());
}
Status check_relay_config(const RelayConfig& config) {
  return check_config<RelayConfig>(config, {}, {}, keys_of<RelayConfig>());
}

template <typename C>
static void table_errors(std::vector<std::string>& out) {
  for (const Key<C>& k : keys_of<C>()) {
    if (k.description.empty()) out.push_back(key_name(k) + " has no row in the key table");
  }
  for (const KeyRow& r : rows<C>()) {
    if (find_key<C>(r.key) == nullptr) out.push_back(std::string(r.key) + " is not in for_each_key");
  }
}

std::vector<std::string> config_key_table_errors() {
  std::vector<std::string> out;
  table_errors<SpaceConfig>(out);
  table_errors<RelayConfig>(out);
  return out;
}

Result<ListenAddress> parse_listen_address(std::string_view text) {
  const std::string expect = "expected host:port or [v6]:port";
  std::string host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return Status::invalid_argument(expect + ", the ] is missing");
    host = std::string(text.substr(1, close - 1));
    if (close + 1 >= text.size() || text[close + 1] != ':')
      return Status::invalid_argument(expect + ", the port is missing");
    port = text.substr(close + 2);
    in6_addr addr;
    if (inet_pton(AF_INET6, host.c_str(), &addr) != 1) {
      return Status::invalid_argument("\"" + host + "\" is not an IPv6 address");
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return Status::invalid_argument(expect + ", the port is missing");
    host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (host.empty()) return Status::invalid_argument(expect + ", the host is missing");
    if (host.find(':') != std::string::npos) {
      return Status::invalid_argument("an IPv6 address needs brackets, as in [::1]:8080");
    }
    bool ok = std::all_of(host.begin(), host.end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
             c == '-' || c == '_';
    });
    if (!ok) return Status::invalid_argument("the host may hold only letters, digits, '.', '-' and '_'");
  }
  bool digits = !port.empty() && port.size() <= 5 &&
                std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  int value = 0;
  if (digits) std::from_chars(port.data(), port.data() + port.size(), value);
  if (!digits || value > 65535) return Status::invalid_argument("the port must be a number from 0 to 65535");
  return ListenAddress{std::move(host), value};
}

std::vector<ConfigKeyInfo> space_config_keys() { return describe<SpaceConfig>(keys_of<SpaceConfig>()); }
std::vector<ConfigKeyInfo> relay_config_keys() { return describe<RelayConfig>(keys_of<RelayConfig>()); }

std::string config_markdown_rows(const std::vector<ConfigKeyInfo>& keys, const std::string& section) {
  std::string out;
  for (const ConfigKeyInfo& k : keys) {
    if (k.section != section) continue;
    out += "| `" + k.key + "` | " + k.type + " | `" + k.default_value + "` | `" + k.env + "` | " +
           k.description + " |\n";
  }
  return out;
}

}  // namespace hut
