// Configuration of the daemons (contract section 7): a TOML file, then
// environment overrides HUTOPIA_<SECTION>_<KEY> (upper case) for every key.
//
// Errors name the file, the line and the key: "spaced.toml:4: space.listen:
// expected a string". Unknown sections and keys are refused the same way, so
// a typo never passes silently. Relative paths are kept as written: they are
// relative to the daemon's working directory.
//
// Thread safety: these are plain values; the load functions may run on any
// thread (they read the file and the environment).
#ifndef HUTOPIA_CONFIG_H_
#define HUTOPIA_CONFIG_H_

#include <hutopia/export.h>
#include <hutopia/status.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace hut {

// Looks up an environment variable; the default reads the process environment
// and then the credentials systemd passes (read_credential).
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
HUT_EXPORT EnvLookup process_env();
// The credential standing for HUTOPIA_<SECTION>_<KEY>: the file
// $CREDENTIALS_DIRECTORY/<section>_<key> (lower case; systemd's
// LoadCredential=), without trailing line breaks; nullopt when
// CREDENTIALS_DIRECTORY is unset or the file is missing.
HUT_EXPORT std::optional<std::string> read_credential(const std::string& env_name);

// Both daemons: `[log] level`.
struct LogConfig {
  std::string level = "info";  // debug, info, warn, error
};

struct SpaceConfig {
  struct Space {
    std::string id = "demo";
    std::string name = "Demo space";
    std::string listen = "127.0.0.1:8080";
    std::string url;  // public URL; empty: http://<listen>
    std::string data_dir = "var/space";
    std::string plugins_dir = "plugins";
    std::string tls_cert;  // PEM certificate chain; with tls_key, the public listener speaks TLS only
    std::string tls_key;   // PEM private key of tls_cert
  } space;
  struct Admin {
    // The management API's listener; empty: none. A file read by
    // load_space_config starts from "127.0.0.1:7999" (spaced's default); a
    // configuration built in code has no management API unless it sets one.
    std::string listen;
    std::string token;  // empty: the management API refuses every call but healthz; else >= 32 bytes
  } admin;
  struct Auth {
    std::string relay_issuer;
    std::string relay_jwks;            // https://, or http:// on loopback (else relay_jwks_insecure)
    bool relay_jwks_insecure = false;  // allow http:// to a host other than loopback
    std::string relay_ca_file;         // PEM CAs for an https:// relay_jwks; empty: the system store
    std::string relay_login;           // relay login page; empty: <relay_issuer>/login
    std::string app_issuer;
    std::string app_secret;
    int64_t max_token_lifetime = 300;  // seconds
    int64_t leeway = 30;               // seconds, at most 30
    int64_t app_token_ttl = 300;       // default ttl of POST /api/v1/tokens
    int64_t resume_ttl = 86400;        // seconds a resume credential stays good
  } auth;
  struct Store {
    std::string url;  // empty: sqlite://<space.data_dir>/space.db (space_store_url)
  } store;
  struct Cluster {
    std::string redis;                // redis://host:port or unix:///path; empty: this space is one node
    std::string node;                 // this node's id; empty: <host name>-<pid>
    int64_t heartbeat_ms = 1000;      // a node tells the others it lives this often
    int64_t node_timeout_ms = 5000;   // a node not heard from this long is gone, with its users
    int64_t reconnect_min_ms = 100;   // first wait before connecting to Redis again
    int64_t reconnect_max_ms = 5000;  // longest wait (the wait doubles up to it)
  } cluster;
  LogConfig log;
  struct Limits {
    int64_t max_message = 65536;     // bytes, a whole message (1009 over it)
    int64_t bad_frames = 20;         // bad frames ...
    int64_t bad_frame_window = 10;   // ... within this many seconds: 1008
    int64_t backpressure = 1048576;  // unsent bytes per connection: 4008
    int64_t hello_timeout = 10;      // seconds
    int64_t post_rate = 50;          // posts per second per session
    int64_t post_burst = 500;
    int64_t max_connections = 100000;   // public listener, HTTP and WebSocket
    int64_t max_body = 1048576;         // bytes of one HTTP request body: 413
    int64_t max_body_total = 16777216;  // request body bytes buffered at once: 503
    int64_t widget_rate = 20;           // widget ops per second per session
    int64_t widget_burst = 100;
    int64_t widget_pending = 32;   // widget ops of one session awaiting a plugin
    int64_t plugin_timeout = 10;   // seconds a plugin has to answer
    int64_t http_pending = 1024;   // HTTP requests awaiting plugins
    int64_t rooms_per_user = 100;  // rooms one bus user may have created; 0: no limit
    int64_t dms_per_hour = 60;     // new direct-message rooms per user per hour
  } limits;
};

struct RelayConfig {
  struct Relay {
    std::string listen = "127.0.0.1:8700";
    std::string issuer = "http://127.0.0.1:8700";
    std::string data_dir = "var/relay";
    int64_t token_ttl = 60;
    int64_t session_ttl = 2592000;  // seconds a login session lives (30 days)
    bool registration = true;       // POST /api/v1/accounts open to anyone
  } relay;
  struct Admin {
    std::string listen = "127.0.0.1:8799";
    std::string token;  // empty: the admin listener refuses every call but healthz; else >= 32 bytes
  } admin;
  LogConfig log;
  struct Store {
    std::string url;  // empty: sqlite://<relay.data_dir>/relay.db (relay_store_url)
  } store;
  // Budgets refill evenly: N per window means N at once, then N more per window.
  struct Limits {
    int64_t login_attempts_per_account = 10;  // logins for one username ...
    int64_t login_attempts_per_address = 50;  // ... and from one address ...
    int64_t login_window = 300;               // ... per this many seconds: 429
    int64_t accounts_per_address = 20;        // new accounts from one address ...
    int64_t account_window = 3600;            // ... per this many seconds: 429
    int64_t tokens_per_user = 60;             // relay tokens for one user ...
    int64_t token_window = 60;                // ... per this many seconds: 429
    int64_t spaces_per_user = 20;             // directory entries one user owns
    int64_t hash_workers = 2;                 // argon2 hashes at once
    int64_t hash_queue = 32;                  // requests waiting for a hash: 503 beyond
  } limits;
};

// Every key of a configuration as ("section.key", the field holding it), in
// the order of the documentation, one statement per section. This list is the one mapping between the
// structs and the keys: the library's key table (TOML, environment,
// SpaceOptions / RelayOptions) is built on it, so a field added to a struct
// and listed here is a key everywhere at once.
template <typename C, typename F,
          std::enable_if_t<std::is_same_v<std::remove_const_t<C>, SpaceConfig>, int> = 0>
void for_each_key(C& c, F&& f) {
  f("space.id", c.space.id), f("space.name", c.space.name), f("space.listen", c.space.listen),
      f("space.url", c.space.url), f("space.data_dir", c.space.data_dir),
      f("space.plugins_dir", c.space.plugins_dir), f("space.tls_cert", c.space.tls_cert),
      f("space.tls_key", c.space.tls_key);
  f("admin.listen", c.admin.listen), f("admin.token", c.admin.token);
  f("auth.relay_issuer", c.auth.relay_issuer), f("auth.relay_jwks", c.auth.relay_jwks),
      f("auth.relay_jwks_insecure", c.auth.relay_jwks_insecure),
      f("auth.relay_ca_file", c.auth.relay_ca_file), f("auth.relay_login", c.auth.relay_login),
      f("auth.app_issuer", c.auth.app_issuer), f("auth.app_secret", c.auth.app_secret),
      f("auth.max_token_lifetime", c.auth.max_token_lifetime), f("auth.leeway", c.auth.leeway),
      f("auth.app_token_ttl", c.auth.app_token_ttl), f("auth.resume_ttl", c.auth.resume_ttl);
  f("store.url", c.store.url);
  f("cluster.redis", c.cluster.redis), f("cluster.node", c.cluster.node),
      f("cluster.heartbeat_ms", c.cluster.heartbeat_ms),
      f("cluster.node_timeout_ms", c.cluster.node_timeout_ms),
      f("cluster.reconnect_min_ms", c.cluster.reconnect_min_ms),
      f("cluster.reconnect_max_ms", c.cluster.reconnect_max_ms);
  f("log.level", c.log.level);
  f("limits.max_message", c.limits.max_message), f("limits.bad_frames", c.limits.bad_frames),
      f("limits.bad_frame_window", c.limits.bad_frame_window),
      f("limits.backpressure", c.limits.backpressure), f("limits.hello_timeout", c.limits.hello_timeout),
      f("limits.post_rate", c.limits.post_rate), f("limits.post_burst", c.limits.post_burst),
      f("limits.max_connections", c.limits.max_connections), f("limits.max_body", c.limits.max_body),
      f("limits.max_body_total", c.limits.max_body_total), f("limits.widget_rate", c.limits.widget_rate),
      f("limits.widget_burst", c.limits.widget_burst), f("limits.widget_pending", c.limits.widget_pending),
      f("limits.plugin_timeout", c.limits.plugin_timeout), f("limits.http_pending", c.limits.http_pending),
      f("limits.rooms_per_user", c.limits.rooms_per_user), f("limits.dms_per_hour", c.limits.dms_per_hour);
}

template <typename C, typename F,
          std::enable_if_t<std::is_same_v<std::remove_const_t<C>, RelayConfig>, int> = 0>
void for_each_key(C& c, F&& f) {
  f("relay.listen", c.relay.listen), f("relay.issuer", c.relay.issuer), f("relay.data_dir", c.relay.data_dir),
      f("relay.token_ttl", c.relay.token_ttl), f("relay.session_ttl", c.relay.session_ttl),
      f("relay.registration", c.relay.registration);
  f("admin.listen", c.admin.listen), f("admin.token", c.admin.token);
  f("store.url", c.store.url);
  f("log.level", c.log.level);
  f("limits.login_attempts_per_account", c.limits.login_attempts_per_account),
      f("limits.login_attempts_per_address", c.limits.login_attempts_per_address),
      f("limits.login_window", c.limits.login_window),
      f("limits.accounts_per_address", c.limits.accounts_per_address),
      f("limits.account_window", c.limits.account_window),
      f("limits.tokens_per_user", c.limits.tokens_per_user), f("limits.token_window", c.limits.token_window),
      f("limits.spaces_per_user", c.limits.spaces_per_user), f("limits.hash_workers", c.limits.hash_workers),
      f("limits.hash_queue", c.limits.hash_queue);
}

// A configuration behind a stable ABI: the library keeps the values (in its
// own SpaceConfig / RelayConfig), a program reads and writes them by key
// ("section.key", as in the TOML file). Each set() runs the key's own checks
// of the file loader and refuses with its message: "unknown key space.foo",
// "space.listen: expected a string", "limits.max_message: must be between 1
// and 1073741824" (kInvalidArgument; the value is then unchanged). The rules
// between keys are checked by validate() and by create(). A key the library
// knows and the program never sets keeps the library's default.
// Thread safety: a plain value; one thread at a time per object.
class HUT_EXPORT ConfigOptions {
 public:
  ConfigOptions(const ConfigOptions& other);
  ConfigOptions& operator=(const ConfigOptions& other);
  ~ConfigOptions();

  Status set(std::string_view key, std::string_view value);
  Status set(std::string_view key, int64_t value);
  Status set(std::string_view key, bool value);
  // Without these a string literal would pick the bool overload and an int
  // would be ambiguous.
  HUT_INLINE_LOCAL Status set(std::string_view key, const char* value) {
    return set(key, std::string_view(value));
  }
  HUT_INLINE_LOCAL Status set(std::string_view key, const std::string& value) {
    return set(key, std::string_view(value));
  }
  HUT_INLINE_LOCAL Status set(std::string_view key, int value) {
    return set(key, static_cast<int64_t>(value));
  }
  // kInvalidArgument for an unknown key or one of another type.
  Result<std::string> get_string(std::string_view key) const;
  Result<int64_t> get_int(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  // The rules between keys (and every key's own), as create() checks them.
  Status validate() const;

  struct HUT_LOCAL Impl;
  // For the library.
  HUT_INLINE_LOCAL const Impl& impl() const { return *impl_; }

 protected:
  explicit ConfigOptions(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// Starts from the defaults of a SpaceConfig built in code.
class HUT_EXPORT SpaceOptions : public ConfigOptions {
 public:
  SpaceOptions();
};

// Starts from the defaults of a RelayConfig built in code.
class HUT_EXPORT RelayOptions : public ConfigOptions {
 public:
  RelayOptions();
};

// The options of the structs' type holding the values of `config`; the first
// key the library refuses ends it with that key's message.
template <typename O, typename C>
HUT_INLINE_LOCAL Result<O> options_from(const C& config) {
  O out;
  Status status;
  for_each_key(config, [&](std::string_view key, const auto& value) {
    if (status.ok()) status = out.set(key, value);
  });
  if (!status.ok()) return status;
  return out;
}

// Calls `fn` with the options holding `config`, or returns the error of the
// first key the library refuses (the struct spellings of space.h and
// relay.h).
template <typename O, typename C, typename F>
HUT_INLINE_LOCAL auto with_options(const C& config, F&& fn) -> decltype(fn(std::declval<const O&>())) {
  Result<O> options = options_from<O>(config);
  if (!options.ok()) return options.status();
  return fn(*options);
}

// Space::reload / Relay::reload of a struct, through the exported
// reload(options, &applied, &needs_restart).
template <typename Report, typename O, typename T, typename C>
HUT_INLINE_LOCAL Result<Report> reload_report(T& self, const C& config) {
  return with_options<O>(config, [&](const O& options) -> Result<Report> {
    Report report;
    HUT_RETURN_IF_ERROR(self.reload(options, &report.applied, &report.needs_restart));
    return report;
  });
}

// The struct holding the values of `options` (a field the library does not
// know keeps the struct's default).
template <typename C>
HUT_INLINE_LOCAL C config_from(const ConfigOptions& options) {
  C out;
  for_each_key(out, [&](std::string_view key, auto& value) {
    using T = std::decay_t<decltype(value)>;
    if constexpr (std::is_same_v<T, std::string>) {
      if (Result<std::string> v = options.get_string(key); v.ok()) value = std::move(*v);
    } else if constexpr (std::is_same_v<T, bool>) {
      if (Result<bool> v = options.get_bool(key); v.ok()) value = *v;
    } else {
      if (Result<int64_t> v = options.get_int(key); v.ok()) value = *v;
    }
  });
  return out;
}

// Parses TOML text into `out`; `source_name` is the file name used in
// messages.
HUT_EXPORT Status parse_space_options(std::string_view toml_text, std::string_view source_name,
                                      const EnvLookup& env, SpaceOptions* out);
HUT_EXPORT Status parse_relay_options(std::string_view toml_text, std::string_view source_name,
                                      const EnvLookup& env, RelayOptions* out);
// Reads and parses a file.
HUT_EXPORT Status load_space_options(const std::string& path, const EnvLookup& env, SpaceOptions* out);
HUT_EXPORT Status load_relay_options(const std::string& path, const EnvLookup& env, RelayOptions* out);

namespace config_detail {
template <typename C, typename O>
HUT_INLINE_LOCAL Result<C> to_config(Status status, const O& options) {
  if (!status.ok()) return status;
  return config_from<C>(options);
}
}  // namespace config_detail

// The same with the structs (compiled in the caller).
HUT_INLINE_LOCAL Result<SpaceConfig> parse_space_config(std::string_view toml_text,
                                                        std::string_view source_name, const EnvLookup& env) {
  SpaceOptions o;
  return config_detail::to_config<SpaceConfig>(parse_space_options(toml_text, source_name, env, &o), o);
}
HUT_INLINE_LOCAL Result<RelayConfig> parse_relay_config(std::string_view toml_text,
                                                        std::string_view source_name, const EnvLookup& env) {
  RelayOptions o;
  return config_detail::to_config<RelayConfig>(parse_relay_options(toml_text, source_name, env, &o), o);
}
HUT_INLINE_LOCAL Result<SpaceConfig> load_space_config(const std::string& path,
                                                       const EnvLookup& env = process_env()) {
  SpaceOptions o;
  return config_detail::to_config<SpaceConfig>(load_space_options(path, env, &o), o);
}
HUT_INLINE_LOCAL Result<RelayConfig> load_relay_config(const std::string& path,
                                                       const EnvLookup& env = process_env()) {
  RelayOptions o;
  return config_detail::to_config<RelayConfig>(load_relay_options(path, env, &o), o);
}

// Checks a configuration built in code by the rules of the file loader (the
// loader runs this same check): the same messages, without the file and line,
// e.g. "space.listen: the port must be a number from 0 to 65535" where a file
// gives "spaced.toml:4: space.listen: the port must be ...". hut::Space::create
// runs it. Any thread.
template <typename O, typename C>
HUT_INLINE_LOCAL Status validate_config(const C& config) {
  Result<O> options = options_from<O>(config);
  return options.ok() ? options->validate() : options.status();
}
HUT_INLINE_LOCAL Status validate_space_config(const SpaceConfig& config) {
  return validate_config<SpaceOptions>(config);
}
HUT_INLINE_LOCAL Status validate_relay_config(const RelayConfig& config) {
  return validate_config<RelayOptions>(config);
}
// sqlite://<dir>/<file>, the store's URL when [store] url is empty.
HUT_INLINE_LOCAL std::string default_store_url(std::string dir, const char* file) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return "sqlite://" + dir + "/" + file;
}
// The store's URL: [store] url, or when it is empty the SQLite file
// sqlite://<space.data_dir>/space.db. The loader and Space::create fill an
// empty url with it.
HUT_INLINE_LOCAL std::string space_store_url(const SpaceConfig& config) {
  return config.store.url.empty() ? default_store_url(config.space.data_dir, "space.db") : config.store.url;
}
// The relay's database: [store] url, or when it is empty the SQLite file
// sqlite://<relay.data_dir>/relay.db.
HUT_INLINE_LOCAL std::string relay_store_url(const RelayConfig& config) {
  return config.store.url.empty() ? default_store_url(config.relay.data_dir, "relay.db") : config.store.url;
}

// "host:port" -> parts. Accepts "[::1]:80". Port 0 means any free port.
struct ListenAddress {
  std::string host;
  int port = 0;
};
HUT_EXPORT Result<ListenAddress> parse_listen_address(std::string_view text);

}  // namespace hut

#endif  // HUTOPIA_CONFIG_H_
