// The plugin runtime: loads plugins from the plugins folder, checks their ABI,
// orders them by dependency, gives them the host table, and routes bus
// requests, HTTP requests and asset lookups to them.
//
// This header is the seam between the runtime (libhutopia/plugins) and the
// space that hosts it (libhutopia/space): the space calls PluginRuntime, and
// implements PluginServices for what plugins ask of the space.
//
// Thread: everything here runs on the loop thread, except what says otherwise.
// Ownership: the space owns the PluginRuntime and outlives it; the runtime
// owns the loaded libraries and closes them in reverse load order at shutdown.
#ifndef HUTOPIA_PLUGINS_RUNTIME_H_
#define HUTOPIA_PLUGINS_RUNTIME_H_

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <hutopia/plugin.h>
#include <hutopia/status.h>

#include "util/vocab.h"

namespace hut {

class Store;

// An HTTP request for /api/<plugin>/<path>.
struct PluginHttpRequest {
  uint64_t request_id = 0;  // set by the runtime, which owns the request
  std::string method;       // "GET", "POST", ...
  std::string path;         // what follows /api/<plugin>, starting with "/"
  std::string query;        // without the "?", may be empty
  std::vector<std::pair<std::string, std::string>> query_params;  // decoded name/value pairs, in order
  std::vector<std::pair<std::string, std::string>> headers;       // lower-case names
  std::string body;
  std::string x_request_id;
  // For a route of PluginRuntime::body_route: the file holding the body.
  std::string body_file;
  uint64_t body_file_size = 0;
};

// What plugins may ask of the space. Implemented by the space; called by the
// runtime on the loop thread. Return 0, or a negative HUT_E* code of plugin.h.
//
// Pending requests are not here: the runtime owns every widget and HTTP
// request it is handed (PendingRequests), and answers the one who asked
// through the PluginAnswerFn given with the request.
class PluginServices {
 public:
  virtual ~PluginServices() = default;
  // Sends {"op":"widget","plugin":plugin,"data":data_json} to the target.
  // `target_id` is the session id, user id or room id; ignored for kEveryone.
  virtual int send_widget_event(std::string_view plugin, EventTarget target, std::string_view target_id,
                                std::string_view data_json) = 0;
  // Sends {"op":"notify","plugin","title","body"?,"url"?} to the user's sessions.
  virtual int notify(std::string_view plugin, std::string_view user_id, std::string_view title,
                     std::string_view body, std::string_view url) = 0;

  // Rooms for plugins (ABI 1.1). `done` gets a HUT_* status and the result
  // JSON, on the loop, later. The defaults answer HUT_ENOTSUP (no rooms).
  using RoomDone = std::function<void(int status, std::string json)>;
  virtual int room_post(std::string_view plugin, std::string_view room, std::string_view text,
                        std::string_view data_json, RoomDone done) {
    (void)plugin, (void)room, (void)text, (void)data_json, (void)done;
    return HUT_ENOTSUP;
  }
  virtual int room_history(std::string_view room, uint64_t before, int limit, RoomDone done) {
    (void)room, (void)before, (void)limit, (void)done;
    return HUT_ENOTSUP;
  }
  // The members JSON array, or a HUT_* status.
  virtual int room_members(std::string_view room, std::string* json) {
    (void)room, (void)json;
    return HUT_ENOTSUP;
  }
  // A token for the user of the welcomed bus session `session_id` (ABI 1.4):
  // an app token of this space living ttl_s seconds. HUT_ENOENT for no such
  // session, HUT_EUNAVAIL without an app secret.
  virtual int mint_session_token(std::string_view session_id, int64_t ttl_s, std::string* token) {
    (void)session_id, (void)ttl_s, (void)token;
    return HUT_ENOTSUP;
  }
};

// One embedded asset of a plugin, served at /plugins/<plugin>/<path>.
struct PluginAsset {
  std::string_view path;  // relative, no leading "/"
  std::string_view content_type;
  std::string_view data;  // borrowed from the loaded library
};

struct PluginInfo {
  std::string name;
  std::string version;
  std::string abi;  // "MAJOR.MINOR"
  std::vector<std::string> requires_;
  std::vector<WidgetInfo> widgets;
  std::string state;  // "loaded", "failed", "unloaded"
  std::string error;  // why it failed, when it did
};

// Per-plugin counters for /metrics.
struct PluginStats {
  std::string name;
  uint64_t calls = 0;    // hook invocations
  uint64_t errors = 0;   // hooks that returned an error
  uint64_t time_ns = 0;  // time spent inside hooks
  // kv_put/kv_delete calls that returned HUT_OK but whose write the store
  // could not commit (each is logged with the plugin and key).
  uint64_t kv_failed_writes = 0;
};

// True for a plugin name: 1-64 characters of a-z 0-9 _ - (the .so file's
// name, the management API's and the HTTP routes' plugin part).
bool valid_plugin_name(std::string_view name);

// Whether a space of ABI 1.<host_minor> loads a plugin with this
// descriptor: the same major, and either built against a minor up to the
// space's or (descriptors of 1.5 on) requiring one (requires_abi). Reads only
// abi_major and abi_minor, and requires_abi when abi_minor is 5 or more.
Status check_plugin_abi(const hut_plugin_descriptor& d, uint32_t host_minor = HUT_PLUGIN_ABI_MINOR);

class PluginRuntime : public WidgetDispatch {
 public:
  struct Options {
    std::string plugins_dir;
    // Created when missing. Older versions kept the plugins' key-value data
    // here in plugins.db: create() imports that file into the store once and
    // renames it plugins.db.imported. Empty: nothing to import.
    std::string data_dir;
    // Holds the plugins' key-value data (required). Borrowed: it must stay
    // open until shutdown() returned; the runtime submits no write to it
    // afterwards, and its callbacks may come back after the runtime is gone.
    Store* store = nullptr;
    // How long a widget or HTTP request waits for its plugin's answer.
    int64_t request_timeout_ms = 10000;
  };

  // `loop` and `services` are borrowed and must outlive the runtime.
  static Result<std::unique_ptr<PluginRuntime>> create(uv_loop_t* loop, PluginServices* services,
                                                       Options options);
  virtual ~PluginRuntime() = default;

  // Loads every plugin of the folder; failures are logged and kept in list()
  // with their reason; they never stop the others.
  virtual void load_all() = 0;
  // Loads `name` (<plugins_dir>/<name>.so). kAlreadyExists when loaded;
  // kFailedPrecondition (with the reason) when it cannot load.
  virtual Status load(std::string_view name) = 0;
  // kNotFound when not loaded; kFailedPrecondition while a loaded plugin requires it.
  virtual Status unload(std::string_view name) = 0;
  // Unloads and loads the current file again; the plugin's KV data stays.
  // Pending requests of the old instance are answered "unavailable".
  virtual Status reload(std::string_view name) = 0;
  // Looks at the folder again (a configuration reload): reloads each loaded
  // plugin whose file was replaced since it was loaded (another file at the
  // path: install or mv a new build, never write into the loaded file), then
  // loads the plugins that are not loaded (new files, or ones that failed).
  // A loaded plugin whose file is gone stays loaded until unloaded. Returns a
  // line per plugin it touched ("echo reloaded", "extra loaded", "x failed: why").
  virtual std::vector<std::string> rescan() = 0;
  // Registers a plugin compiled into the program: the same descriptor and
  // entry points a shared library exports, without dlopen. Its configuration
  // is <plugins_dir>/<name>.toml when that exists. kAlreadyExists when a
  // plugin of that name is loaded; kFailedPrecondition (with the reason) when
  // it cannot load. `descriptor` is borrowed and must outlive the runtime;
  // `fini` may be null. unload() and reload() work on it as on any plugin
  // (reload calls fini and init again).
  virtual Status load_builtin(const hut_plugin_descriptor* descriptor, hut_plugin_init_fn init,
                              hut_plugin_fini_fn fini) = 0;
  // Calls every plugin's fini and closes the libraries, in reverse order.
  virtual void shutdown() = 0;

  virtual std::vector<PluginInfo> list() const = 0;
  std::vector<WidgetInfo> widgets() const override = 0;  // of loaded plugins
  virtual std::vector<PluginStats> stats() const = 0;
  virtual bool is_loaded(std::string_view name) const = 0;

  // Routes a `widget` op (see WidgetDispatch): the runtime owns it until
  // its one answer, the plugin's (reply or reply_error), `kExpired` at its
  // deadline or `kStopped` when the plugin stops.
  Result<RequestId> dispatch_widget(std::string_view plugin, WidgetRequest request,
                                    PluginAnswerFn answer) override = 0;
  // Routes an HTTP request the same way; its answer is kHttp (the plugin's
  // response, which `answer` may refuse: the request stays pending), kExpired
  // or kStopped. `owner` counts it (pending_requests(owner)). kNotFound as
  // above, and `answer` is never called.
  virtual Result<RequestId> dispatch_http(std::string_view plugin, PluginHttpRequest request,
                                          std::string_view owner, PluginAnswerFn answer) = 0;
  size_t pending_requests(std::string_view owner) const override = 0;
  // Every pending request, of all owners.
  virtual size_t pending_total() const = 0;
  // A reload's new request timeout, for requests dispatched from now on.
  virtual void set_request_timeout(int64_t timeout_ms) = 0;
  // True when the loaded plugin asked (http_body_to_file) for the body of
  // `method` /api/<plugin><path> to be written to a file: its limit in bytes
  // and the folder for the file.
  virtual bool body_route(std::string_view plugin, std::string_view method, std::string_view path,
                          uint64_t* max_bytes, std::string* dir) const = 0;
  // Looks up an embedded asset; nullptr when the plugin has no such path.
  // The result is valid until the plugin is unloaded or reloaded.
  virtual const PluginAsset* find_asset(std::string_view plugin, std::string_view path) const = 0;

  // Room events, for the plugins' room hooks, called in load order by the
  // rooms part of the space.
  virtual void member_joined(std::string_view room, const UserRef& user) = 0;
  virtual void member_left(std::string_view room, const UserRef& user) = 0;
  virtual void user_online(const UserRef& user) = 0;
  virtual void user_offline(const UserRef& user) = 0;
  // A post about to be stored: every plugin with on_post sees it in load
  // order and may rewrite `text` and `data_json` (empty: no data) in place.
  // kPermissionDenied with the plugin's reason when one refuses it; the later
  // plugins are then not asked. The plugin named `skip_plugin` (the author of
  // a plugin's own post; empty for none) is not asked.
  virtual Status filter_post(std::string_view room, const UserRef& from, std::string* text,
                             std::string* data_json, std::string_view skip_plugin) = 0;
};

}  // namespace hut

#endif  // HUTOPIA_PLUGINS_RUNTIME_H_
