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
#include <optional>
#include <string>
#include <string_view>

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

// Parses TOML text; `source_name` is the file name used in messages.
HUT_EXPORT Result<SpaceConfig> parse_space_config(std::string_view toml_text, std::string_view source_name,
                                                  const EnvLookup& env);
HUT_EXPORT Result<RelayConfig> parse_relay_config(std::string_view toml_text, std::string_view source_name,
                                                  const EnvLookup& env);
// Reads and parses a file.
HUT_EXPORT Result<SpaceConfig> load_space_config(const std::string& path,
                                                 const EnvLookup& env = process_env());
HUT_EXPORT Result<RelayConfig> load_relay_config(const std::string& path,
                                                 const EnvLookup& env = process_env());

// Checks a configuration built in code by the rules of the file loader (the
// loader runs this same check): the same messages, without the file and line,
// e.g. "space.listen: the port must be a number from 0 to 65535" where a file
// gives "spaced.toml:4: space.listen: the port must be ...". hut::Space::create
// runs it. Any thread.
HUT_EXPORT Status validate_space_config(const SpaceConfig& config);
HUT_EXPORT Status validate_relay_config(const RelayConfig& config);
// The store's URL: [store] url, or when it is empty the SQLite file
// sqlite://<space.data_dir>/space.db. The loader and Space::create fill an
// empty url with it.
HUT_EXPORT std::string space_store_url(const SpaceConfig& config);

// "host:port" -> parts. Accepts "[::1]:80". Port 0 means any free port.
struct ListenAddress {
  std::string host;
  int port = 0;
};
HUT_EXPORT Result<ListenAddress> parse_listen_address(std::string_view text);

}  // namespace hut

#endif  // HUTOPIA_CONFIG_H_
