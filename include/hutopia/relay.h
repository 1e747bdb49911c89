// hut::Relay: the embeddable Hutopia relay. It serves accounts, login
// sessions, the space directory, the login page and the relay tokens that
// let users into spaces (contract sections 1 and 5) on a public listener,
// and /healthz and /metrics on an admin listener, on one libuv loop. Its
// state lives in [relay] data_dir: relay.db (SQLite) and keys/ (the signing
// keys).
//
// A program either lends the relay its own loop (the relay then never runs
// or closes it) or lets the relay own one and calls run(). Typical embedding:
//
//   uv_loop_t loop; uv_loop_init(&loop);
//   hut::RelayConfig cfg; cfg.relay.listen = "127.0.0.1:0"; ...
//   auto relay = hut::Relay::create(cfg, &loop);       // Result<unique_ptr<Relay>>
//   (*relay)->start();                                 // listeners are up
//   ... uv_run(&loop, UV_RUN_DEFAULT) ...; (*relay)->stop(on_stopped);
//
// A RelayConfig built in code is checked by create() with the same rules as
// one read from relayd.toml (validate_relay_config in config.h).
//
// Threads: every method runs on the loop thread (or, before the loop runs,
// on the thread that will run it), except the accessors and
// rotate_signing_key(), which any thread may call. The slow work of a
// request (SQLite, argon2, the key files) runs on libuv's thread pool.
// Ownership: the program owns the Relay; a borrowed loop must outlive it.
// Destroy it after stop() finished (its callback ran).
#ifndef HUTOPIA_RELAY_H_
#define HUTOPIA_RELAY_H_

#include <hutopia/config.h>
#include <hutopia/export.h>
#include <hutopia/status.h>

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace hut {

// Makes a new signing key in <data_dir>/keys the current one and retires
// the old one (published until its tokens expired); returns the new key id.
// A running relay of the same data_dir signs with it from its next token on.
// Any thread; blocks on file I/O.
HUT_EXPORT Result<std::string> rotate_relay_signing_key(const RelayOptions& options);
HUT_INLINE_LOCAL Result<std::string> rotate_relay_signing_key(const RelayConfig& config) {
  return with_options<RelayOptions>(
      config, [](const RelayOptions& options) { return rotate_relay_signing_key(options); });
}

class HUT_EXPORT Relay {
 public:
  // Validates `config`, creates data_dir, opens relay.db (applying its
  // migrations) and the signing keys (making the first one). `loop` is
  // borrowed; nullptr: the relay owns a loop of its own (run()).
  static Result<std::unique_ptr<Relay>> create(const RelayOptions& options, uv_loop_t* loop = nullptr);
  // The same from the struct (compiled in the program; see RelayOptions).
  HUT_INLINE_LOCAL static Result<std::unique_ptr<Relay>> create(const RelayConfig& config,
                                                                uv_loop_t* loop = nullptr) {
    return with_options<RelayOptions>(config,
                                      [&](const RelayOptions& options) { return create(options, loop); });
  }
  // Reads the configuration from a TOML file (with environment overrides).
  static Result<std::unique_ptr<Relay>> from_file(const std::string& path, uv_loop_t* loop = nullptr);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Opens both listeners. On error nothing is listening. Not again after
  // stop().
  Status start();
  // Stops taking requests (503), lets the requests on the thread pool
  // finish, closes the listeners, then calls `done` on the loop.
  void stop(std::function<void()> done = {});
  // What reload() did: the keys ("section.key") whose new value it applied,
  // and those whose new value waits for the next start.
  struct ReloadReport {
    std::vector<std::string> applied;
    std::vector<std::string> needs_restart;
  };
  // Applies the [limits] budgets, hash_workers, hash_queue and the admin
  // token from `config`; other keys that differ wait for a restart. The log
  // level is the program's to apply. kInvalidArgument when `config` breaks
  // a rule (nothing is applied).
  Status reload(const RelayOptions& options, std::vector<std::string>* applied,
                std::vector<std::string>* needs_restart);
  HUT_INLINE_LOCAL Result<ReloadReport> reload(const RelayConfig& config) {
    return reload_report<ReloadReport, RelayOptions>(*this, config);
  }
  // Only for a relay that owns its loop: runs it until stop() finished.
  // Returns 0, or -1 for a borrowed loop.
  int run();

  uv_loop_t* loop() const;
  // What start() opened: "http://127.0.0.1:8700" and the real ports (port 0
  // in the configuration becomes the port the system chose).
  std::string public_url() const;
  std::string admin_url() const;
  int public_port() const;
  int admin_port() const;
  RelayOptions options() const;
  HUT_INLINE_LOCAL RelayConfig config() const { return config_from<RelayConfig>(options()); }
  // rotate_relay_signing_key() for this relay's keys.
  Result<std::string> rotate_signing_key();

  struct HUT_LOCAL Impl;

 private:
  explicit Relay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hut

#endif  // HUTOPIA_RELAY_H_
