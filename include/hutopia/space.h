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

// Who a widget event goes to: a session (target: its id), a user's sessions
// (the user id), every session, or the sessions of a room's members (the
// room id). New values are only ever added at the end.
enum class Audience { kSession, kUser, kEveryone, kRoom };

class HUT_EXPORT Space {
 public:
  // `loop` is borrowed; nullptr: the space owns a loop of its own (run()).
  // kInvalidArgument when the options break a rule of the file loader.
  static Result<std::unique_ptr<Space>> create(const SpaceOptions& options, uv_loop_t* loop = nullptr);
  // The same from the struct (compiled in the program; see SpaceOptions).
  HUT_INLINE_LOCAL static Result<std::unique_ptr<Space>> create(const SpaceConfig& config,
                                                                uv_loop_t* loop = nullptr) {
    return with_options<SpaceOptions>(config,
                                      [&](const SpaceOptions& options) { return create(options, loop); });
  }
  // Reads the configuration from a TOML file (with environment overrides).
  static Result<std::unique_ptr<Space>> from_file(const std::string& path, uv_loop_t* loop = nullptr);
  ~Space();
  Space(const Space&) = delete;
  Space& operator=(const Space&) = delete;

  // Opens the public listener and, when [admin] listen is set, the admin
  // listener; loads the plugins registered with register_plugin() before
  // start, then the plugins of the plugins folder (so a plugin file may
  // require a compiled-in plugin). On error nothing is listening. Not again
  // after stop().
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
  Status reload(const SpaceOptions& options, std::vector<std::string>* applied,
                std::vector<std::string>* needs_restart);
  HUT_INLINE_LOCAL Result<ReloadReport> reload(const SpaceConfig& config) {
    return reload_report<ReloadReport, SpaceOptions>(*this, config);
  }
  // Only for a space that owns its loop: runs it until stop() finished.
  // Returns 0, or -1 for a borrowed loop.
  int run();

  uv_loop_t* loop() const;
  bool running() const;
  // What start() opened: "http://127.0.0.1:8080" and the real ports (port 0
  // in the configuration becomes the port the system chose). Without an
  // admin listener, admin_url() is empty and admin_port() 0.
  std::string public_url() const;
  std::string admin_url() const;
  int public_port() const;
  int admin_port() const;
  // The configuration the space runs with (store.url filled in).
  SpaceOptions options() const;
  HUT_INLINE_LOCAL SpaceConfig config() const { return config_from<SpaceConfig>(options()); }

  // Runs `fn` on the loop thread soon. Any thread. False once the space
  // stopped (fn is then dropped).
  bool post(std::function<void()> fn);

  // In-process calls for the embedding program.
  //
  // An app token for `user_id` (name defaults to the id), valid ttl_s
  // seconds (0: [auth] app_token_ttl). kFailedPrecondition without an app
  // secret; kInvalidArgument for an empty user or a ttl over the maximum
  // token lifetime. Any thread.
  Status mint_app_token(std::string_view user_id, std::string_view name, int64_t ttl_s, std::string* token,
                        int64_t* expires_at_ms) const;
  HUT_INLINE_LOCAL Result<AppToken> mint_app_token(std::string_view user_id, std::string_view name = {},
                                                   int64_t ttl_s = 0) const {
    AppToken out;
    HUT_RETURN_IF_ERROR(mint_app_token(user_id, name, ttl_s, &out.token, &out.expires_at_ms));
    return out;
  }
  // Sends {"op":"widget","plugin","data"} to a session, a user's sessions,
  // everyone, or the online members of a room; returns how many sessions got
  // it. kInvalidArgument when `data_json` is not JSON.
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
  // library would export). `descriptor` must outlive the space. Before
  // start(): the plugin is kept and loaded by start() ahead of the plugins
  // folder, so that a plugin file may require it (kAlreadyExists for a second
  // one of the same name; one that then fails to load is logged and listed
  // with its reason, as a plugin file is). While running: loaded at once.
  Status register_plugin(const hut_plugin_descriptor* descriptor, hut_plugin_init_fn init,
                         hut_plugin_fini_fn fini = nullptr);

  // Rooms, in-process (contract section 2's rules; the same pipeline as the
  // bus and the management API). Loop thread, while the space runs (else
  // kFailedPrecondition, given to `done`). Every `done` runs exactly once,
  // on the loop. A refusal is a Status whose message starts with the bus's
  // error code: "muted: ada is muted in this room" (kPermissionDenied),
  // "not_found: ..." (kNotFound), "too_large: ..." (kResourceExhausted),
  // "bad_request: ..." (kInvalidArgument).
  //
  // Posts `text` (and `data_json`, JSON or empty) to `room` as the user
  // `user_id` (shown as `user_name`, the id when empty), or, with an empty
  // user_id, as the space itself (id "space:<space id>", named [space]
  // name). As on the management API the author need not be a member; a
  // member's mute binds, the plugins' post filters run, and the message goes
  // to the room's members as a `message` event after the commit. `done`
  // gets the message's seq and ts (Unix ms).
  void post_to_room(std::string_view room, std::string_view user_id, std::string_view user_name,
                    std::string_view text, std::string_view data_json,
                    std::function<void(Status status, uint64_t seq, int64_t ts)> done);
  // A page of history: the latest `limit` (1 to 200) messages older than
  // seq `before` (0: the latest of all), oldest first, as the bus's history
  // reply has them: {"messages":[...],"more"} ("more": older ones exist).
  void room_history(std::string_view room, uint64_t before, int limit,
                    std::function<void(Status status, std::string page_json)> done);
  // A page of members, {"members":[{"user","role",...}],"more"}: online
  // first, then by id, after the member `after` (empty: from the start), at
  // most `limit` (1 to 1000). Answers at once.
  Result<std::string> room_members(std::string_view room, std::string_view after = {}, int limit = 100);
  // Creates a room (not counted against any user's quota): `master` (a user
  // id, may be empty) gets the master role, `members` the member role.
  // kInvalidArgument for an id that is not 1 to 64 characters without
  // / ? # % or space; kAlreadyExists when it exists.
  void create_room(std::string_view room, std::string_view topic, bool is_private, std::string_view master,
                   const std::vector<std::string>& members, std::function<void(Status status)> done);
  // Open bus connections, and those past the welcome.
  size_t connection_count() const;
  size_t session_count() const;

  struct HUT_LOCAL Impl;

 private:
  explicit Space(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hut

#endif  // HUTOPIA_SPACE_H_
