#include <hutopia/space.h>
#include <hutopia/token.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "admin/admin_api.h"
#include "bus/bus.h"
#include "bus/protocol.h"
#include "net/server.h"
#include "plugins/runtime.h"
#include "rooms/rooms.h"
#include "space/cluster_node.h"
#include "space/relay_keys.h"
#include "space/routes.h"
#include "store/store.h"
#include "util/assets.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/loop_queue.h"
#include "util/metrics.h"
#include "util/random.h"
#include "util/wire_error.h"

HUT_DECLARE_ASSETS(space_web_assets)

namespace hut {
namespace {

constexpr int kShutdownGraceMs = 3000;
// The owner name the plugin runtime counts this space's pending HTTP requests by
// (the bound limits.http_pending).
constexpr std::string_view kHttpOwner = "(http)";

bool find_web_asset(std::string_view path, std::string_view* type, std::string_view* data) {
  std::optional<EmbeddedFile> file = find_embedded(HUT_EMBEDDED_ASSETS(space_web_assets), path);
  if (!file) return false;
  *type = file->type;
  *data = file->data;
  return true;
}

std::string url_host(const std::string& host) {
  if (host.empty() || host == "0.0.0.0" || host == "*") return "127.0.0.1";
  if (host == "::") return "[::1]";
  if (host.find(':') != std::string::npos) return "[" + host + "]";
  return host;
}

// Creates the folders of `dir` that are missing, each 0700.
Status make_dirs_private(const std::string& dir) {
  std::filesystem::path path(dir);
  std::filesystem::path prefix;
  for (const auto& part : path) {
    prefix /= part;
    if (part.empty() || part == "/" || part == "." || part == "..") continue;
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST)
      return Status::io_error("cannot create " + prefix.string() + ": " + std::strerror(errno));
  }
  return Status();
}

// The space's data is private to its user: private rooms and DMs live there.
// The data folder is kept 0700 (created so, and set so when it exists); the
// SQLite store's folder is created 0700 when missing, its file created 0600
// before SQLite opens it (SQLite gives -wal and -shm the mode of the
// database), and files left 0644 by older versions are set 0600.
Status make_data_private(const SpaceConfig& config) {
  const std::string& dir = config.space.data_dir;
  if (!dir.empty()) {
    HUT_RETURN_IF_ERROR(make_dirs_private(dir));
    if (::chmod(dir.c_str(), 0700) != 0)
      return Status::io_error("cannot make " + dir + " private: " + std::strerror(errno));
    for (const char* name : {"relay-jwks.json", "plugins.db", "plugins.db.imported"}) {
      std::string f = dir + "/" + name;
      if (::access(f.c_str(), F_OK) == 0) ::chmod(f.c_str(), 0600);
    }
  }
  constexpr std::string_view kSqlite = "sqlite://";
  const std::string& url = config.store.url;
  if (url.rfind(kSqlite, 0) != 0 || url.size() == kSqlite.size()) return Status();
  std::string db = url.substr(kSqlite.size());
  std::string parent = std::filesystem::path(db).parent_path().string();
  if (!parent.empty()) HUT_RETURN_IF_ERROR(make_dirs_private(parent));
  int fd = ::open(db.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::io_error("cannot create " + db + ": " + std::strerror(errno));
  ::close(fd);
  for (const std::string& f : {db, db + "-wal", db + "-shm", db + "-journal"}) {
    if (::chmod(f.c_str(), 0600) != 0 && errno != ENOENT)
      return Status::io_error("cannot make " + f + " private: " + std::strerror(errno));
  }
  return Status();
}

net::HttpResponse not_found(std::string_view message = "not found") {
  return admin::json_error(404, "not_found", message);
}

}  // namespace

struct Space::Impl final : public net::NetHandler, public PluginServices, public admin::AdminBackend {
  enum class State { kCreated, kRunning, kStopping, kStopped };

  SpaceConfig config;
  uv_loop_t* loop = nullptr;
  std::unique_ptr<uv_loop_t> own_loop;
  State state = State::kCreated;

  std::unique_ptr<TokenVerifier> verifier;
  std::unique_ptr<ReplayCache> replay;
  std::optional<Key> app_key;
  std::string app_issuer;

  std::unique_ptr<space::RelayKeys> relay_keys;
  std::unique_ptr<bus::Bus> bus;
  std::unique_ptr<net::NetServer> net;
  std::unique_ptr<PluginRuntime> runtime;
  std::unique_ptr<admin::AdminApi> admin_api;
  // The store and the rooms on it; the store is closed (or destroyed) before
  // the rooms, whose callbacks it runs.
  std::unique_ptr<Store> store;
  std::unique_ptr<rooms::Rooms> rooms;
  std::unique_ptr<cluster::Cluster> cluster;  // `[cluster]`: before the bus and rooms it hooks into

  // post(): any thread; open while the space runs.
  LoopQueue posts;

  // Plugins compiled into the program, registered before start().
  struct Builtin {
    const hut_plugin_descriptor* descriptor;
    hut_plugin_init_fn init;
    hut_plugin_fini_fn fini;
  };
  std::vector<Builtin> builtins;

  std::string public_url;
  std::string admin_url;
  int public_port = 0;
  int admin_port = 0;

  ~Impl() override {
    admin_api.reset();
    if (bus) bus->set_plugins(nullptr);
    if (bus) bus->set_rooms(nullptr);
    if (bus) bus->set_store(nullptr);
    if (rooms) rooms->set_plugins(nullptr);
    // Plugins may write their key-value data until their fini returned; the
    // store (destroyed below) commits what is queued, and drops the callbacks.
    // Before the network goes: stopping a plugin answers its pending requests
    // on the connections that asked.
    if (runtime) runtime->shutdown();
    net.reset();
    space::leave_cluster(cluster, bus.get(), rooms.get());
    store.reset();
    rooms.reset();
    relay_keys.reset();
    runtime.reset();
    bus.reset();
    posts.close();
    if (own_loop) {
      // Let the handles closed above finish, then close the loop.
      uv_run(own_loop.get(), UV_RUN_DEFAULT);
      uv_loop_close(own_loop.get());
    }
  }

  Status init() {
    const auto& a = config.auth;
    TokenVerifier::Options vo;
    vo.audience = config.space.id;
    vo.leeway_s = a.leeway;
    vo.max_lifetime_s = a.max_token_lifetime;
    verifier = std::make_unique<TokenVerifier>(vo);
    replay = std::make_unique<ReplayCache>(1000000, a.leeway);
    app_issuer = a.app_issuer.empty() ? config.space.id : a.app_issuer;
    if (!a.app_secret.empty()) {
      Result<Key> k = Key::hs256(a.app_secret);
      if (!k.ok()) return Status::invalid_argument("auth.app_secret: " + std::string(k.status().message()));
      app_key = *k;
      verifier->trust(*k, app_issuer);
    }
    if (!a.relay_ca_file.empty() && ::access(a.relay_ca_file.c_str(), R_OK) != 0) {
      return Status::invalid_argument("auth.relay_ca_file: cannot read " + a.relay_ca_file + ": " +
                                      std::strerror(errno));
    }
    space::RelayKeys::Options ro;
    ro.issuer = a.relay_issuer;
    ro.url = a.relay_jwks;
    ro.ca_file = a.relay_ca_file;
    ro.cache_path =
        config.space.data_dir.empty() ? std::string() : config.space.data_dir + "/relay-jwks.json";
    relay_keys = std::make_unique<space::RelayKeys>(loop, verifier.get(), ro);
    relay_keys->load_cache();
    return Status();
  }

  Status start() {
    if (state != State::kCreated) return Status::failed_precondition("the space was started already");
    Result<ListenAddress> pub = parse_listen_address(config.space.listen);
    if (!pub.ok()) return Status::invalid_argument("space.listen: " + std::string(pub.status().message()));
    // The management API only when a listener is configured.
    bool with_admin = !config.admin.listen.empty();
    Result<ListenAddress> adm = with_admin ? parse_listen_address(config.admin.listen) : ListenAddress{};
    if (!adm.ok()) return Status::invalid_argument("admin.listen: " + std::string(adm.status().message()));

    bus = std::make_unique<bus::Bus>(bus_options(config), loop, verifier.get(), replay.get());
    bus->set_unknown_key_handler(
        [this](std::function<void()> retry) { relay_keys->refresh(std::move(retry)); });

    if (Status priv = make_data_private(config); !priv.ok()) return priv;
    Result<std::unique_ptr<Store>> st = open_store(loop, config.store.url);
    if (!st.ok()) return Status::failed_precondition("store.url: " + std::string(st.status().message()));
    store = std::move(*st);
    rooms::Rooms::Options ro;
    ro.post_rate = post_rate(config);
    ro.post_burst = post_burst(config);
    ro.rooms_per_user = static_cast<size_t>(std::max<int64_t>(config.limits.rooms_per_user, 0));
    ro.dms_per_hour = static_cast<double>(std::max<int64_t>(config.limits.dms_per_hour, 1));
    rooms = std::make_unique<rooms::Rooms>(ro, loop, store.get(), bus.get());
    if (Status loaded = rooms->load(); !loaded.ok()) {
      rooms.reset();
      store.reset();
      return Status::failed_precondition("store: " + std::string(loaded.message()));
    }
    bus->set_rooms(rooms.get());
    bus->set_store(store.get());
    Result<std::unique_ptr<cluster::Cluster>> node =
        space::join_cluster(loop, config, bus.get(), rooms.get());
    if (!node.ok()) return node.status();
    cluster = std::move(*node);

    PluginRuntime::Options po;
    po.plugins_dir = config.space.plugins_dir;
    po.data_dir = config.space.data_dir;
    po.store = store.get();
    po.request_timeout_ms = std::max<int64_t>(config.limits.plugin_timeout, 1) * 1000;
    Result<std::unique_ptr<PluginRuntime>> rt = PluginRuntime::create(loop, this, po);
    if (!rt.ok()) return rt.status();
    runtime = std::move(*rt);
    bus->set_plugins(runtime.get());
    rooms->set_plugins(runtime.get());

    net::NetOptions no = net_limits(config);
    no.public_host = pub->host;
    no.public_port = pub->port;
    if (config.space.tls_cert.empty() != config.space.tls_key.empty())
      return Status::invalid_argument("space.tls_cert and space.tls_key go together: set both or neither");
    no.public_tls_cert = config.space.tls_cert;
    no.public_tls_key = config.space.tls_key;
    no.admin_enabled = with_admin;
    no.admin_host = adm->host;
    no.admin_port = adm->port;
    Result<std::unique_ptr<net::NetServer>> ns = net::NetServer::create(loop, no, this);
    if (!ns.ok()) {
      bus->set_plugins(nullptr);
      rooms->set_plugins(nullptr);
      runtime->shutdown();
      runtime.reset();
      return ns.status();
    }
    net = std::move(*ns);
    admin_api = std::make_unique<admin::AdminApi>(config.admin.token, this);
    relay_keys->start();
    public_port = net->public_port();
    admin_port = with_admin ? net->admin_port() : 0;
    public_url = (config.space.tls_cert.empty() ? "http://" : "https://") + url_host(pub->host) + ":" +
                 std::to_string(public_port);
    if (with_admin) admin_url = "http://" + url_host(adm->host) + ":" + std::to_string(admin_port);

    HUT_RETURN_IF_ERROR(posts.open(loop, true));
    state = State::kRunning;
    load_builtins(false);
    runtime->load_all();
    load_builtins(true);
    return Status();
  }

  // The plugins registered before start, each once its requirements are
  // loaded: called before the plugins folder (for those that need nothing
  // from it) and after it (for those that do). Requirements among them are
  // met in any registration order. `last`: those still waiting are tried
  // anyway, so that their failure is logged and listed with its reason.
  void load_builtins(bool last) {
    auto ready = [this](const hut_plugin_descriptor* d) {
      if (d->requires_plugins == nullptr) return true;
      for (const char* const* r = d->requires_plugins; *r != nullptr; ++r)
        if (!runtime->is_loaded(*r)) return false;
      return true;
    };
    for (bool progress = true; progress;) {
      progress = false;
      for (size_t i = 0; i < builtins.size(); ++i) {
        if (!ready(builtins[i].descriptor)) continue;
        Builtin b = builtins[i];
        builtins.erase(builtins.begin() + static_cast<std::ptrdiff_t>(i));
        load_builtin(b);
        progress = true;
        break;
      }
    }
    if (!last) return;
    std::vector<Builtin> waiting;
    waiting.swap(builtins);
    for (const Builtin& b : waiting) load_builtin(b);
  }

  void load_builtin(const Builtin& b) {
    Status st = runtime->load_builtin(b.descriptor, b.init, b.fini);
    if (!st.ok())
      log_write(LogLevel::kWarn, "space",
                "the built-in plugin " + std::string(b.descriptor->name) +
                    " did not load: " + std::string(st.message()));
  }

  static bus::Bus::Options bus_options(const SpaceConfig& c) {
    bus::Bus::Options bo;
    bo.space_id = c.space.id;
    bo.space_name = c.space.name;
    bo.hello_timeout_ms = c.limits.hello_timeout * 1000;
    bo.bad_frames = c.limits.bad_frames;
    bo.bad_frame_window_ms = c.limits.bad_frame_window * 1000;
    bo.widget_rate = static_cast<double>(std::max<int64_t>(c.limits.widget_rate, 1));
    bo.widget_burst = static_cast<double>(std::max<int64_t>(c.limits.widget_burst, 1));
    bo.widget_pending = static_cast<size_t>(std::max<int64_t>(c.limits.widget_pending, 1));
    bo.resume_ttl_ms = c.auth.resume_ttl * 1000;
    return bo;
  }
  static double post_rate(const SpaceConfig& c) {
    return static_cast<double>(std::max<int64_t>(c.limits.post_rate, 1));
  }
  static double post_burst(const SpaceConfig& c) {
    return static_cast<double>(std::max<int64_t>(c.limits.post_burst, 1));
  }
  static net::NetOptions net_limits(const SpaceConfig& c) {
    net::NetOptions no;
    no.max_message = static_cast<size_t>(std::max<int64_t>(c.limits.max_message, 1));
    no.backpressure = static_cast<size_t>(std::max<int64_t>(c.limits.backpressure, 1));
    no.max_connections = static_cast<size_t>(std::max<int64_t>(c.limits.max_connections, 1));
    no.max_body = static_cast<size_t>(std::max<int64_t>(c.limits.max_body, 1));
    no.max_body_total = static_cast<size_t>(std::max<int64_t>(c.limits.max_body_total, 1));
    return no;
  }

  // What a running space can take from a new configuration: [limits], the
  // admin token, resume_ttl and the log level; the relay's key
  // set is fetched again and the plugins folder looked at again (rescan).
  // Whatever else differs waits for a restart.
  Result<Space::ReloadReport> reload(const SpaceConfig& given) {
    if (state != State::kRunning) return Status::failed_precondition("the space is not running");
    // The checks of create(), and the store url filled the same way.
    HUT_RETURN_IF_ERROR(validate_space_config(given));
    SpaceConfig next = given;
    next.store.url = space_store_url(next);
    Space::ReloadReport report;
    auto diff = [&](const char* name, const auto& before, const auto& after, bool live) {
      if (before == after) return;
      (live ? report.applied : report.needs_restart).push_back(name);
    };
    const SpaceConfig& c = config;
#define HUT_LIVE(section, key) diff(#section "." #key, c.section.key, next.section.key, true)
#define HUT_RESTART(section, key) diff(#section "." #key, c.section.key, next.section.key, false)
    HUT_RESTART(space, id);
    HUT_RESTART(space, name);
    HUT_RESTART(space, listen);
    HUT_RESTART(space, url);
    HUT_RESTART(space, data_dir);
    HUT_RESTART(space, plugins_dir);
    HUT_RESTART(space, tls_cert);
    HUT_RESTART(space, tls_key);
    HUT_RESTART(admin, listen);
    HUT_LIVE(admin, token);
    HUT_RESTART(auth, relay_issuer);
    HUT_RESTART(auth, relay_jwks);
    HUT_RESTART(auth, relay_jwks_insecure);
    HUT_RESTART(auth, relay_ca_file);
    HUT_RESTART(auth, relay_login);
    HUT_RESTART(auth, app_issuer);
    HUT_RESTART(auth, app_secret);
    HUT_RESTART(auth, max_token_lifetime);
    HUT_RESTART(auth, leeway);
    // mint_app_token reads it on any thread: not changed under it.
    HUT_RESTART(auth, app_token_ttl);
    HUT_LIVE(auth, resume_ttl);
    HUT_RESTART(store, url);
    HUT_LIVE(log, level);
    HUT_LIVE(limits, max_message);
    HUT_LIVE(limits, bad_frames);
    HUT_LIVE(limits, bad_frame_window);
    HUT_LIVE(limits, backpressure);
    HUT_LIVE(limits, hello_timeout);
    HUT_LIVE(limits, post_rate);
    HUT_LIVE(limits, post_burst);
    HUT_LIVE(limits, max_connections);
    HUT_LIVE(limits, max_body);
    HUT_LIVE(limits, max_body_total);
    HUT_LIVE(limits, widget_rate);
    HUT_LIVE(limits, widget_burst);
    HUT_LIVE(limits, widget_pending);
    HUT_LIVE(limits, plugin_timeout);
    HUT_LIVE(limits, http_pending);
    HUT_LIVE(limits, rooms_per_user);
    HUT_LIVE(limits, dms_per_hour);
#undef HUT_LIVE
#undef HUT_RESTART
    config.limits = next.limits;
    config.admin.token = next.admin.token;
    config.auth.resume_ttl = next.auth.resume_ttl;
    config.log = next.log;
    bus->set_limits(bus_options(config));
    runtime->set_request_timeout(std::max<int64_t>(config.limits.plugin_timeout, 1) * 1000);
    rooms->set_post_budget(post_rate(config), post_burst(config));
    rooms->set_quotas(static_cast<size_t>(std::max<int64_t>(config.limits.rooms_per_user, 0)),
                      static_cast<double>(std::max<int64_t>(config.limits.dms_per_hour, 1)));
    net->set_limits(net_limits(config));
    admin_api->set_token(config.admin.token);
    relay_keys->refresh([] {});
    // The plugins folder: replaced files reloaded, new (or fixed) ones loaded.
    if (runtime != nullptr)
      for (std::string& line : runtime->rescan()) report.applied.push_back("plugin " + line);
    return report;
  }

  uint64_t now_ms() const { return loop_now_ms(loop); }

  void stop(std::function<void()> done) {
    if (state != State::kRunning) {
      if (done) done();
      return;
    }
    state = State::kStopping;
    log_write(LogLevel::kInfo, "space", "stopping");
    relay_keys->stop();
    net->shutdown(kShutdownGraceMs, [this, done = std::move(done)]() {
      bus->set_plugins(nullptr);
      bus->set_rooms(nullptr);
      rooms->set_plugins(nullptr);
      runtime->shutdown();
      posts.drain();
      posts.close();
      auto finish = [this, done] {
        state = State::kStopped;
        log_write(LogLevel::kInfo, "space", "stopped");
        if (done) done();
      };
      if (store) {
        store->close(finish);
      } else {
        finish();
      }
    });
  }

  // ---- NetHandler ----

  void on_http(std::shared_ptr<net::HttpExchange> ex) override {
    if (ex->listener == net::Listener::kAdmin) {
      admin_api->handle(ex);
      return;
    }
    const std::string& path = ex->path;
    const std::string& m = ex->method;
    bool get = m == "GET" || m == "HEAD";
    if (path.rfind("/api/", 0) == 0) {
      handle_plugin_api(ex);
      return;
    }
    if (!get) {
      ex->respond(admin::json_error(405, "bad_request", "method not allowed"));
      return;
    }
    if (path == "/" || path == "/index.html") {
      serve_web_asset(ex, "index.html");
      return;
    }
    if (path == "/sdk/hutopia.js") {
      serve_web_asset(ex, "hutopia.js");
      return;
    }
    if (path == "/healthz") {
      ex->respond(admin::json_response(200, R"({"ok":true})"));
      return;
    }
    if (path == "/.well-known/hutopia") {
      handle_well_known(ex);
      return;
    }
    if (path == "/login") {
      handle_login(ex);
      return;
    }
    if (path.rfind("/plugins/", 0) == 0) {
      handle_plugin_asset(ex);
      return;
    }
    ex->respond(not_found());
  }

  // A plugin route that asked for its body in a file (http_body_to_file).
  net::BodyPlan body_plan(const net::HttpExchange& ex) override {
    std::string plugin, rest;
    if (runtime == nullptr || ex.path.rfind("/api/", 0) != 0 ||
        !space::split_plugin_path(std::string_view(ex.path).substr(5), &plugin, &rest) ||
        !valid_plugin_name(plugin))
      return {};
    uint64_t max_bytes = 0;
    net::BodyPlan plan;
    if (!runtime->body_route(plugin, ex.method, "/" + rest, &max_bytes, &plan.spool_dir)) return {};
    plan.limit = static_cast<size_t>(max_bytes);
    return plan;
  }

  void serve_web_asset(const std::shared_ptr<net::HttpExchange>& ex, std::string_view name) {
    std::string_view type, data;
    if (!find_web_asset(name, &type, &data)) {
      ex->respond(not_found());
      return;
    }
    net::HttpResponse r;
    r.content_type = std::string(type);
    r.body = std::string(data);
    r.headers.emplace_back("cache-control", "no-cache");
    ex->respond(std::move(r));
  }

  // {"id","name","relay"}: what a client needs to get a token for this space.
  void handle_well_known(const std::shared_ptr<net::HttpExchange>& ex) {
    cJSON* o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", config.space.id.c_str());
    cJSON_AddStringToObject(o, "name", config.space.name.c_str());
    if (config.auth.relay_issuer.empty())
      cJSON_AddNullToObject(o, "relay");
    else
      cJSON_AddStringToObject(o, "relay", config.auth.relay_issuer.c_str());
    char* text = cJSON_PrintUnformatted(o);
    std::string body = text ? text : "{}";
    cJSON_free(text);
    cJSON_Delete(o);
    net::HttpResponse r = admin::json_response(200, body);
    r.headers.emplace_back("access-control-allow-origin", "*");
    ex->respond(std::move(r));
  }

  void handle_login(const std::shared_ptr<net::HttpExchange>& ex) {
    std::string login = config.auth.relay_login;
    if (login.empty() && !config.auth.relay_issuer.empty()) {
      login = config.auth.relay_issuer;
      while (!login.empty() && login.back() == '/') login.pop_back();
      login += "/login";
    }
    if (login.empty()) {
      ex->respond(not_found("this space has no relay to sign in with ([auth] relay_issuer)"));
      return;
    }
    std::string space_url = config.space.url.empty() ? public_url : config.space.url;
    while (space_url.size() > 1 && space_url.back() == '/') space_url.pop_back();
    std::string location = login + (login.find('?') == std::string::npos ? "?" : "&") +
                           "space=" + space::query_escape(config.space.id) +
                           "&return=" + space::query_escape(space_url + "/");
    net::HttpResponse r;
    r.status = 302;
    r.content_type = "text/plain; charset=utf-8";
    r.headers.emplace_back("location", location);
    r.body = "See " + location + "\n";
    ex->respond(std::move(r));
  }

  void handle_plugin_asset(const std::shared_ptr<net::HttpExchange>& ex) {
    std::string plugin, rest;
    if (!space::split_plugin_path(std::string_view(ex->path).substr(9), &plugin, &rest) ||
        !valid_plugin_name(plugin)) {
      ex->respond(not_found());
      return;
    }
    std::optional<std::string> path = space::safe_asset_path(rest);
    if (!path || runtime == nullptr) {
      ex->respond(not_found());
      return;
    }
    const PluginAsset* asset = runtime->find_asset(plugin, *path);
    if (asset == nullptr) {
      ex->respond(not_found());
      return;
    }
    net::HttpResponse r;
    r.content_type = std::string(asset->content_type);
    r.body = std::string(asset->data);
    r.headers.emplace_back("x-content-type-options", "nosniff");
    ex->respond(std::move(r));
  }

  void handle_plugin_api(const std::shared_ptr<net::HttpExchange>& ex) {
    const std::string& request_id = ex->request_id;
    auto fail = [&](net::HttpResponse r) {
      r.headers.emplace_back("x-request-id", request_id);
      ex->respond(std::move(r));
    };
    std::optional<space::PluginApiTarget> target = space::plugin_api_target(ex->path, ex->query);
    if (!target || runtime == nullptr) {
      fail(not_found("no such plugin"));
      return;
    }
    const std::string& plugin = target->plugin;
    if (runtime->pending_requests(kHttpOwner) >=
        static_cast<size_t>(std::max<int64_t>(config.limits.http_pending, 1))) {
      net::HttpResponse r = admin::json_error(503, "unavailable", "too many requests waiting for plugins");
      r.headers.emplace_back("retry-after", "5");
      fail(std::move(r));
      return;
    }
    PluginHttpRequest req;
    req.method = ex->method;
    req.path = std::move(target->path);
    req.query = std::move(target->query);
    req.query_params = ex->query_params;
    req.headers = ex->headers;
    req.body = ex->body;
    req.body_file = ex->body_file;
    req.body_file_size = ex->body_file_size;
    req.x_request_id = request_id;
    // The runtime owns the request; the answer reaches the exchange while
    // the client waits for it.
    auto answer = [this, weak = std::weak_ptr<net::HttpExchange>(ex), request_id](const PluginAnswer& a) {
      return answer_http(weak, request_id, a);
    };
    Result<RequestId> id = runtime->dispatch_http(plugin, std::move(req), kHttpOwner, std::move(answer));
    if (id.ok()) return;
    const Status& st = id.status();
    net::HttpResponse r = st.is_not_found() ? not_found("no plugin named " + plugin)
                                            : admin::json_error(500, "internal", st.message());
    if (!st.is_not_found()) r.headers.emplace_back("x-hutopia-plugin", plugin);
    fail(std::move(r));
  }

  // Delivers a plugin's answer to an HTTP request: its response, 504 at the
  // deadline, 503 when the plugin stopped. A response whose file cannot be
  // opened is refused (HUT_ENOENT) and the request stays pending.
  int answer_http(const std::weak_ptr<net::HttpExchange>& weak, const std::string& request_id,
                  const PluginAnswer& a) {
    net::HttpResponse r;
    std::shared_ptr<net::FileBody> file;
    if (a.kind == PluginAnswer::Kind::kHttp) {
      PluginHttpResponse& response = *a.http;
      if (!response.body_path.empty()) {
        auto opened = net::FileBody::open(response.body_path);
        if (!opened.ok()) return HUT_ENOENT;
        file = std::move(*opened);
      }
      r.status = response.status;
      r.content_type.clear();
      for (auto& [k, v] : response.headers) {
        std::string lower = k;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower == "content-type") {
          r.content_type = v;
        } else if (lower == "content-length" || lower == "connection" || lower == "transfer-encoding" ||
                   lower == "x-hutopia-plugin" || lower == "x-request-id") {
          continue;  // the space writes these
        } else {
          r.headers.emplace_back(lower, v);
        }
      }
      if (r.content_type.empty()) r.content_type = "application/octet-stream";
      r.body = std::move(response.body);
    } else {
      r = admin::json_error(a.kind == PluginAnswer::Kind::kExpired ? 504 : 503, "unavailable",
                            std::string(a.message));
    }
    auto ex = weak.lock();
    if (!ex) return HUT_OK;  // the client went away; nothing to deliver
    r.headers.emplace_back("x-hutopia-plugin", std::string(a.plugin));
    r.headers.emplace_back("x-request-id", request_id);
    ex->respond(std::move(r), std::move(file));
    return HUT_OK;
  }

  void on_ws_open(net::WsConnection* conn) override { bus->on_open(conn); }
  void on_ws_message(net::WsConnection* conn, std::string_view text) override { bus->on_message(conn, text); }
  void on_ws_timer(net::WsConnection* conn) override { bus->on_timer(conn); }
  void on_ws_close(net::WsConnection* conn) override {
    if (bus) bus->on_close(conn);
  }

  // ---- PluginServices ----

  int send_widget_event(std::string_view plugin, EventTarget target, std::string_view target_id,
                        std::string_view data_json) override {
    if (!bus::is_json(data_json)) return HUT_EINVAL;
    if (state != State::kRunning) return HUT_EUNAVAIL;
    size_t n = space::send_event_everywhere(cluster.get(), bus.get(), target, target_id,
                                            bus::make_widget_event(plugin, data_json));
    // plugin.h: HUT_ENOENT for a session the space does not know (any more).
    if (n == 0 && target == EventTarget::kSession) return HUT_ENOENT;
    return HUT_OK;
  }
  int notify(std::string_view plugin, std::string_view user_id, std::string_view title, std::string_view body,
             std::string_view url) override {
    if (user_id.empty() || title.empty()) return HUT_EINVAL;
    if (state != State::kRunning) return HUT_EUNAVAIL;
    space::send_event_everywhere(cluster.get(), bus.get(), EventTarget::kUser, user_id,
                                 bus::make_notify_event(plugin, title, body, url));
    return HUT_OK;
  }
  int mint_session_token(std::string_view session_id, int64_t ttl_s, std::string* token) override {
    const bus::Session* s = bus ? bus->welcomed_session(session_id) : nullptr;
    if (s == nullptr) return HUT_ENOENT;
    if (!app_key) return HUT_EUNAVAIL;
    if (ttl_s > config.auth.max_token_lifetime) return HUT_EINVAL;
    Result<AppToken> t = mint(s->user.id, s->user.name, ttl_s);
    if (!t.ok()) return HUT_EINVAL;
    *token = t->token;
    return HUT_OK;
  }

  // ---- AdminBackend ----

  PluginRuntime* plugins() override { return runtime.get(); }
  Status mint_token(std::string_view user, std::string_view name, int64_t ttl_s, std::string* token,
                    int64_t* expires_at_ms) override {
    Result<AppToken> t = mint(user, name, ttl_s);
    if (!t.ok()) return t.status();
    *token = std::move(t->token);
    *expires_at_ms = t->expires_at_ms;
    return Status();
  }

  Result<AppToken> mint(std::string_view user, std::string_view name, int64_t ttl_s) const {
    if (!app_key) return Status::failed_precondition("no app secret is configured ([auth] app_secret)");
    if (user.empty()) return Status::invalid_argument("user must not be empty");
    if (ttl_s <= 0) ttl_s = config.auth.app_token_ttl;
    if (ttl_s > config.auth.max_token_lifetime) {
      return Status::invalid_argument("ttl over the maximum token lifetime of " +
                                      std::to_string(config.auth.max_token_lifetime) + " s");
    }
    Claims c;
    c.iss = app_issuer;
    c.sub = std::string(user);
    c.aud = config.space.id;
    c.jti = random_hex(16);
    c.iat = static_cast<int64_t>(std::time(nullptr));
    c.exp = c.iat + ttl_s;
    c.name = name.empty() ? std::string(user) : std::string(name);
    c.username = std::string(user);
    Result<std::string> t = sign_token(*app_key, c);
    if (!t.ok()) return t.status();
    return AppToken{*t, c.exp * 1000};
  }

  int room_post(std::string_view plugin, std::string_view room, std::string_view text,
                std::string_view data_json, RoomDone done) override {
    if (rooms == nullptr) return HUT_ENOTSUP;
    return rooms->plugin_post(plugin, room, text, data_json, std::move(done));
  }
  int room_history(std::string_view room, uint64_t before, int limit, RoomDone done) override {
    if (rooms == nullptr) return HUT_ENOTSUP;
    return rooms->plugin_history(room, before, limit, std::move(done));
  }
  int room_members(std::string_view room, std::string* json) override {
    if (rooms == nullptr) return HUT_ENOTSUP;
    return rooms->plugin_members(room, json);
  }

  void rooms_http(const std::shared_ptr<net::HttpExchange>& ex) override {
    if (rooms == nullptr || state != State::kRunning) {
      ex->respond(admin::json_error(503, "unavailable", "rooms are not available"));
      return;
    }
    rooms->handle_admin(ex);
  }

  std::string metrics_text() override {
    std::string out;
    auto metric = [&](const char* name, const char* type, const char* help, uint64_t value) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name +
             " " + std::to_string(value) + "\n";
    };
    const net::NetCounters& nc = net->counters();
    const bus::Bus::Counters& bc = bus->counters();
    metric("hutopia_connections", "gauge", "Open bus connections.", net->connection_count());
    metric("hutopia_sessions", "gauge", "Bus sessions past the welcome.", bus->welcomed_count());
    metric("hutopia_connections_total", "counter", "Bus connections accepted.", nc.connections_total);
    metric("hutopia_frames_in_total", "counter", "Bus messages received.", nc.frames_in);
    metric("hutopia_frames_out_total", "counter", "Bus frames sent.", nc.frames_out);
    metric("hutopia_bytes_in_total", "counter", "Bus payload bytes received.", nc.bytes_in);
    metric("hutopia_bytes_out_total", "counter", "Bus payload bytes sent.", nc.bytes_out);
    metric("hutopia_http_requests_total", "counter", "HTTP requests on both listeners.", nc.http_requests);
    metric("hutopia_errors_total", "counter", "Error frames sent to bus clients.", bc.errors_sent);
    metric("hutopia_bad_frames_total", "counter", "Bus frames refused as bad_request.", bc.bad_frames);
    metric("hutopia_auth_failures_total", "counter", "Bus sessions refused with 4001.", bc.auth_failures);
    metric("hutopia_widget_requests_total", "counter", "widget ops received.", bc.widget_requests);
    metric("hutopia_widget_rate_limited_total", "counter", "widget ops refused: budget or pending bound.",
           bc.widget_rate_limited);
    metric("hutopia_widget_timeouts_total", "counter", "widget ops a plugin did not answer in time.",
           bc.widget_timeouts);
    metric("hutopia_events_total", "counter", "Events sent (one per event).", bc.events);
    metric("hutopia_event_deliveries_total", "counter", "Event frames handed to sessions.", bc.deliveries);
    metric("hutopia_closed_slow_total", "counter", "Connections closed with 4008.", nc.closed_slow);
    metric("hutopia_closed_too_big_total", "counter", "Connections closed with 1009.", nc.closed_too_big);
    metric("hutopia_http_sockets", "gauge", "Open connections to the public listener, HTTP and WebSocket.",
           net->socket_count());
    metric("hutopia_refused_connections_total", "counter", "Connections closed at accept: max_connections.",
           nc.refused_connections);
    metric("hutopia_http_body_bytes", "gauge", "Request body bytes counted against max_body_total.",
           net->body_bytes());
    metric("hutopia_refused_bodies_total", "counter", "Requests refused with 503: max_body_total.",
           nc.refused_bodies);
    http_responses_metric(&out, nc.http_responses);
    rooms->post_seconds().render(&out, "hutopia_room_post_duration_seconds",
                                 "Time from a room post's arrival to its ok, after the commit.");
    bus->fanout_seconds().render(&out, "hutopia_event_fanout_duration_seconds",
                                 "Time to hand one event to every session it goes to.");
    if (const Histogram* h = store->commit_seconds())
      h->render(&out, "hutopia_store_commit_duration_seconds",
                "Time of one store write transaction, its writes and the commit with its fsync.");
    if (runtime != nullptr) {
      auto stats = runtime->stats();
      auto per_plugin = [&](const char* name, const char* help, auto value) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n";
        for (const auto& s : stats)
          out += std::string(name) + "{plugin=" + bus::json_string(s.name) + "} " + value(s) + "\n";
      };
      per_plugin("hutopia_plugin_calls_total", "Hook calls per plugin.",
                 [](const auto& s) { return std::to_string(s.calls); });
      per_plugin("hutopia_plugin_errors_total", "Hook calls that failed, per plugin.",
                 [](const auto& s) { return std::to_string(s.errors); });
      per_plugin("hutopia_plugin_seconds_total", "Time spent in hooks per plugin.", [](const auto& s) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.9f", static_cast<double>(s.time_ns) / 1e9);
        return std::string(buf);
      });
      per_plugin("hutopia_plugin_kv_failed_writes_total",
                 "Key-value writes the store could not commit, per plugin.",
                 [](const auto& s) { return std::to_string(s.kv_failed_writes); });
    }
    return out;
  }
};

Space::Space(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Space::~Space() = default;

Result<std::unique_ptr<Space>> Space::create(SpaceConfig config, uv_loop_t* loop) {
  // The checks of a file, for a configuration built in code too.
  HUT_RETURN_IF_ERROR(validate_space_config(config));
  config.store.url = space_store_url(config);
  auto impl = std::make_unique<Impl>();
  impl->config = std::move(config);
  if (loop == nullptr) {
    impl->own_loop = std::make_unique<uv_loop_t>();
    int rc = uv_loop_init(impl->own_loop.get());
    if (rc != 0) {
      impl->own_loop.reset();
      return Status::io_error(std::string("uv_loop_init: ") + uv_strerror(rc));
    }
    loop = impl->own_loop.get();
  }
  impl->loop = loop;
  HUT_RETURN_IF_ERROR(impl->init());
  return std::unique_ptr<Space>(new Space(std::move(impl)));
}

Result<std::unique_ptr<Space>> Space::from_file(const std::string& path, uv_loop_t* loop) {
  Result<SpaceConfig> cfg = load_space_config(path);
  if (!cfg.ok()) return cfg.status();
  return create(std::move(*cfg), loop);
}

Status Space::start() { return impl_->start(); }
Result<Space::ReloadReport> Space::reload(const SpaceConfig& config) { return impl_->reload(config); }
void Space::stop(std::function<void()> done) { impl_->stop(std::move(done)); }

int Space::run() {
  if (!impl_->own_loop) return -1;
  uv_run(impl_->loop, UV_RUN_DEFAULT);
  return 0;
}

uv_loop_t* Space::loop() const { return impl_->loop; }
bool Space::running() const { return impl_->state == Impl::State::kRunning; }
std::string Space::public_url() const { return impl_->public_url; }
std::string Space::admin_url() const { return impl_->admin_url; }
int Space::public_port() const { return impl_->public_port; }
int Space::admin_port() const { return impl_->admin_port; }
const SpaceConfig& Space::config() const { return impl_->config; }

bool Space::post(std::function<void()> fn) { return impl_->posts.post(std::move(fn)); }

Result<AppToken> Space::mint_app_token(std::string_view user_id, std::string_view name, int64_t ttl_s) const {
  return impl_->mint(user_id, name, ttl_s);
}

Result<size_t> Space::send_widget_event(std::string_view plugin, Audience audience,
                                        std::string_view target_id, std::string_view data_json) {
  if (!bus::is_json(data_json)) return Status::invalid_argument("data is not JSON");
  if (impl_->state != Impl::State::kRunning) return Status::failed_precondition("the space is not running");
  EventTarget t = EventTarget::kEveryone;
  switch (audience) {
    case Audience::kSession:
      t = EventTarget::kSession;
      break;
    case Audience::kUser:
      t = EventTarget::kUser;
      break;
    case Audience::kRoom:
      t = EventTarget::kRoom;
      break;
    case Audience::kEveryone:
      break;
  }
  return space::send_event_everywhere(impl_->cluster.get(), impl_->bus.get(), t, target_id,
                                      bus::make_widget_event(plugin, data_json));
}

void Space::call_plugin(std::string_view plugin, std::string_view user_id, std::string_view data_json,
                        std::function<void(Status status, std::string data_json)> done) {
  if (impl_->state != Impl::State::kRunning) {
    done(Status::failed_precondition("the space is not running"), {});
    return;
  }
  UserRef user;
  user.id = std::string(user_id);
  user.name = user.id;
  impl_->bus->request_in_process(plugin, user, data_json, std::move(done));
}

Status Space::load_plugin(std::string_view name) {
  if (!impl_->runtime) return Status::failed_precondition("the space is not running");
  return impl_->runtime->load(name);
}

Status Space::unload_plugin(std::string_view name) {
  if (!impl_->runtime) return Status::failed_precondition("the space is not running");
  return impl_->runtime->unload(name);
}

Status Space::register_plugin(const hut_plugin_descriptor* descriptor, hut_plugin_init_fn init,
                              hut_plugin_fini_fn fini) {
  if (impl_->state == Impl::State::kCreated) {
    if (descriptor == nullptr || descriptor->name == nullptr || init == nullptr)
      return Status::invalid_argument(
          "a built-in plugin needs a descriptor with a name and an init function");
    for (const Impl::Builtin& b : impl_->builtins)
      if (std::string_view(b.descriptor->name) == descriptor->name)
        return Status::already_exists(std::string("a built-in plugin named ") + descriptor->name +
                                      " is registered");
    impl_->builtins.push_back(Impl::Builtin{descriptor, init, fini});
    return Status();
  }
  if (!impl_->runtime || impl_->state != Impl::State::kRunning)
    return Status::failed_precondition("the space is not running");
  return impl_->runtime->load_builtin(descriptor, init, fini);
}

namespace {

// A refusal of the post pipeline as a Status: the bus's error code leads the
// message, so a program sees what a bus client would.
Status outcome_status(const rooms::Rooms::Outcome& o) {
  return wire_error_status(o.code, std::string(bus::error_code_name(o.code)) + ": " + o.message);
}

}  // namespace

void Space::post_to_room(std::string_view room, std::string_view user_id, std::string_view user_name,
                         std::string_view text, std::string_view data_json,
                         std::function<void(Status status, uint64_t seq, int64_t ts)> done) {
  if (impl_->state != Impl::State::kRunning || !impl_->rooms)
    return done(Status::failed_precondition("the space is not running"), 0, 0);
  rooms::Rooms::Submission s;
  s.room = std::string(room);
  if (user_id.empty()) {
    s.from.id = "space:" + impl_->config.space.id;
    s.from.name = impl_->config.space.name;
  } else {
    s.from = impl_->rooms->known_user(user_id);
    if (!user_name.empty()) s.from.name = std::string(user_name);
    if (s.from.name.empty()) s.from.name = s.from.id;
  }
  s.text = std::string(text);
  s.data_json = std::string(data_json);
  impl_->rooms->submit(std::move(s), [done = std::move(done)](const rooms::Rooms::Outcome& o) {
    if (!o.ok) return done(outcome_status(o), 0, 0);
    done(Status(), o.seq, o.ts);
  });
}

void Space::room_history(std::string_view room, uint64_t before, int limit,
                         std::function<void(Status status, std::string page_json)> done) {
  if (impl_->state != Impl::State::kRunning || !impl_->rooms)
    return done(Status::failed_precondition("the space is not running"), {});
  if (limit < 1 || limit > 200) return done(Status::invalid_argument("bad_request: limit is 1 to 200"), {});
  auto shared = std::make_shared<std::function<void(Status, std::string)>>(std::move(done));
  int rc = impl_->rooms->plugin_history(room, before, limit, [shared](int code, std::string json) {
    if (code == HUT_OK) return (*shared)(Status(), std::move(json));
    (*shared)(code == HUT_ENOENT ? Status::not_found("not_found: no such room")
                                 : Status::io_error("internal: the store could not read the history"),
              {});
  });
  if (rc == HUT_ENOENT) (*shared)(Status::not_found("not_found: no room named " + std::string(room)), {});
}

Result<std::string> Space::room_members(std::string_view room, std::string_view after, int limit) {
  if (impl_->state != Impl::State::kRunning || !impl_->rooms)
    return Status::failed_precondition("the space is not running");
  if (limit < 1 || limit > 1000) return Status::invalid_argument("bad_request: limit is 1 to 1000");
  Result<std::string> page = impl_->rooms->local_members(room, after, static_cast<size_t>(limit));
  if (!page.ok()) return Status::not_found("not_found: " + std::string(page.status().message()));
  return page;
}

void Space::create_room(std::string_view room, std::string_view topic, bool is_private,
                        std::string_view master, const std::vector<std::string>& members,
                        std::function<void(Status status)> done) {
  if (impl_->state != Impl::State::kRunning || !impl_->rooms)
    return done(Status::failed_precondition("the space is not running"));
  RoomRecord rec;
  rec.id = std::string(room);
  rec.topic = std::string(topic);
  rec.is_private = is_private;
  rec.created_ts = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  std::vector<MemberRecord> list;
  auto add = [&](std::string_view uid, Role role) {
    for (MemberRecord& m : list)
      if (m.user.id == uid) return;
    MemberRecord m;
    m.room = rec.id;
    m.user = impl_->rooms->known_user(uid);
    m.role = role;
    m.joined_ts = rec.created_ts;
    list.push_back(std::move(m));
  };
  if (!master.empty()) add(master, Role::kMaster);
  for (const std::string& m : members)
    if (!m.empty()) add(m, Role::kMember);
  impl_->rooms->create_room(std::move(rec), std::move(list), std::move(done));
}

size_t Space::connection_count() const { return impl_->net ? impl_->net->connection_count() : 0; }
size_t Space::session_count() const { return impl_->bus ? impl_->bus->welcomed_count() : 0; }

}  // namespace hut
