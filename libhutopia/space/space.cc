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
#include "config/schema.h"
#include "net/server.h"
#include "plugins/runtime.h"
#include "rooms/rooms.h"
#include "space/cluster_node.h"
#include "space/relay_keys.h"
#include "space/routes.h"
#include "space/space_impl.h"
#include "store/store.h"
#include "util/assets.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/loop_queue.h"
#include "util/metrics.h"
#include "util/random.h"
#include "util/wire_error.h"

namespace hut {
namespace {

constexpr int kShutdownGraceMs = 3000;

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

}  // namespace

Space::Impl::~Impl() {
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
  space::leave_cluster(cluster, bus.get(), rooms.get(), store.get());
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

Status Space::Impl::init() {
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
  ro.cache_path = config.space.data_dir.empty() ? std::string() : config.space.data_dir + "/relay-jwks.json";
  relay_keys = std::make_unique<space::RelayKeys>(loop, verifier.get(), ro);
  relay_keys->load_cache();
  return Status();
}

Status Space::Impl::start() {
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
      space::join_cluster(loop, config, bus.get(), rooms.get(), store.get());
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
void Space::Impl::load_builtins(bool last) {
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

void Space::Impl::load_builtin(const Builtin& b) {
  Status st = runtime->load_builtin(b.descriptor, b.init, b.fini);
  if (!st.ok())
    log_write(LogLevel::kWarn, "space",
              "the built-in plugin " + std::string(b.descriptor->name) +
                  " did not load: " + std::string(st.message()));
}

void Space::Impl::stop(std::function<void()> done) {
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
    // The other nodes see this one's users go offline with its heartbeats
    // gone; its Redis links and timer must not keep the loop alive.
    space::leave_cluster(cluster, bus.get(), rooms.get(), store.get());
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

Space::Space(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Space::~Space() = default;

Result<std::unique_ptr<Space>> Space::create(const SpaceOptions& options, uv_loop_t* loop) {
  // The checks of a file, for a configuration built in code too.
  SpaceConfig config = options_config(options);
  HUT_RETURN_IF_ERROR(check_space_config(config));
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
  SpaceOptions options;
  HUT_RETURN_IF_ERROR(load_space_options(path, process_env(), &options));
  return create(options, loop);
}

Status Space::start() { return impl_->start(); }
Status Space::reload(const SpaceOptions& options, std::vector<std::string>* applied,
                     std::vector<std::string>* needs_restart) {
  Result<ReloadReport> report = impl_->reload(options_config(options));
  if (!report.ok()) return report.status();
  *applied = std::move(report->applied);
  *needs_restart = std::move(report->needs_restart);
  return Status();
}
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
SpaceOptions Space::options() const {
  SpaceOptions out;
  options_config(out) = impl_->config;
  return out;
}

bool Space::post(std::function<void()> fn) { return impl_->posts.post(std::move(fn)); }

Status Space::mint_app_token(std::string_view user_id, std::string_view name, int64_t ttl_s,
                             std::string* token, int64_t* expires_at_ms) const {
  Result<AppToken> minted = impl_->mint(user_id, name, ttl_s);
  if (!minted.ok()) return minted.status();
  *token = std::move(minted->token);
  *expires_at_ms = minted->expires_at_ms;
  return Status();
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
