// The plugin runtime behind runtime.h.
//
// Ownership: RuntimeImpl owns one Record per plugin name it has met (loaded or
// not), each loaded Record owns its instance (struct hut_plugin), and each
// instance owns its library handle, hooks, run-time assets and timers. Timers
// and the cross-thread async handle are heap objects freed in their libuv close
// callbacks, so they may outlive the runtime by one loop turn.
//
// The plugins' key-value data lives in the space's Store. kv_put/kv_delete
// record the write in an overlay (KvOverlay), submit it to the store's writer
// thread and return at once; the store's callback drops the overlay entry once
// the write is committed, unless a newer write of the same key replaced it.
// kv_get reads the overlay first, then the store (Store::kv_get_now). The
// runtime owns the overlay; the store's callbacks hold only a weak reference.
//
// Thread: the loop thread, except host_post and host_log (any thread), which
// touch only the post queue under post_mu_ and the logger.
#include "plugins/runtime.h"

#include <cJSON.h>
#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>

#include "plugins/toml_json.h"
#include "store/store.h"
#include "util/log.h"
#include "util/wire_error.h"

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
};

namespace hut {
namespace {

constexpr size_t kMaxKeyLen = 1024;
constexpr size_t kMaxValueLen = 16u << 20;
// The size of ABI 1.0's hut_hooks, whose last field is on_post; it stays the
// minimum when later minors add fields.
constexpr size_t kMinHooksSize = offsetof(hut_hooks, on_post) + sizeof(hut_hooks::on_post);

// A strict relative asset path: not empty, not absolute, no "..", no
// backslash, no NUL, no empty or "." segment.
bool valid_asset_path(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.back() == '/') return false;
  if (path.find('\\') != std::string_view::npos || path.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    start = end + 1;
  }
  return true;
}

const char* error_text(int code) { return hut_strerror(code); }

// The bus error code and HTTP status for a hook's negative result (util/wire_error.h).
std::string bus_code(int rc) { return std::string(wire_error_name(wire_error_of_plugin(rc))); }

int http_status(int rc) { return wire_error_http_status(wire_error_of_plugin(rc)); }

PluginHttpResponse json_error_response(int status, const std::string& code, const std::string& message) {
  PluginHttpResponse r;
  r.status = status;
  r.headers.emplace_back("content-type", "application/json");
  r.body = http_error_body(code, message);
  return r;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

}  // namespace

// A timer of a plugin. Owned by its instance's `timers` map while running;
// freed in its close callback.
struct PluginTimer {
  uv_timer_t handle;
  hut_plugin* inst = nullptr;
  uint64_t id = 0;
  hut_callback cb = nullptr;
  void* arg = nullptr;
  bool repeating = false;
};

namespace {

void close_timer(PluginTimer* t) {
  uv_timer_stop(&t->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&t->handle),
           [](uv_handle_t* h) { delete static_cast<PluginTimer*>(h->data); });
}

}  // namespace

class RuntimeImpl final : public PluginRuntime {
 public:
  RuntimeImpl(uv_loop_t* loop, PluginServices* services, Options options)
      : loop_(loop), services_(services), options_(std::move(options)), store_(options_.store) {}
  ~RuntimeImpl() override { shutdown(); }

  Status start_async() {
    async_ = new uv_async_t;
    async_->data = this;
    int rc = uv_async_init(loop_, async_,
                           [](uv_async_t* a) { static_cast<RuntimeImpl*>(a->data)->drain_posts(); });
    if (rc != 0) {
      delete async_;
      async_ = nullptr;
      return Status::internal(std::string("uv_async_init: ") + uv_strerror(rc));
    }
    // Posts alone do not keep the loop running; the space's handles do.
    uv_unref(reinterpret_cast<uv_handle_t*>(async_));
    return Status::ok_status();
  }

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
  Status filter_post(std::string_view room, const UserRef& from, std::string* text, std::string* data_json,
                     std::string_view skip_plugin) override;

  // ---- The host table's functions, called by plugins. ----
  static void host_log(hut_plugin* self, int level, const char* message);
  static const char* host_strerror(int code) { return error_text(code); }
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
  static int host_timer_stop(hut_plugin* self, uint64_t timer_id);
  static int host_post(hut_plugin* self, hut_callback cb, void* arg);
  static int host_room_post(hut_plugin* self, const char* room, const char* text, const char* data_json,
                            hut_room_done done, void* arg);
  static int host_room_history(hut_plugin* self, const char* room, uint64_t before, int limit,
                               hut_room_done done, void* arg);
  static int host_room_members(hut_plugin* self, const char* room, char* buf, size_t buflen,
                               size_t* json_len);
  static const char* host_data_dir(hut_plugin* self);
  static int host_http_body_to_file(hut_plugin* self, const char* method, const char* path,
                                    uint64_t max_bytes);
  static int host_http_respond_file(hut_plugin* self, uint64_t id, int status, const hut_header* headers,
                                    size_t header_count, const char* path);
  // Wraps a plugin's room callback so that it runs only while the same
  // instance is loaded.
  PluginServices::RoomDone room_done(hut_plugin* self, hut_room_done done, void* arg);

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

  struct Posted {
    hut_plugin* inst;
    hut_callback cb;
    void* arg;
  };

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
  void drain_posts();

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
  uv_async_t* async_ = nullptr;
  std::mutex post_mu_;
  std::vector<Posted> posted_;  // guarded by post_mu_
  bool shut_down_ = false;
  uint64_t next_serial_ = 0;
};

namespace {

const hut_host kHost = {
    HUT_PLUGIN_ABI_VERSION,
    sizeof(hut_host),
    &RuntimeImpl::host_log,
    &RuntimeImpl::host_strerror,
    &RuntimeImpl::host_reply,
    &RuntimeImpl::host_reply_error,
    &RuntimeImpl::host_send_widget_event,
    &RuntimeImpl::host_notify,
    &RuntimeImpl::host_kv_get,
    &RuntimeImpl::host_kv_put,
    &RuntimeImpl::host_kv_delete,
    &RuntimeImpl::host_register_hooks,
    &RuntimeImpl::host_http_respond,
    &RuntimeImpl::host_register_asset,
    &RuntimeImpl::host_timer_start,
    &RuntimeImpl::host_timer_stop,
    &RuntimeImpl::host_post,
    &RuntimeImpl::host_room_post,
    &RuntimeImpl::host_room_history,
    &RuntimeImpl::host_room_members,
    &RuntimeImpl::host_data_dir,
    &RuntimeImpl::host_http_body_to_file,
    &RuntimeImpl::host_http_respond_file,
};

}  // namespace

// ---- Loading ---------------------------------------------------------------

Status RuntimeImpl::check_descriptor(const std::string& name, const hut_plugin_descriptor* d,
                                     Candidate* out) {
  if (d == nullptr) return Status::failed_precondition("hut_plugin_describe returned no descriptor");
  // The ABI fields come first and are checked before anything else is read.
  if (d->abi_major != HUT_PLUGIN_ABI_MAJOR || d->abi_minor > HUT_PLUGIN_ABI_MINOR) {
    return Status::failed_precondition("built for plugin ABI " + std::to_string(d->abi_major) + "." +
                                       std::to_string(d->abi_minor) + ", this space has " +
                                       std::to_string(HUT_PLUGIN_ABI_MAJOR) + "." +
                                       std::to_string(HUT_PLUGIN_ABI_MINOR));
  }
  if (d->name == nullptr || name != d->name) {
    return Status::failed_precondition("the descriptor names it \"" + std::string(d->name ? d->name : "") +
                                       "\", not \"" + name + "\"");
  }
  if (d->version == nullptr) return Status::failed_precondition("the descriptor has no version");
  if (d->widget_count > 0 && d->widgets == nullptr)
    return Status::failed_precondition("the descriptor counts widgets but has none");
  for (size_t i = 0; i < d->widget_count; ++i) {
    const hut_widget_desc& w = d->widgets[i];
    if (w.tag == nullptr || std::strchr(w.tag, '-') == nullptr || w.script == nullptr ||
        !valid_asset_path(w.script))
      return Status::failed_precondition("widget " + std::to_string(i) +
                                         " needs a tag with '-' and a relative script path");
  }
  if (d->asset_count > 0 && (d->asset_paths == nullptr || d->asset_types == nullptr ||
                             d->asset_data == nullptr || d->asset_sizes == nullptr))
    return Status::failed_precondition("the descriptor counts assets but lacks their arrays");
  for (size_t i = 0; i < d->asset_count; ++i) {
    if (d->asset_paths[i] == nullptr || !valid_asset_path(d->asset_paths[i]))
      return Status::failed_precondition("asset path \"" +
                                         std::string(d->asset_paths[i] ? d->asset_paths[i] : "") +
                                         "\" is not a plain relative path");
  }
  out->name = name;
  out->desc = d;
  out->requires_.clear();
  if (d->requires_plugins != nullptr) {
    for (const char* const* r = d->requires_plugins; *r != nullptr; ++r) out->requires_.emplace_back(*r);
  }
  return Status::ok_status();
}

Result<RuntimeImpl::Candidate> RuntimeImpl::open_file(const std::string& name) {
  std::string path = file_of(name);
  FileId file;
  file_id(path, &file);  // before dlopen: a file replaced in between is seen as changed next time
  void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) {
    const char* e = dlerror();
    return Status::failed_precondition(std::string("cannot open: ") + (e ? e : path.c_str()));
  }
  Candidate c;
  c.file = file;
  auto describe = reinterpret_cast<hut_plugin_describe_fn>(dlsym(dl, HUT_PLUGIN_DESCRIBE_SYMBOL));
  if (describe == nullptr) {
    dlclose(dl);
    return Status::failed_precondition("exports no " HUT_PLUGIN_DESCRIBE_SYMBOL);
  }
  Status st = check_descriptor(name, describe(), &c);
  if (!st.ok()) {
    dlclose(dl);
    return st;
  }
  c.init = reinterpret_cast<hut_plugin_init_fn>(dlsym(dl, HUT_PLUGIN_INIT_SYMBOL));
  c.fini = reinterpret_cast<hut_plugin_fini_fn>(dlsym(dl, HUT_PLUGIN_FINI_SYMBOL));
  if (c.init == nullptr) {
    dlclose(dl);
    return Status::failed_precondition("exports no " HUT_PLUGIN_INIT_SYMBOL);
  }
  c.dl = dl;
  return c;
}

// Initializes a checked candidate whose dependencies are loaded. On failure
// the record says why and the library is closed.
Status RuntimeImpl::start(Candidate c) {
  const hut_plugin_descriptor* d = c.desc;
  Record& rec = record(c.name);
  rec.file = c.file;
  rec.info.version = d->version;
  rec.info.abi = std::to_string(d->abi_major) + "." + std::to_string(d->abi_minor);
  rec.info.requires_ = c.requires_;
  rec.info.widgets.clear();
  for (size_t i = 0; i < d->widget_count; ++i) {
    rec.info.widgets.push_back(WidgetInfo{c.name, d->widgets[i].tag,
                                          "/plugins/" + c.name + "/" + std::string(d->widgets[i].script)});
  }
  auto fail = [&](std::string why) {
    if (c.dl) dlclose(c.dl);
    rec.info.widgets.clear();
    set_failed(c.name, why);
    return Status::failed_precondition(c.name + ": " + why);
  };

  Result<std::string> config = toml_file_to_json(options_.plugins_dir + "/" + c.name + ".toml");
  if (!config.ok()) return fail(std::string(config.status().message()));

  auto inst = std::make_unique<hut_plugin>();
  inst->serial = ++next_serial_;
  inst->runtime = this;
  inst->name = c.name;
  inst->component = "plugin " + c.name;
  inst->dl = c.dl;
  inst->init = c.init;
  inst->fini = c.fini;
  inst->stats = &rec.stats;
  for (size_t i = 0; i < d->asset_count; ++i) {
    std::string_view path(d->asset_paths[i]);
    inst->assets[std::string(path)] =
        PluginAsset{path, d->asset_types[i] ? d->asset_types[i] : "application/octet-stream",
                    std::string_view(reinterpret_cast<const char*>(d->asset_data[i]), d->asset_sizes[i])};
  }

  char err[1024] = {0};
  int rc = c.init(&kHost, inst.get(), config->c_str(), err, sizeof err);
  if (rc != 0) {
    err[sizeof err - 1] = '\0';
    std::string why = std::string("init failed (") + error_text(rc) + ")";
    if (err[0] != '\0') why += std::string(": ") + err;
    {
      std::lock_guard<std::mutex> lock(post_mu_);
      inst->closing = true;
      std::erase_if(posted_, [&](const Posted& p) { return p.inst == inst.get(); });
    }
    for (auto& [id, t] : inst->timers) close_timer(t);
    inst->timers.clear();
    inst.reset();
    return fail(why);
  }
  rec.inst = std::move(inst);
  rec.info.state = "loaded";
  rec.info.error.clear();
  order_.push_back(c.name);
  log_printf(LogLevel::kInfo, "plugins", "loaded %s %s", c.name.c_str(), d->version);
  return Status::ok_status();
}

void RuntimeImpl::load_all() {
  if (shut_down_) return;
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(options_.plugins_dir, ec)) {
    if (entry.path().extension() != ".so") continue;
    std::string name = entry.path().stem().string();
    if (!valid_plugin_name(name)) {
      set_failed(name, "the file name is not a plugin name ([a-z0-9_-], at most 64 characters)");
      continue;
    }
    if (!is_loaded(name)) names.push_back(name);
  }
  if (ec) {
    log_printf(LogLevel::kError, "plugins", "cannot read %s: %s", options_.plugins_dir.c_str(),
               ec.message().c_str());
    return;
  }
  std::sort(names.begin(), names.end());

  std::map<std::string, Candidate> waiting;
  for (const auto& name : names) {
    Result<Candidate> c = open_file(name);
    if (!c.ok()) {
      set_failed(name, c.status().message());
      continue;
    }
    waiting.emplace(name, std::move(*c));
  }

  // Dependency order: start the first (by name) candidate whose requirements
  // are loaded; refuse those whose requirements are missing or failed; what is
  // left when nothing can move is a cycle or waits on one.
  while (!waiting.empty()) {
    bool moved = false;
    for (auto it = waiting.begin(); it != waiting.end(); ++it) {
      const Candidate& c = it->second;
      bool ready = true;
      std::string blocked;
      for (const auto& r : c.requires_) {
        if (is_loaded(r)) continue;
        ready = false;
        if (waiting.count(r) == 0) {
          auto rit = records_.find(r);
          if (rit == records_.end()) {
            blocked = "requires " + r + ", which is missing";
          } else if (rit->second.info.state == "failed") {
            blocked = "requires " + r + ", which failed to load";
          } else {
            blocked = "requires " + r + ", which is not loaded";
          }
          break;
        }
      }
      if (ready) {
        Candidate cand = std::move(it->second);
        waiting.erase(it);
        (void)start(std::move(cand));
        moved = true;
        break;
      }
      if (!blocked.empty()) {
        dlclose(c.dl);
        set_failed(it->first, blocked);
        waiting.erase(it);
        moved = true;
        break;
      }
    }
    if (moved) continue;

    // Stuck: every remaining candidate waits on another remaining one.
    std::map<std::string, std::string> why;
    for (const auto& entry : waiting) {
      // A plain reference rather than a structured binding: clang 14 cannot
      // capture a binding in the lambda below.
      const std::string& name = entry.first;
      const auto& c = entry.second;
      // Depth-first search for a path from `name` back to itself.
      std::vector<std::string> path{name};
      std::set<std::string> seen;
      std::function<bool(const std::string&)> dfs = [&](const std::string& at) -> bool {
        for (const auto& r : waiting.at(at).requires_) {
          if (waiting.count(r) == 0) continue;
          if (r == name) {
            path.push_back(r);
            return true;
          }
          if (!seen.insert(r).second) continue;
          path.push_back(r);
          if (dfs(r)) return true;
          path.pop_back();
        }
        return false;
      };
      if (dfs(name)) {
        why[name] = "in a dependency cycle: " + join(path, " -> ");
      } else {
        std::string dep;
        for (const auto& r : c.requires_) {
          if (waiting.count(r)) {
            dep = r;
            break;
          }
        }
        why[name] = "requires " + dep + ", which is in a dependency cycle";
      }
    }
    for (auto& [name, c] : waiting) {
      dlclose(c.dl);
      set_failed(name, why[name]);
    }
    waiting.clear();
  }
}

std::vector<std::string> RuntimeImpl::rescan() {
  std::vector<std::string> touched;
  if (shut_down_) return touched;
  std::vector<std::string> replaced;
  std::set<std::string> before;
  for (const auto& [name, rec] : records_) {
    if (!rec.inst) continue;
    before.insert(name);
    FileId now;
    if (rec.builtin_desc == nullptr && file_id(file_of(name), &now) && !(now == rec.file))
      replaced.push_back(name);
  }
  for (const auto& name : replaced) {
    Status st = reload(name);
    touched.push_back(name + (st.ok() ? " reloaded" : " failed: " + std::string(st.message())));
  }
  load_all();
  for (const auto& [name, rec] : records_) {
    if (before.count(name) != 0) continue;
    if (rec.inst) {
      touched.push_back(name + " loaded");
    } else if (rec.info.state == "failed") {
      touched.push_back(name + " failed: " + rec.info.error);
    }
  }
  return touched;
}

Status RuntimeImpl::load(std::string_view name_view) {
  std::string name(name_view);
  if (shut_down_) return Status::failed_precondition("the plugin runtime is shut down");
  if (!valid_plugin_name(name)) return Status::invalid_argument("not a plugin name: \"" + name + "\"");
  if (is_loaded(name)) return Status::already_exists(name + " is loaded");
  std::error_code ec;
  if (!std::filesystem::exists(file_of(name), ec))
    return Status::failed_precondition("no file " + name + ".so in the plugins folder");
  Result<Candidate> c = open_file(name);
  if (!c.ok()) {
    set_failed(name, c.status().message());
    return Status::failed_precondition(name + ": " + std::string(c.status().message()));
  }
  for (const auto& r : c->requires_) {
    if (!is_loaded(r)) {
      dlclose(c->dl);
      std::string why = "requires " + r + ", which is not loaded";
      set_failed(name, why);
      return Status::failed_precondition(name + ": " + why);
    }
  }
  return start(std::move(*c));
}

Status RuntimeImpl::load_builtin(const hut_plugin_descriptor* descriptor, hut_plugin_init_fn init,
                                 hut_plugin_fini_fn fini) {
  if (shut_down_) return Status::failed_precondition("the plugin runtime is shut down");
  if (descriptor == nullptr || init == nullptr)
    return Status::invalid_argument("a builtin needs a descriptor and init");
  std::string name = descriptor->name ? descriptor->name : "";
  if (!valid_plugin_name(name)) return Status::invalid_argument("not a plugin name: \"" + name + "\"");
  if (is_loaded(name)) return Status::already_exists(name + " is loaded");
  Candidate c;
  Status st = check_descriptor(name, descriptor, &c);
  if (!st.ok()) {
    set_failed(name, st.message());
    return Status::failed_precondition(name + ": " + std::string(st.message()));
  }
  c.init = init;
  c.fini = fini;
  for (const auto& r : c.requires_) {
    if (!is_loaded(r)) {
      std::string why = "requires " + r + ", which is not loaded";
      set_failed(name, why);
      return Status::failed_precondition(name + ": " + why);
    }
  }
  Record& rec = record(name);
  rec.builtin_desc = descriptor;
  rec.builtin_init = init;
  rec.builtin_fini = fini;
  return start(std::move(c));
}

// Ends a loaded instance: answers its pending requests, ends its timers and
// queued callbacks, calls fini, closes the library.
void RuntimeImpl::stop(Record& rec, std::string_view why) {
  hut_plugin* inst = rec.inst.get();
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    inst->closing = true;
  }
  std::string message = inst->name + " is " + std::string(why);
  // The space owns the pending requests: it answers the plugin's now.
  services_->plugin_stopped(inst->name, message);
  for (auto& [id, t] : inst->timers) close_timer(t);
  inst->timers.clear();
  if (inst->fini) inst->fini(inst);
  // Threads were stopped by fini; what they queued is dropped.
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    std::erase_if(posted_, [&](const Posted& p) { return p.inst == inst; });
  }
  // Timers the plugin started inside fini end too.
  for (auto& [id, t] : inst->timers) close_timer(t);
  inst->timers.clear();
  void* dl = inst->dl;
  rec.inst.reset();
  if (dl) dlclose(dl);
  order_.erase(std::remove(order_.begin(), order_.end(), rec.info.name), order_.end());
}

Status RuntimeImpl::unload(std::string_view name_view) {
  auto it = records_.find(name_view);
  if (it == records_.end() || !it->second.inst)
    return Status::not_found(std::string(name_view) + " is not loaded");
  std::vector<std::string> users;
  for (const auto& other : order_) {
    const auto& req = records_.find(other)->second.info.requires_;
    if (std::find(req.begin(), req.end(), it->first) != req.end()) users.push_back(other);
  }
  if (!users.empty()) return Status::failed_precondition(it->first + " is required by " + join(users, ", "));
  stop(it->second, "unloaded");
  it->second.info.state = "unloaded";
  it->second.info.error.clear();
  it->second.info.widgets.clear();
  log_printf(LogLevel::kInfo, "plugins", "unloaded %s", it->first.c_str());
  return Status::ok_status();
}

Status RuntimeImpl::reload(std::string_view name_view) {
  auto it = records_.find(name_view);
  if (it == records_.end() || !it->second.inst)
    return Status::not_found(std::string(name_view) + " is not loaded");
  std::string name = it->first;
  Record& rec = it->second;
  stop(rec, "reloading");
  if (rec.builtin_desc != nullptr) {
    Candidate c;
    Status st = check_descriptor(name, rec.builtin_desc, &c);
    c.init = rec.builtin_init;
    c.fini = rec.builtin_fini;
    if (!st.ok()) {
      set_failed(name, st.message());
      return Status::failed_precondition(name + ": " + std::string(st.message()));
    }
    st = start(std::move(c));
    if (st.ok()) log_printf(LogLevel::kInfo, "plugins", "reloaded %s", name.c_str());
    return st;
  }
  rec.info.state = "unloaded";
  Status st = load(name);
  if (st.ok()) {
    log_printf(LogLevel::kInfo, "plugins", "reloaded %s", name.c_str());
  } else if (rec.info.state != "failed") {
    set_failed(name, st.message());
  }
  return st;
}

void RuntimeImpl::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  while (!order_.empty()) {
    Record& rec = records_.find(order_.back())->second;
    stop(rec, "shutting down");
    rec.info.state = "unloaded";
  }
  if (async_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(async_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
    async_ = nullptr;
  }
}

// ---- Dispatch --------------------------------------------------------------

Status RuntimeImpl::dispatch_widget(std::string_view plugin, const WidgetRequest& request) {
  hut_plugin* inst = loaded(plugin);
  if (inst == nullptr || inst->hooks.on_widget == nullptr)
    return Status::not_found("no plugin \"" + std::string(plugin) + "\" takes widget requests");
  hut_widget_request req;
  req.request_id = request.request_id;
  req.session_id = request.session_id.c_str();
  hut_user user;
  user.id = request.user.id.c_str();
  user.name = request.user.name.c_str();
  user.avatar = request.user.avatar.empty() ? nullptr : request.user.avatar.c_str();
  req.user = &user;
  if (request.data_json.empty()) {
    req.data_json = "null";
    req.data_len = 4;
  } else {
    req.data_json = request.data_json.c_str();
    req.data_len = request.data_json.size();
  }
  const hut_hooks& h = inst->hooks;
  int rc = measured(inst, [&] { return h.on_widget(inst, h.user_data, &req); });
  // A refusal answers the request, unless the plugin answered it already
  // (then this finds nothing pending).
  if (rc < 0)
    services_->reply_error(inst->name, request.request_id, bus_code(rc), inst->name + ": " + error_text(rc));
  return Status::ok_status();
}

Status RuntimeImpl::dispatch_http(std::string_view plugin, const PluginHttpRequest& request) {
  hut_plugin* inst = loaded(plugin);
  if (inst == nullptr || inst->hooks.on_http == nullptr)
    return Status::not_found("no plugin \"" + std::string(plugin) + "\" takes HTTP requests");
  std::vector<hut_header> headers;
  headers.reserve(request.headers.size());
  for (const auto& [k, v] : request.headers) headers.push_back(hut_header{k.c_str(), v.c_str()});
  hut_http_request req;
  req.request_id = request.request_id;
  req.method = request.method.c_str();
  req.path = request.path.empty() ? "/" : request.path.c_str();
  req.query = request.query.c_str();
  req.headers = headers.data();
  req.header_count = headers.size();
  req.body = request.body.c_str();
  req.body_len = request.body.size();
  req.x_request_id = request.x_request_id.c_str();
  req.body_file = request.body_file.empty() ? nullptr : request.body_file.c_str();
  if (req.body_file != nullptr) req.body_len = static_cast<size_t>(request.body_file_size);
  const hut_hooks& h = inst->hooks;
  int rc = measured(inst, [&] { return h.on_http(inst, h.user_data, &req); });
  if (rc < 0)
    services_->http_respond(inst->name, request.request_id,
                            json_error_response(http_status(rc), bus_code(rc), error_text(rc)));
  return Status::ok_status();
}

const PluginAsset* RuntimeImpl::find_asset(std::string_view plugin, std::string_view path) const {
  if (!valid_asset_path(path)) return nullptr;
  const hut_plugin* inst = loaded(plugin);
  if (inst == nullptr) return nullptr;
  auto it = inst->assets.find(path);
  return it == inst->assets.end() ? nullptr : &it->second;
}

namespace {

hut_user c_user(const UserRef& u) {
  hut_user out;
  out.id = u.id.c_str();
  out.name = u.name.c_str();
  out.avatar = u.avatar.empty() ? nullptr : u.avatar.c_str();
  return out;
}

}  // namespace

void RuntimeImpl::room_event(std::string_view room, const UserRef& user, RoomHook hut_hooks::*hook) {
  std::string room_s(room);
  hut_user u = c_user(user);
  for (hut_plugin* inst : loaded_in_order()) {
    RoomHook fn = inst->hooks.*hook;
    if (fn == nullptr) continue;
    measured(inst, [&] {
      fn(inst, inst->hooks.user_data, room_s.c_str(), &u);
      return 0;
    });
  }
}

void RuntimeImpl::user_event(const UserRef& user, UserHook hut_hooks::*hook) {
  hut_user u = c_user(user);
  for (hut_plugin* inst : loaded_in_order()) {
    UserHook fn = inst->hooks.*hook;
    if (fn == nullptr) continue;
    measured(inst, [&] {
      fn(inst, inst->hooks.user_data, &u);
      return 0;
    });
  }
}

Status RuntimeImpl::filter_post(std::string_view room, const UserRef& from, std::string* text,
                                std::string* data_json, std::string_view skip_plugin) {
  std::string room_s(room);
  hut_user u = c_user(from);
  for (hut_plugin* inst : loaded_in_order()) {
    if (inst->hooks.on_post == nullptr || inst->name == skip_plugin) continue;
    const char* text_in = text->c_str();
    const char* data_in = data_json->empty() ? nullptr : data_json->c_str();
    hut_post post{room_s.c_str(), &u, text_in, data_in, nullptr};
    int rc = measured(inst, [&] { return inst->hooks.on_post(inst, inst->hooks.user_data, &post); });
    if (rc < 0) {
      std::string why = post.refusal != nullptr && *post.refusal != '\0'
                            ? std::string(post.refusal)
                            : inst->name + " refused the post (" + error_text(rc) + ")";
      return rc == HUT_EPERM ? Status::permission_denied(why) : Status::internal(why);
    }
    // Copied before either string changes: the plugin may point one field at
    // the other's text.
    std::string new_text = post.text != nullptr ? post.text : "";
    std::string new_data = post.data_json != nullptr ? post.data_json : "";
    if (post.text != text_in) *text = std::move(new_text);
    if (post.data_json != data_in) *data_json = std::move(new_data);
  }
  return Status::ok_status();
}

void RuntimeImpl::drain_posts() {
  std::vector<Posted> batch;
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    batch.swap(posted_);
  }
  for (const Posted& p : batch) {
    // Instances stop only on this thread, and stop() drops their queued
    // callbacks; a callback taken into `batch` belongs to a live instance
    // unless an earlier callback of this batch stopped it.
    bool live = false;
    for (const auto& [name, rec] : records_) {
      if (rec.inst.get() == p.inst) {
        live = true;
        break;
      }
    }
    if (!live) continue;
    measured(p.inst, [&] {
      p.cb(p.inst, p.arg);
      return 0;
    });
  }
}

void timer_fired(uv_timer_t* h) {
  auto* t = static_cast<PluginTimer*>(h->data);
  hut_plugin* inst = t->inst;
  hut_callback cb = t->cb;
  void* arg = t->arg;
  if (!t->repeating) {
    inst->timers.erase(t->id);
    close_timer(t);
  }
  inst->runtime->measured(inst, [&] {
    cb(inst, arg);
    return 0;
  });
}

// ---- Host functions --------------------------------------------------------

void RuntimeImpl::host_log(hut_plugin* self, int level, const char* message) {
  if (self == nullptr || message == nullptr) return;
  LogLevel l = level <= HUT_LOG_DEBUG  ? LogLevel::kDebug
               : level == HUT_LOG_INFO ? LogLevel::kInfo
               : level == HUT_LOG_WARN ? LogLevel::kWarn
                                       : LogLevel::kError;
  log_write(l, self->component, message);
}

int RuntimeImpl::host_reply(hut_plugin* self, uint64_t id, const char* data, size_t len) {
  if (self == nullptr || data == nullptr) return HUT_EINVAL;
  RuntimeImpl* rt = self->runtime;
  return rt->services_->reply(self->name, id, std::string_view(data, len));
}

int RuntimeImpl::host_reply_error(hut_plugin* self, uint64_t id, const char* code, const char* message) {
  if (self == nullptr || code == nullptr || *code == '\0') return HUT_EINVAL;
  RuntimeImpl* rt = self->runtime;
  return rt->services_->reply_error(self->name, id, code, message ? message : "");
}

int RuntimeImpl::host_send_widget_event(hut_plugin* self, hut_target target, const char* target_id,
                                        const char* data, size_t len) {
  if (self == nullptr || data == nullptr) return HUT_EINVAL;
  EventTarget t;
  switch (target) {
    case HUT_TARGET_SESSION:
      t = EventTarget::kSession;
      break;
    case HUT_TARGET_USER:
      t = EventTarget::kUser;
      break;
    case HUT_TARGET_ROOM:
      t = EventTarget::kRoom;
      break;
    case HUT_TARGET_EVERYONE:
      t = EventTarget::kEveryone;
      break;
    default:
      return HUT_EINVAL;
  }
  if (t != EventTarget::kEveryone && (target_id == nullptr || *target_id == '\0')) return HUT_EINVAL;
  return self->runtime->services_->send_widget_event(self->name, t, target_id ? target_id : "",
                                                     std::string_view(data, len));
}

PluginServices::RoomDone RuntimeImpl::room_done(hut_plugin* self, hut_room_done done, void* arg) {
  if (done == nullptr) return nullptr;
  std::string name = self->name;
  uint64_t serial = self->serial;
  return [this, name, serial, done, arg](int status, std::string json) {
    hut_plugin* inst = loaded(name);
    if (inst == nullptr || inst->serial != serial) return;
    measured(inst, [&] {
      done(inst, arg, status, json.c_str(), json.size());
      return 0;
    });
  };
}

int RuntimeImpl::host_room_post(hut_plugin* self, const char* room, const char* text, const char* data_json,
                                hut_room_done done, void* arg) {
  if (self == nullptr || room == nullptr || *room == '\0' || text == nullptr) return HUT_EINVAL;
  return self->runtime->services_->room_post(self->name, room, text, data_json ? data_json : "",
                                             self->runtime->room_done(self, done, arg));
}

int RuntimeImpl::host_room_history(hut_plugin* self, const char* room, uint64_t before, int limit,
                                   hut_room_done done, void* arg) {
  if (self == nullptr || room == nullptr || *room == '\0' || limit < 1 || limit > 200) return HUT_EINVAL;
  return self->runtime->services_->room_history(room, before, limit,
                                                self->runtime->room_done(self, done, arg));
}

int RuntimeImpl::host_room_members(hut_plugin* self, const char* room, char* buf, size_t buflen,
                                   size_t* json_len) {
  if (self == nullptr || room == nullptr || (buf == nullptr && buflen > 0)) return HUT_EINVAL;
  std::string json;
  int rc = self->runtime->services_->room_members(room, &json);
  if (rc != HUT_OK) return rc;
  if (json_len != nullptr) *json_len = json.size();
  if (buflen < json.size()) return HUT_ERANGE;
  if (!json.empty()) std::memcpy(buf, json.data(), json.size());
  if (buflen > json.size()) buf[json.size()] = '\0';
  return HUT_OK;
}

int RuntimeImpl::host_notify(hut_plugin* self, const char* user_id, const char* title, const char* body,
                             const char* url) {
  if (self == nullptr || user_id == nullptr || *user_id == '\0' || title == nullptr) return HUT_EINVAL;
  return self->runtime->services_->notify(self->name, user_id, title, body ? body : "", url ? url : "");
}

namespace {

int kv_key_check(const char* key) {
  if (key == nullptr || *key == '\0') return HUT_EINVAL;
  if (std::strlen(key) > kMaxKeyLen) return HUT_ETOOBIG;
  return HUT_OK;
}

}  // namespace

const RuntimeImpl::KvPending* RuntimeImpl::kv_pending(const std::string& plugin,
                                                      const std::string& key) const {
  auto p = kv_overlay_->plugins.find(plugin);
  if (p == kv_overlay_->plugins.end()) return nullptr;
  auto k = p->second.find(key);
  return k == p->second.end() ? nullptr : &k->second;
}

int RuntimeImpl::kv_write(const hut_plugin* inst, std::string key, std::optional<std::string> value) {
  KvOverlay& overlay = *kv_overlay_;
  uint64_t generation = ++overlay.next_generation;
  bool erase = !value.has_value();
  overlay.plugins[inst->name].insert_or_assign(key, KvPending{generation, value});
  // The overlay is owned by this runtime alone: when the weak reference
  // cannot be locked, the runtime is gone and so is `this`.
  Store::DoneCallback done = [this, weak = std::weak_ptr<KvOverlay>(kv_overlay_), plugin = inst->name, key,
                              generation, erase](Status status) {
    if (auto alive = weak.lock()) kv_acknowledged(plugin, key, generation, erase, status);
  };
  kv_submitting_ = generation;
  kv_refused_ = false;
  if (value) {
    store_->kv_put(inst->name, std::move(key), std::move(*value), std::move(done));
  } else {
    store_->kv_delete(inst->name, std::move(key), std::move(done));
  }
  kv_submitting_ = 0;
  return kv_refused_ ? HUT_EIO : HUT_OK;
}

void RuntimeImpl::kv_acknowledged(const std::string& plugin, const std::string& key, uint64_t generation,
                                  bool erase, const Status& status) {
  auto p = kv_overlay_->plugins.find(plugin);
  if (p != kv_overlay_->plugins.end()) {
    auto k = p->second.find(key);
    if (k != p->second.end() && k->second.generation == generation) {
      p->second.erase(k);
      if (p->second.empty()) kv_overlay_->plugins.erase(p);
    }
  }
  // A delete that found nothing: a put before it failed; the key is absent
  // either way.
  if (status.ok() || (erase && status.is_not_found())) return;
  if (generation == kv_submitting_) {
    kv_refused_ = true;  // kv_write returns HUT_EIO: the plugin learns of it
  } else {
    record(plugin).stats.kv_failed_writes++;
  }
  log_printf(LogLevel::kError, "plugins", "plugin %s: the key-value %s of key '%s' was not stored: %s",
             plugin.c_str(), erase ? "delete" : "write", key.c_str(), status.to_string().c_str());
}

int RuntimeImpl::host_kv_get(hut_plugin* self, const char* key, void* buf, size_t buflen, size_t* value_len) {
  if (self == nullptr || (buf == nullptr && buflen > 0)) return HUT_EINVAL;
  if (int rc = kv_key_check(key); rc != HUT_OK) return rc;
  std::string value;
  if (int rc = self->runtime->kv_lookup(self, key, &value, "kv_get"); rc != HUT_OK) return rc;
  if (value_len) *value_len = value.size();
  if (buflen < value.size()) return HUT_ERANGE;
  if (!value.empty()) std::memcpy(buf, value.data(), value.size());
  if (buflen > value.size()) static_cast<char*>(buf)[value.size()] = '\0';
  return HUT_OK;
}

int RuntimeImpl::kv_lookup(const hut_plugin* inst, const std::string& key, std::string* value,
                           const char* op) {
  if (const KvPending* p = kv_pending(inst->name, key)) {
    if (!p->value) return HUT_ENOENT;
    if (value != nullptr) *value = *p->value;
    return HUT_OK;
  }
  Status st = store_->kv_get_now(inst->name, key, value);
  if (st.is_not_found()) return HUT_ENOENT;
  if (!st.ok()) {
    log_write(LogLevel::kError, inst->component, std::string(op) + " '" + key + "': " + st.to_string());
    return HUT_EIO;
  }
  return HUT_OK;
}

int RuntimeImpl::host_kv_put(hut_plugin* self, const char* key, const void* value, size_t value_len) {
  if (self == nullptr || (value == nullptr && value_len > 0)) return HUT_EINVAL;
  if (int rc = kv_key_check(key); rc != HUT_OK) return rc;
  if (value_len > kMaxValueLen) return HUT_ETOOBIG;
  std::string v = value_len > 0 ? std::string(static_cast<const char*>(value), value_len) : std::string();
  return self->runtime->kv_write(self, key, std::move(v));
}

const char* RuntimeImpl::host_data_dir(hut_plugin* self) {
  if (self == nullptr) return nullptr;
  if (!self->data_dir.empty()) return self->data_dir.c_str();
  const std::string& base = self->runtime->options_.data_dir;
  if (base.empty()) return nullptr;
  std::string dir = base + "/plugins/" + self->name;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    log_write(LogLevel::kError, self->component, "cannot create " + dir + ": " + ec.message());
    return nullptr;
  }
  self->data_dir = std::move(dir);
  return self->data_dir.c_str();
}

int RuntimeImpl::host_kv_delete(hut_plugin* self, const char* key) {
  if (self == nullptr) return HUT_EINVAL;
  if (int rc = kv_key_check(key); rc != HUT_OK) return rc;
  std::string key_s(key);
  // Absent: a pending delete, or nothing pending and nothing stored.
  if (int rc = self->runtime->kv_lookup(self, key_s, nullptr, "kv_delete"); rc != HUT_OK) return rc;
  return self->runtime->kv_write(self, std::move(key_s), std::nullopt);
}

int RuntimeImpl::host_register_hooks(hut_plugin* self, const hut_hooks* hooks, size_t hooks_size) {
  // ABI 1.0 defines every field the struct has today; later minors accept the
  // 1.0 size as the minimum and zero what an older plugin does not know.
  if (self == nullptr || hooks == nullptr || hooks_size < kMinHooksSize) return HUT_EINVAL;
  hut_hooks copy{};
  std::memcpy(&copy, hooks, std::min(hooks_size, sizeof(hut_hooks)));
  self->hooks = copy;
  return HUT_OK;
}

int RuntimeImpl::host_http_respond(hut_plugin* self, uint64_t id, int status, const hut_header* headers,
                                   size_t header_count, const char* body, size_t body_len) {
  if (self == nullptr || status < 100 || status > 599 || (headers == nullptr && header_count > 0) ||
      (body == nullptr && body_len > 0))
    return HUT_EINVAL;
  RuntimeImpl* rt = self->runtime;
  PluginHttpResponse resp;
  resp.status = status;
  for (size_t i = 0; i < header_count; ++i) {
    if (headers[i].name == nullptr || headers[i].value == nullptr) return HUT_EINVAL;
    resp.headers.emplace_back(headers[i].name, headers[i].value);
  }
  if (body_len > 0) resp.body.assign(body, body_len);
  return rt->services_->http_respond(self->name, id, std::move(resp));
}

int RuntimeImpl::host_http_respond_file(hut_plugin* self, uint64_t id, int status, const hut_header* headers,
                                        size_t header_count, const char* path) {
  if (self == nullptr || path == nullptr || path[0] != '/' || status < 100 || status > 599 ||
      (headers == nullptr && header_count > 0))
    return HUT_EINVAL;
  PluginHttpResponse resp;
  resp.status = status;
  for (size_t i = 0; i < header_count; ++i) {
    if (headers[i].name == nullptr || headers[i].value == nullptr) return HUT_EINVAL;
    resp.headers.emplace_back(headers[i].name, headers[i].value);
  }
  resp.body_path = path;
  return self->runtime->services_->http_respond(self->name, id, std::move(resp));
}

int RuntimeImpl::host_http_body_to_file(hut_plugin* self, const char* method, const char* path,
                                        uint64_t max_bytes) {
  if (self == nullptr || method == nullptr || path == nullptr || path[0] != '/' || max_bytes == 0 ||
      std::strcmp(method, "GET") == 0 || std::strcmp(method, "HEAD") == 0 || method[0] == '\0')
    return HUT_EINVAL;
  if (host_data_dir(self) == nullptr) return HUT_EUNAVAIL;
  for (auto& r : self->body_routes) {
    if (r.method == method && r.path == path) {
      r.max_bytes = max_bytes;
      return HUT_OK;
    }
  }
  self->body_routes.push_back({method, path, max_bytes});
  return HUT_OK;
}

int RuntimeImpl::host_register_asset(hut_plugin* self, const char* path, const char* content_type,
                                     const void* data, size_t size) {
  if (self == nullptr || path == nullptr || !valid_asset_path(path) || (data == nullptr && size > 0))
    return HUT_EINVAL;
  if (self->assets.count(std::string_view(path))) return HUT_EEXIST;
  auto storage = std::make_unique<std::string[]>(3);
  storage[0] = path;
  storage[1] = content_type && *content_type ? content_type : "application/octet-stream";
  if (size > 0) storage[2].assign(static_cast<const char*>(data), size);
  PluginAsset asset{storage[0], storage[1], storage[2]};
  self->assets.emplace(storage[0], asset);
  self->owned_assets.push_back(std::move(storage));
  return HUT_OK;
}

int RuntimeImpl::host_timer_start(hut_plugin* self, uint64_t timeout_ms, uint64_t repeat_ms, hut_callback cb,
                                  void* arg, uint64_t* timer_id) {
  if (self == nullptr || cb == nullptr) return HUT_EINVAL;
  RuntimeImpl* rt = self->runtime;
  auto* t = new PluginTimer;
  if (int rc = uv_timer_init(rt->loop_, &t->handle); rc != 0) {
    delete t;
    return HUT_EINTERNAL;
  }
  t->handle.data = t;
  t->inst = self;
  t->id = rt->next_timer_id_++;
  t->cb = cb;
  t->arg = arg;
  t->repeating = repeat_ms > 0;
  uv_timer_start(&t->handle, timer_fired, timeout_ms, repeat_ms);
  self->timers.emplace(t->id, t);
  if (timer_id) *timer_id = t->id;
  return HUT_OK;
}

int RuntimeImpl::host_timer_stop(hut_plugin* self, uint64_t timer_id) {
  if (self == nullptr) return HUT_EINVAL;
  auto it = self->timers.find(timer_id);
  if (it == self->timers.end()) return HUT_ENOENT;
  close_timer(it->second);
  self->timers.erase(it);
  return HUT_OK;
}

int RuntimeImpl::host_post(hut_plugin* self, hut_callback cb, void* arg) {
  if (self == nullptr || cb == nullptr) return HUT_EINVAL;
  RuntimeImpl* rt = self->runtime;
  {
    std::lock_guard<std::mutex> lock(rt->post_mu_);
    if (self->closing || rt->async_ == nullptr) return HUT_ESTATE;
    rt->posted_.push_back(Posted{self, cb, arg});
    // Sent under the lock: shutdown() closes async_ only after every
    // instance is closing, which it marks under this lock.
    uv_async_send(rt->async_);
  }
  return HUT_OK;
}

// ---- Creation --------------------------------------------------------------

Status RuntimeImpl::import_old_kv() {
  if (options_.data_dir.empty()) return Status::ok_status();
  const std::string file = options_.data_dir + "/plugins.db";
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return Status::ok_status();
  Result<uint64_t> added = store_->import_plugin_kv(file);
  if (!added.ok()) {
    return Status::failed_precondition("cannot import the plugins' key-value data of " + file + ": " +
                                       std::string(added.status().message()) +
                                       " (move the file away to start without it)");
  }
  // The import committed; renamed, the file is not imported again. SQLite
  // removes the WAL and shared-memory files when the import's connection
  // closes; should they remain, they follow the file so that they stay a pair.
  const std::string renamed = file + ".imported";
  for (const char* suffix : {"", "-wal", "-shm"}) {
    if (*suffix != '\0' && !std::filesystem::exists(file + suffix, ec)) continue;
    std::filesystem::rename(file + suffix, renamed + suffix, ec);
    if (ec) {
      return Status::io_error("imported " + file + " but cannot rename it to " + renamed + ": " +
                              ec.message());
    }
  }
  log_printf(LogLevel::kInfo, "plugins",
             "imported %llu key-value entries of %s into the store (existing entries kept); the file is "
             "now %s",
             static_cast<unsigned long long>(*added), file.c_str(), renamed.c_str());
  return Status::ok_status();
}

Result<std::unique_ptr<PluginRuntime>> PluginRuntime::create(uv_loop_t* loop, PluginServices* services,
                                                             Options options) {
  if (loop == nullptr || services == nullptr)
    return Status::invalid_argument("a plugin runtime needs a loop and services");
  if (options.store == nullptr) return Status::invalid_argument("a plugin runtime needs a store");
  if (!options.data_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.data_dir, ec);
    if (ec) return Status::io_error("cannot create " + options.data_dir + ": " + ec.message());
  }
  auto rt = std::make_unique<RuntimeImpl>(loop, services, std::move(options));
  HUT_RETURN_IF_ERROR(rt->import_old_kv());
  HUT_RETURN_IF_ERROR(rt->start_async());
  return std::unique_ptr<PluginRuntime>(std::move(rt));
}

bool valid_plugin_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace hut
