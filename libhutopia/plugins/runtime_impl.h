// The plugin runtime's implementation, shared by its files:
//
//   runtime_impl.h   this header: the loaded instance (struct hut_plugin), the
//                    timer record and RuntimeImpl, the class behind runtime.h
//   loader.cc        opening a .so, checking its descriptor, dependency order
//   lifecycle.cc     starting and stopping instances: load, unload, reload,
//                    rescan, shutdown, and creating the runtime
//   host_table.cc    the host table handed to plugins, and its functions
//                    (except the key-value and timer ones below)
//   kv_overlay.cc    the plugins' key-value data: the overlay of writes in
//                    flight over the space's store
//   dispatch.cc      widget and HTTP requests, assets, room and user events,
//                    post filtering
//   timers_posts.cc  plugin timers and callbacks posted from other threads
//
// Ownership: RuntimeImpl owns one Record per plugin name it has met (loaded or
// not), each loaded Record owns its instance (struct hut_plugin), and each
// instance owns its library handle, hooks, run-time assets and timers. Timers
// and the post queue's async handle are heap objects freed in their libuv
// close callbacks, so they may outlive the runtime by one loop turn.
//
// Thread: the loop thread, except host_post and host_log (any thread), which
// touch only the post queue (under post_mu_) and the logger.
#ifndef HUTOPIA_PLUGINS_RUNTIME_IMPL_H_
#define HUTOPIA_PLUGINS_RUNTIME_IMPL_H_

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "plugins/runtime.h"
#include "util/log.h"
#include "util/loop_queue.h"

namespace hut {
class RuntimeImpl;
struct PluginTimer;
}  // namespace hut

// One loaded plugin instance; the C ABI's opaque hut_plugin.
struct hut_plugin {
  hut::RuntimeImpl* runtime = nullptr;
  std::string name;
  std::string component;  // "plugin <name>", for the log
  void* dl = nullptr;     // null for a builtin
  hut_plugin_init_fn init = nullptr;
  hut_plugin_fini_fn fini = nullptr;
  hut_hooks hooks{};
  hut::PluginStats* stats = nullptr;  // the Record's, which outlives the instance
  std::map<std::string, hut::PluginAsset, std::less<>> assets;
  // Storage of assets registered at run time: path, type, data.
  std::vector<std::unique_ptr<std::string[]>> owned_assets;
  std::map<uint64_t, hut::PluginTimer*> timers;
  std::string data_dir;  // made by host_data_dir on first use
  struct BodyRoute {
    std::string method, path;
    uint64_t max_bytes;
  };
  std::vector<BodyRoute> body_routes;  // http_body_to_file
  bool closing = false;                // guarded by RuntimeImpl::post_mu_
  uint64_t serial = 0;                 // unique per instance, so late callbacks can tell a reload
  void* instance_data = nullptr;       // set_instance_data (ABI 1.5); the plugin's
  // Room calls whose done has not run yet, by call id: released when the
  // instance ends before they complete.
  struct RoomCall {
    hut_room_done done;
    void* arg;
    hut_callback release;
  };
  std::map<uint64_t, RoomCall> room_calls;
  uint64_t next_room_call = 1;
};

namespace hut {

class Store;

// A strict relative asset path: not empty, not absolute, no "..", no
// backslash, no NUL, no empty or "." segment.
bool valid_asset_path(std::string_view path);

// "a, b, c".
std::string join(const std::vector<std::string>& v, std::string_view sep);

// A timer of a plugin. Owned by its instance's `timers` map while running;
// freed in its close callback.
struct PluginTimer {
  uv_timer_t handle;
  hut_plugin* inst = nullptr;
  uint64_t id = 0;
  hut_callback cb = nullptr;
  void* arg = nullptr;
  hut_callback release = nullptr;  // timer_start_ex (ABI 1.5); run once when the timer ends
  bool repeating = false;
};

// Stops the timer and frees it once libuv has closed its handle. The caller
// has taken it out of its instance's `timers`.
void close_timer(PluginTimer* t);
// Ends every timer of the instance: closes them, then runs their releases.
void end_timers(hut_plugin* inst);

// The host table every plugin is given.
const hut_host* host_table();

class RuntimeImpl final : public PluginRuntime {
 public:
  RuntimeImpl(uv_loop_t* loop, PluginServices* services, Options options)
      : loop_(loop), services_(services), options_(std::move(options)), store_(options_.store) {}
  ~RuntimeImpl() override { shutdown(); }

  // Posts alone do not keep the loop running; the space's handles do.
  Status start_posts() { return posts_.open(loop_, false); }

  // Imports <data_dir>/plugins.db of older versions into the store, once.
  Status import_old_kv();

  void load_all() override;
  std::vector<std::string> rescan() override;
  Status load(std::string_view name) override;
  Status unload(std::string_view name) override;
  Status reload(std::string_view name) override;
  Status load_builtin(const hut_plugin_descriptor* descriptor, hut_plugin_init_fn init,
                      hut_plugin_fini_fn fini) override;
  void shutdown() override;

  std::vector<PluginInfo> list() const override {
    std::vector<PluginInfo> out;
    for (const auto& [name, rec] : records_) out.push_back(rec.info);
    return out;
  }
  std::vector<WidgetInfo> widgets() const override {
    std::vector<WidgetInfo> out;
    for (const auto& name : order_) {
      const auto& w = records_.find(name)->second.info.widgets;
      out.insert(out.end(), w.begin(), w.end());
    }
    return out;
  }
  std::vector<PluginStats> stats() const override {
    std::vector<PluginStats> out;
    for (const auto& [name, rec] : records_) {
      if (rec.inst || rec.stats.calls > 0 || rec.stats.kv_failed_writes > 0) out.push_back(rec.stats);
    }
    return out;
  }
  bool is_loaded(std::string_view name) const override { return loaded(name) != nullptr; }

  Status dispatch_widget(std::string_view plugin, const WidgetRequest& request) override;
  Status dispatch_http(std::string_view plugin, const PluginHttpRequest& request) override;
  bool body_route(std::string_view plugin, std::string_view method, std::string_view path,
                  uint64_t* max_bytes, std::string* dir) const override {
    const hut_plugin* inst = loaded(plugin);
    if (inst == nullptr || inst->data_dir.empty()) return false;
    for (const auto& r : inst->body_routes) {
      if (r.method == method && r.path == path) {
        *max_bytes = r.max_bytes;
        *dir = inst->data_dir + "/.incoming";
        return true;
      }
    }
    return false;
  }
  const PluginAsset* find_asset(std::string_view plugin, std::string_view path) const override;
  void member_joined(std::string_view room, const UserRef& user) override {
    room_event(room, user, &hut_hooks::on_member_joined);
  }
  void member_left(std::string_view room, const UserRef& user) override {
    room_event(room, user, &hut_hooks::on_member_left);
  }
  void user_online(const UserRef& user) override { user_event(user, &hut_hooks::on_user_online); }
  void user_offline(const UserRef& user) override { user_event(user, &hut_hooks::on_user_offline); }
  void session_closed(std::string_view session_id, const UserRef& user) override;
  Status filter_post(std::string_view room, const UserRef& from, std::string* text, std::string* data_json,
                     std::string_view skip_plugin) override;

  // ---- The host table's functions, called by plugins. ----
  static void host_log(hut_plugin* self, int level, const char* message);
  static const char* host_strerror(int code) { return hut_strerror(code); }
  static int host_reply(hut_plugin* self, uint64_t id, const char* data, size_t len);
  static int host_reply_error(hut_plugin* self, uint64_t id, const char* code, const char* message);
  static int host_send_widget_event(hut_plugin* self, hut_target target, const char* target_id,
                                    const char* data, size_t len);
  static int host_notify(hut_plugin* self, const char* user_id, const char* title, const char* body,
                         const char* url);
  static int host_kv_get(hut_plugin* self, const char* key, void* buf, size_t buflen, size_t* value_len);
  static int host_kv_put(hut_plugin* self, const char* key, const void* value, size_t value_len);
  static int host_kv_delete(hut_plugin* self, const char* key);
  static int host_register_hooks(hut_plugin* self, const hut_hooks* hooks, size_t hooks_size);
  static int host_http_respond(hut_plugin* self, uint64_t id, int status, const hut_header* headers,
                               size_t header_count, const char* body, size_t body_len);
  static int host_register_asset(hut_plugin* self, const char* path, const char* content_type,
                                 const void* data, size_t size);
  static int host_timer_start(hut_plugin* self, uint64_t timeout_ms, uint64_t repeat_ms, hut_callback cb,
                              void* arg, uint64_t* timer_id);
  static int host_timer_start_ex(hut_plugin* self, uint64_t timeout_ms, uint64_t repeat_ms, hut_callback cb,
                                 void* arg, hut_callback release, uint64_t* timer_id);
  static int host_timer_stop(hut_plugin* self, uint64_t timer_id);
  static int host_post(hut_plugin* self, hut_callback cb, void* arg);
  static int host_post_ex(hut_plugin* self, hut_callback cb, void* arg, hut_callback release);
  static int host_room_post(hut_plugin* self, const char* room, const char* text, const char* data_json,
                            hut_room_done done, void* arg);
  static int host_room_history(hut_plugin* self, const char* room, uint64_t before, int limit,
                               hut_room_done done, void* arg);
  static int host_room_post_ex(hut_plugin* self, const char* room, const char* text, const char* data_json,
                               hut_room_done done, void* arg, hut_callback release);
  static int host_room_history_ex(hut_plugin* self, const char* room, uint64_t before, int limit,
                                  hut_room_done done, void* arg, hut_callback release);
  static int host_room_members(hut_plugin* self, const char* room, char* buf, size_t buflen,
                               size_t* json_len);
  static const char* host_data_dir(hut_plugin* self);
  static int host_http_body_to_file(hut_plugin* self, const char* method, const char* path,
                                    uint64_t max_bytes);
  static int host_http_respond_file(hut_plugin* self, uint64_t id, int status, const hut_header* headers,
                                    size_t header_count, const char* path);
  static int host_mint_session_token(hut_plugin* self, const char* session_id, uint32_t ttl_s, char* buf,
                                     size_t buflen, size_t* token_len);
  static int host_reply_error_code(hut_plugin* self, uint64_t id, int code, const char* message);
  static int host_set_instance_data(hut_plugin* self, void* data);
  static void* host_instance_data(hut_plugin* self);
  // Wraps a plugin's room callback so that it runs only while the same
  // instance is loaded; records the call in the instance's room_calls and
  // sets *call_id (0 when there is nothing to call or release).
  PluginServices::RoomDone room_done(hut_plugin* self, hut_room_done done, void* arg, hut_callback release,
                                     uint64_t* call_id);
  // Ends a room call the host function could not start: forgets it without
  // running done or release (arg stays the plugin's).
  static void forget_room_call(hut_plugin* self, uint64_t call_id) { self->room_calls.erase(call_id); }
  // Releases the instance's room calls that have not completed.
  static void release_room_calls(hut_plugin* inst);

 private:
  // Everything known about one plugin name.
  // Which file a path named when it was opened (stat of the path).
  struct FileId {
    uint64_t dev = 0, ino = 0, size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileId&) const = default;
  };
  static bool file_id(const std::string& path, FileId* out) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return false;
    *out = FileId{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                  static_cast<uint64_t>(st.st_size),
                  static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
    return true;
  }

  struct Record {
    PluginInfo info;
    PluginStats stats;
    std::unique_ptr<hut_plugin> inst;  // set while loaded
    FileId file;                       // the .so it was loaded from (not for builtins)
    // For builtins: what load_builtin was given, for reload.
    const hut_plugin_descriptor* builtin_desc = nullptr;
    hut_plugin_init_fn builtin_init = nullptr;
    hut_plugin_fini_fn builtin_fini = nullptr;
  };

  // A plugin whose descriptor was read and checked, not yet initialized.
  struct Candidate {
    std::string name;
    void* dl = nullptr;  // null for a builtin
    const hut_plugin_descriptor* desc = nullptr;
    hut_plugin_init_fn init = nullptr;
    hut_plugin_fini_fn fini = nullptr;
    std::vector<std::string> requires_;
    FileId file;
  };

  // Drops the queued callbacks of `inst` and runs their releases.
  void drop_posts(hut_plugin* inst) { posts_.drop(inst); }

  hut_plugin* loaded(std::string_view name) const {
    auto it = records_.find(name);
    return it == records_.end() ? nullptr : it->second.inst.get();
  }
  Record& record(const std::string& name) {
    Record& rec = records_[name];
    rec.info.name = name;
    rec.stats.name = name;
    return rec;
  }
  void set_failed(const std::string& name, std::string_view why) {
    Record& rec = record(name);
    rec.info.state = "failed";
    rec.info.error = std::string(why);
    log_printf(LogLevel::kWarn, "plugins", "%s not loaded: %s", name.c_str(), rec.info.error.c_str());
  }

  std::string file_of(std::string_view name) const {
    return options_.plugins_dir + "/" + std::string(name) + ".so";
  }

  Result<Candidate> open_file(const std::string& name);
  Status check_descriptor(const std::string& name, const hut_plugin_descriptor* desc, Candidate* out);
  Status start(Candidate c);
  void stop(Record& rec, std::string_view why);

  // The loaded instances in load order; hooks cannot load or unload plugins,
  // but a copy keeps iteration safe whatever the space does in a callback.
  std::vector<hut_plugin*> loaded_in_order() const {
    std::vector<hut_plugin*> out;
    out.reserve(order_.size());
    for (const auto& name : order_) out.push_back(loaded(name));
    return out;
  }
  using RoomHook = void (*)(hut_plugin*, void*, const char*, const hut_user*);
  using UserHook = void (*)(hut_plugin*, void*, const hut_user*);
  void room_event(std::string_view room, const UserRef& user, RoomHook hut_hooks::*hook);
  void user_event(const UserRef& user, UserHook hut_hooks::*hook);

  // Runs a hook and counts it in the plugin's stats.
  template <typename F>
  int measured(hut_plugin* inst, F&& f) {
    auto t0 = std::chrono::steady_clock::now();
    int rc = f();
    auto t1 = std::chrono::steady_clock::now();
    inst->stats->calls++;
    if (rc < 0) inst->stats->errors++;
    inst->stats->time_ns +=
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
    return rc;
  }

  friend void timer_fired(uv_timer_t* h);

  // A write of one key that the store has not acknowledged yet: the value,
  // or none for a delete.
  struct KvPending {
    uint64_t generation = 0;
    std::optional<std::string> value;
  };
  // The unacknowledged writes by plugin name, then key. Keyed by name, not
  // instance: a plugin's data (and its writes in flight) outlive a reload.
  struct KvOverlay {
    std::map<std::string, std::unordered_map<std::string, KvPending>, std::less<>> plugins;
    uint64_t next_generation = 0;
  };

  // The pending write of (plugin, key), or null.
  const KvPending* kv_pending(const std::string& plugin, const std::string& key) const;
  // The value of `key` as the plugin sees it: its pending write, else the
  // store's. HUT_OK (the value in *value unless null), HUT_ENOENT, or HUT_EIO
  // (logged, naming `op`).
  int kv_lookup(const hut_plugin* inst, const std::string& key, std::string* value, const char* op);
  // Records the write in the overlay and submits it to the store. HUT_OK, or
  // HUT_EIO when the store refused it at once (it is closed).
  int kv_write(const hut_plugin* inst, std::string key, std::optional<std::string> value);
  // The store's answer to the write of `generation`.
  void kv_acknowledged(const std::string& plugin, const std::string& key, uint64_t generation, bool erase,
                       const Status& status);

  uv_loop_t* loop_;
  PluginServices* services_;
  Options options_;
  Store* store_;
  std::shared_ptr<KvOverlay> kv_overlay_ = std::make_shared<KvOverlay>();
  uint64_t kv_submitting_ = 0;  // the generation kv_write is submitting, 0 outside it
  bool kv_refused_ = false;     // the store failed kv_submitting_ at once
  std::map<std::string, Record, std::less<>> records_;
  std::vector<std::string> order_;  // loaded plugins, in load order
  uint64_t next_timer_id_ = 1;
  LoopQueue posts_;     // callbacks posted from plugins' threads, each owned by its instance
  std::mutex post_mu_;  // guards each instance's `closing`, held while posting
  bool shut_down_ = false;
  uint64_t next_serial_ = 0;
};

}  // namespace hut

#endif  // HUTOPIA_PLUGINS_RUNTIME_IMPL_H_
