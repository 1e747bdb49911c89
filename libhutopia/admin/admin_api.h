// The management API on the admin listener (contract section 4): health,
// plugins, app tokens and metrics; the rooms routes go to the backend.
//
// Every route but GET /healthz needs `Authorization: Bearer <admin token>`,
// compared in constant time; with no admin token configured, only
// /healthz answers. Errors are {"error":{"code","message"}}.
//
// Thread: the loop thread. Ownership: the Space owns the AdminApi; the
// backend is borrowed and outlives it.
#ifndef HUTOPIA_ADMIN_ADMIN_API_H_
#define HUTOPIA_ADMIN_ADMIN_API_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "net/routes.h"
#include "net/server.h"
#include "plugins/runtime.h"

namespace hut::admin {

// What the management API needs from the space.
class AdminBackend {
 public:
  virtual ~AdminBackend() = default;
  virtual PluginRuntime* plugins() = 0;  // nullptr when there is none
  // An app token for `user`: its text and expiry (Unix milliseconds).
  virtual Status mint_token(std::string_view user, std::string_view name, int64_t ttl_s, std::string* token,
                            int64_t* expires_at_ms) = 0;
  virtual std::string metrics_text() = 0;
  // The /api/v1/rooms routes, after the token check; answers `ex`.
  virtual void rooms_http(const std::shared_ptr<net::HttpExchange>& ex) = 0;
};

class AdminApi {
 public:
  // Every route the management API serves, /healthz and the rooms routes
  // included; a request that matches none gets 404 (405 when only the
  // method differs) before any handler runs. docs/openapi/space-admin.json
  // documents each of them (test/openapi checks that).
  static std::span<const net::Route> routes();

  AdminApi(std::string admin_token, AdminBackend* backend);
  void handle(const std::shared_ptr<net::HttpExchange>& ex);
  // A reload's new token; calls from then on are checked against it.
  void set_token(std::string admin_token) { admin_token_ = std::move(admin_token); }

  // True when `given` equals `expected`, in time that depends on neither.
  static bool token_equals(std::string_view given, std::string_view expected);

 private:
  void plugins_list(const std::shared_ptr<net::HttpExchange>& ex);
  void plugins_load(const std::shared_ptr<net::HttpExchange>& ex);
  void plugins_unload(const std::shared_ptr<net::HttpExchange>& ex, std::string_view name);
  void plugins_reload(const std::shared_ptr<net::HttpExchange>& ex, std::string_view name);
  void tokens(const std::shared_ptr<net::HttpExchange>& ex);

  std::string admin_token_;
  AdminBackend* backend_;
};

// {"error":{"code":code,"message":message}} with `status` (util/wire_error.h).
net::HttpResponse json_error(int status, std::string_view code, std::string_view message);
net::HttpResponse json_response(int status, std::string body);
// JSON of one plugin as GET /api/v1/plugins lists it.
std::string plugin_info_json(const PluginInfo& info);

}  // namespace hut::admin

#endif  // HUTOPIA_ADMIN_ADMIN_API_H_
