#include <algorithm>

#include "config/schema.h"
#include "space/space_impl.h"

namespace hut {
bus::Bus::Options Space::Impl::bus_options(const SpaceConfig& c) {
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

double Space::Impl::post_rate(const SpaceConfig& c) {
  return static_cast<double>(std::max<int64_t>(c.limits.post_rate, 1));
}

double Space::Impl::post_burst(const SpaceConfig& c) {
  return static_cast<double>(std::max<int64_t>(c.limits.post_burst, 1));
}

net::NetOptions Space::Impl::net_limits(const SpaceConfig& c) {
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
Result<Space::ReloadReport> Space::Impl::reload(const SpaceConfig& given) {
  if (state != State::kRunning) return Status::failed_precondition("the space is not running");
  // The checks of create(), and the store url filled the same way.
  HUT_RETURN_IF_ERROR(check_space_config(given));
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

}  // namespace hut
