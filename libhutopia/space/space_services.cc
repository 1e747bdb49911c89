#include <cstdio>
#include <ctime>

#include "bus/protocol.h"
#include "space/space_impl.h"
#include "util/metrics.h"
#include "util/random.h"

namespace hut {
int Space::Impl::send_widget_event(std::string_view plugin, EventTarget target, std::string_view target_id,
                                   std::string_view data_json) {
  if (!bus::is_json(data_json)) return HUT_EINVAL;
  if (state != State::kRunning) return HUT_EUNAVAIL;
  size_t n = space::send_event_everywhere(cluster.get(), bus.get(), target, target_id,
                                          bus::make_widget_event(plugin, data_json));
  // plugin.h: HUT_ENOENT for a session the space does not know (any more).
  if (n == 0 && target == EventTarget::kSession) return HUT_ENOENT;
  return HUT_OK;
}

int Space::Impl::notify(std::string_view plugin, std::string_view user_id, std::string_view title,
                        std::string_view body, std::string_view url) {
  if (user_id.empty() || title.empty()) return HUT_EINVAL;
  if (state != State::kRunning) return HUT_EUNAVAIL;
  space::send_event_everywhere(cluster.get(), bus.get(), EventTarget::kUser, user_id,
                               bus::make_notify_event(plugin, title, body, url));
  return HUT_OK;
}

int Space::Impl::mint_session_token(std::string_view session_id, int64_t ttl_s, std::string* token) {
  const bus::Session* s = bus ? bus->welcomed_session(session_id) : nullptr;
  if (s == nullptr) return HUT_ENOENT;
  if (!app_key) return HUT_EUNAVAIL;
  if (ttl_s > config.auth.max_token_lifetime) return HUT_EINVAL;
  Result<AppToken> t = mint(s->user.id, s->user.name, ttl_s);
  if (!t.ok()) return HUT_EINVAL;
  *token = t->token;
  return HUT_OK;
}

Status Space::Impl::mint_token(std::string_view user, std::string_view name, int64_t ttl_s,
                               std::string* token, int64_t* expires_at_ms) {
  Result<AppToken> t = mint(user, name, ttl_s);
  if (!t.ok()) return t.status();
  *token = std::move(t->token);
  *expires_at_ms = t->expires_at_ms;
  return Status();
}

Result<AppToken> Space::Impl::mint(std::string_view user, std::string_view name, int64_t ttl_s) const {
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

int Space::Impl::room_post(std::string_view plugin, std::string_view room, std::string_view text,
                           std::string_view data_json, RoomDone done) {
  if (rooms == nullptr) return HUT_ENOTSUP;
  return rooms->plugin_post(plugin, room, text, data_json, std::move(done));
}

int Space::Impl::room_history(std::string_view room, uint64_t before, int limit, RoomDone done) {
  if (rooms == nullptr) return HUT_ENOTSUP;
  return rooms->plugin_history(room, before, limit, std::move(done));
}

int Space::Impl::room_members(std::string_view room, std::string* json) {
  if (rooms == nullptr) return HUT_ENOTSUP;
  return rooms->plugin_members(room, json);
}

void Space::Impl::rooms_http(const std::shared_ptr<net::HttpExchange>& ex) {
  if (rooms == nullptr || state != State::kRunning) {
    ex->respond(admin::json_error(503, "unavailable", "rooms are not available"));
    return;
  }
  rooms->handle_admin(ex);
}

std::string Space::Impl::metrics_text() {
  std::string out;
  metric_line(&out, "hutopia_connections", "gauge", "Open bus connections.", net->connection_count());
  metric_line(&out, "hutopia_sessions", "gauge", "Bus sessions past the welcome.", bus->welcomed_count());
  metric_line(&out, "hutopia_http_sockets", "gauge",
              "Open connections to the public listener, HTTP and WebSocket.", net->socket_count());
  metric_line(&out, "hutopia_http_body_bytes", "gauge", "Request body bytes counted against max_body_total.",
              net->body_bytes());
  counter_metrics(&out, {&net->counters(), &bus->counters()});
  http_responses_metric(&out, net->http_responses());
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

}  // namespace hut
