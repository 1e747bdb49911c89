#include <cjson/cJSON.h>

#include <algorithm>
#include <cctype>

#include "space/routes.h"
#include "space/space_impl.h"
#include "util/assets.h"

HUT_DECLARE_ASSETS(space_web_assets)

namespace hut {
namespace {

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

}  // namespace

void Space::Impl::on_http(std::shared_ptr<net::HttpExchange> ex) {
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
net::BodyPlan Space::Impl::body_plan(const net::HttpExchange& ex) {
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

void Space::Impl::serve_web_asset(const std::shared_ptr<net::HttpExchange>& ex, std::string_view name) {
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
void Space::Impl::handle_well_known(const std::shared_ptr<net::HttpExchange>& ex) {
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

void Space::Impl::handle_login(const std::shared_ptr<net::HttpExchange>& ex) {
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

void Space::Impl::handle_plugin_asset(const std::shared_ptr<net::HttpExchange>& ex) {
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

void Space::Impl::handle_plugin_api(const std::shared_ptr<net::HttpExchange>& ex) {
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
int Space::Impl::answer_http(const std::weak_ptr<net::HttpExchange>& weak, const std::string& request_id,
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

void Space::Impl::on_ws_close(net::WsConnection* conn) {
  if (bus) bus->on_close(conn);
}

net::HttpResponse not_found(std::string_view message) { return admin::json_error(404, "not_found", message); }

}  // namespace hut
