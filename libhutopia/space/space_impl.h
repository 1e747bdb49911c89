// The space's parts and how they are wired: the private side of hut::Space,
// shared by the files of libhutopia/space (space.cc: lifecycle; space_reload.cc:
// options and reload; space_http.cc: the public listener's routes;
// space_services.cc: what plugins and the management API ask of the space).
#pragma once

#include <hutopia/space.h>
#include <hutopia/token.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "admin/admin_api.h"
#include "bus/bus.h"
#include "net/server.h"
#include "plugins/runtime.h"
#include "rooms/rooms.h"
#include "space/cluster_node.h"
#include "space/relay_keys.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/loop_queue.h"

namespace hut {

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

  ~Impl() override;

  Status init();

  Status start();

  // The plugins registered before start, each once its requirements are
  // loaded: called before the plugins folder (for those that need nothing
  // from it) and after it (for those that do). Requirements among them are
  // met in any registration order. `last`: those still waiting are tried
  // anyway, so that their failure is logged and listed with its reason.
  void load_builtins(bool last);

  void load_builtin(const Builtin& b);

  static bus::Bus::Options bus_options(const SpaceConfig& c);
  static double post_rate(const SpaceConfig& c);
  static double post_burst(const SpaceConfig& c);
  static net::NetOptions net_limits(const SpaceConfig& c);

  // What a running space can take from a new configuration: [limits], the
  // admin token, resume_ttl and the log level; the relay's key
  // set is fetched again and the plugins folder looked at again (rescan).
  // Whatever else differs waits for a restart.
  Result<Space::ReloadReport> reload(const SpaceConfig& given);

  uint64_t now_ms() const { return loop_now_ms(loop); }

  void stop(std::function<void()> done);

  // ---- NetHandler ----

  void on_http(std::shared_ptr<net::HttpExchange> ex) override;

  // A plugin route that asked for its body in a file (http_body_to_file).
  net::BodyPlan body_plan(const net::HttpExchange& ex) override;

  void serve_web_asset(const std::shared_ptr<net::HttpExchange>& ex, std::string_view name);

  // {"id","name","relay"}: what a client needs to get a token for this space.
  void handle_well_known(const std::shared_ptr<net::HttpExchange>& ex);

  void handle_login(const std::shared_ptr<net::HttpExchange>& ex);

  void handle_plugin_asset(const std::shared_ptr<net::HttpExchange>& ex);

  void handle_plugin_api(const std::shared_ptr<net::HttpExchange>& ex);

  // Delivers a plugin's answer to an HTTP request: its response, 504 at the
  // deadline, 503 when the plugin stopped. A response whose file cannot be
  // opened is refused (HUT_ENOENT) and the request stays pending.
  int answer_http(const std::weak_ptr<net::HttpExchange>& weak, const std::string& request_id,
                  const PluginAnswer& a);

  void on_ws_open(net::WsConnection* conn) override { bus->on_open(conn); }
  void on_ws_message(net::WsConnection* conn, std::string_view text) override { bus->on_message(conn, text); }
  void on_ws_close(net::WsConnection* conn) override;

  // ---- PluginServices ----

  int send_widget_event(std::string_view plugin, EventTarget target, std::string_view target_id,
                        std::string_view data_json) override;
  int notify(std::string_view plugin, std::string_view user_id, std::string_view title, std::string_view body,
             std::string_view url) override;
  int mint_session_token(std::string_view session_id, int64_t ttl_s, std::string* token) override;

  // ---- AdminBackend ----

  PluginRuntime* plugins() override { return runtime.get(); }
  Status mint_token(std::string_view user, std::string_view name, int64_t ttl_s, std::string* token,
                    int64_t* expires_at_ms) override;

  Result<AppToken> mint(std::string_view user, std::string_view name, int64_t ttl_s) const;

  int room_post(std::string_view plugin, std::string_view room, std::string_view text,
                std::string_view data_json, RoomDone done) override;
  int room_history(std::string_view room, uint64_t before, int limit, RoomDone done) override;
  int room_members(std::string_view room, std::string* json) override;

  void rooms_http(const std::shared_ptr<net::HttpExchange>& ex) override;

  std::string metrics_text() override;
};

// A 404 answer with the API's error body.
net::HttpResponse not_found(std::string_view message = "not found");

}  // namespace hut
