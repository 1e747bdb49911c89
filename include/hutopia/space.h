// hut::Space: the embeddable Hutopia space runtime. It serves the widget bus
// and the HTTP routes on a public listener, the management API on an admin
// listener, and hosts the plugins, all on one libuv loop.
//
// A program either lends the space its own loop (the space then never runs
// or closes it) or lets the space own one and calls run(). Typical embedding:
//
//   uv_loop_t loop; uv_loop_init(&loop);
//   hut::SpaceConfig cfg; cfg.space.listen = "127.0.0.1:0"; ...
//   auto space = hut::Space::create(cfg, &loop);      // Result<unique_ptr<Space>>
//   (*space)->start();                                // listeners are up
//   ... uv_run(&loop, UV_RUN_DEFAULT) ...; (*space)->stop(on_stopped);
//
// Thread: every method runs on the loop thread (or, before the loop runs, on
// the thread that will run it), except post(), mint_app_token() and the
// accessors of what start() reported, which any thread may call.
// Ownership: the program owns the Space; a borrowed loop must outlive it. The
// Space owns its listeners, sessions and plugins. Destroy it after stop()
// finished (its callback ran); a space destroyed while started (or after a
// failed start) finishes letting go of the loop on later loop turns, so run
// the loop until it returns before closing it.
#ifndef HUTOPIA_SPACE_H_
#define HUTOPIA_SPACE_H_

#include <hutopia/config.h>
#include <hutopia/export.h>
#include <hutopia/plugin.h>
#include <hutopia/status.h>

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hut {

// An app token minted by the space (HS256 with [auth] app_secret).
struct AppToken {
  std::string token;
  int64_t expires_at_ms = 0;  // Unix milliseconds
};

// Who a widget event goes to.
enum class Audience { kSession, kUser, kEveryone };

class HUT_EXPORT Space {
 public:
  // `loop` is borrowed; nullptr: the space owns a loop of its own (run()).
  static Result<std::unique_ptr<Space>> create(SpaceConfig config, uv_loop_t* loop = nullptr);
  // Reads the configuration from a TOML file (with environment overrides).
  static Result<std::unique_ptr<Space>> from_file(const std::string& path, uv_loop_t* loop = nullptr);
  ~Space();
  Space(const Space&) = delete;
  Space& operator=(const Space&) = delete;

  // Opens both listeners and loads the plugins of the plugins folder. On
  // error nothing is listening. Not again after stop().
  Status start();
  // Closes every bus connection with 1001, waits for them (at most a few
  // seconds), closes the listeners, unloads the plugins, then calls `done`
  // on the loop. Afterwards the loop has nothing left of the space.
  void stop(std::function<void()> done = {});
  // What reload() did: the keys ("section.key") whose new value it applied,
  // and those whose new value waits for the next start.
  struct ReloadReport {
    std::vector<std::string> applied;
    std::vector<std::string> needs_restart;
  };
  // Applies what a running space can change from `config`: every [limits]
  // key, [admin] token, [auth] resume_ttl; open connections
  // stay. Fetches the relay's key set again. Keys that only a restart changes
  // (listeners, paths, the store, the trust settings) keep their old values
  // and are listed in needs_restart. Looks at the plugins folder
  // again: a plugin whose .so was replaced (a new file at its path) is
  // reloaded, one not loaded (a new file, or one that had failed) is loaded;
  // each is listed in applied ("plugin echo reloaded"). The log level is the program's
  // to apply (hut::set_log_level). Loop thread; kFailedPrecondition unless
  // the space runs.
  Result<ReloadReport> reload(const SpaceConfig& config);
  // Only for a space that owns its loop: runs it until stop() finished.
  // Returns 0, or -1 for a borrowed loop.
  int run();

  uv_loop_t* loop() const;
  bool running() const;
  // What start() opened: "http://127.0.0.1:8080" and the real ports (port 0
  // in the configuration becomes the port the system chose).
  std::string public_url() const;
  std::string admin_url() const;
  int public_port() const;
  int admin_port() const;
  const SpaceConfig& config() const;

  // Runs `fn` on the loop thread soon. Any thread. False once the space
  // stopped (fn is then dropped).
  bool post(std::function<void()> fn);

  // In-process calls for the embedding program.
  //
  // An app token for `user_id` (name defaults to the id), valid ttl_s
  // seconds (0: [auth] app_token_ttl). kFailedPrecondition without an app
  // secret; kInvalidArgument for an empty user or a ttl over the maximum
  // token lifetime. Any thread.
  Result<AppToken> mint_app_token(std::string_view user_id, std::string_view name = {},
                                  int64_t ttl_s = 0) const;
  // Sends {"op":"widget","plugin","data"} to a session, a user's sessions or
  // everyone; returns how many sessions got it. kInvalidArgument when
  // `data_json` is not JSON.
  Result<size_t> send_widget_event(std::string_view plugin, Audience audience, std::string_view target_id,
                                   std::string_view data_json);
  // Sends a widget request to a plugin as if a session of `user_id` sent
  // {"op":"widget","plugin","data"}; `done` runs on the loop with the data
  // JSON the plugin answered, or with its error (kNotFound for an unknown
  // plugin; kFailedPrecondition with "code: message" when the plugin
  // answered with an error).
  void call_plugin(std::string_view plugin, std::string_view user_id, std::string_view data_json,
                   std::function<void(Status status, std::string data_json)> done);
  // Loads <plugins_dir>/<name>.so.
  Status load_plugin(std::string_view name);
  Status unload_plugin(std::string_view name);
  // Registers a plugin compiled into the program (the entry points a plugin
  // library would export). `descriptor` must outlive the space.
  Status register_plugin(const hut_plugin_descriptor* descriptor, hut_plugin_init_fn init,
                         hut_plugin_fini_fn fini = nullptr);
  // Open bus connections, and those past the welcome.
  size_t connection_count() const;
  size_t session_count() const;

  struct Impl;

 private:
  explicit Space(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hut

#endif  // HUTOPIA_SPACE_H_
