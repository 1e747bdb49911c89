#include "admin/admin_api.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cjson/cJSON.h>

#include <cmath>

#include "util/json.h"
#include "util/wire_error.h"

// docs/openapi/space-admin.json, embedded by scripts/embed_assets.py.
extern "C" {
extern const size_t space_openapi_count;
extern const unsigned char* const space_openapi_data[];
extern const size_t space_openapi_sizes[];
}

namespace hut::admin {
namespace {

constexpr net::Route kRoutes[] = {
    {"GET", "/healthz"},
    {"GET", "/metrics"},
    {"GET", "/api/v1/openapi.json"},
    {"POST", "/api/v1/tokens"},
    {"GET", "/api/v1/rooms"},
    {"POST", "/api/v1/rooms"},
    {"GET", "/api/v1/rooms/{room}"},
    {"DELETE", "/api/v1/rooms/{room}"},
    {"GET", "/api/v1/rooms/{room}/messages"},
    {"POST", "/api/v1/rooms/{room}/messages"},
    {"PUT", "/api/v1/rooms/{room}/members/{user}"},
    {"DELETE", "/api/v1/rooms/{room}/members/{user}"},
    {"PUT", "/api/v1/rooms/{room}/bans/{user}"},
    {"DELETE", "/api/v1/rooms/{room}/bans/{user}"},
    {"GET", "/api/v1/plugins"},
    {"POST", "/api/v1/plugins"},
    {"GET", "/api/v1/plugins/{name}"},
    {"DELETE", "/api/v1/plugins/{name}"},
    {"POST", "/api/v1/plugins/{name}/reload"},
};

const PluginInfo* find_info(const std::vector<PluginInfo>& all, std::string_view name) {
  for (const auto& p : all)
    if (p.name == name) return &p;
  return nullptr;
}

// Parses a JSON object body; on failure answers 400 and returns null.
JsonPtr parse_body(const std::shared_ptr<net::HttpExchange>& ex) {
  const char* end = nullptr;
  JsonPtr root(cJSON_ParseWithLengthOpts(ex->body.data(), ex->body.size(), &end, 0));
  if (!root) {
    ex->respond(json_error(400, "bad_request", "the body is not valid JSON"));
    return nullptr;
  }
  if (!cJSON_IsObject(root.get())) {
    ex->respond(json_error(400, "bad_request", "the body must be a JSON object"));
    return nullptr;
  }
  return root;
}

}  // namespace

net::HttpResponse json_error(int status, std::string_view code, std::string_view message) {
  net::HttpResponse r;
  r.status = status;
  r.body = http_error_body(code, message);
  return r;
}

net::HttpResponse json_response(int status, std::string body) {
  net::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

std::string plugin_info_json(const PluginInfo& p) {
  JsonArray requires_list;
  for (const std::string& r : p.requires_) requires_list.str(r);
  JsonArray widgets;
  for (const WidgetInfo& w : p.widgets)
    widgets.raw(JsonObject().str("tag", w.tag).str("script", w.script).done());
  JsonObject out;
  out.str("name", p.name).str("version", p.version).str("abi", p.abi);
  out.raw("requires", requires_list.done()).raw("widgets", widgets.done()).str("state", p.state);
  if (!p.error.empty()) out.str("error", p.error);
  return out.done();
}

std::span<const net::Route> AdminApi::routes() { return kRoutes; }

AdminApi::AdminApi(std::string admin_token, AdminBackend* backend)
    : admin_token_(std::move(admin_token)), backend_(backend) {}

bool AdminApi::token_equals(std::string_view given, std::string_view expected) {
  // Comparing digests keeps the time independent of both lengths.
  unsigned char a[SHA256_DIGEST_LENGTH];
  unsigned char b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0 && !expected.empty();
}

void AdminApi::handle(const std::shared_ptr<net::HttpExchange>& ex) {
  const std::string& path = ex->path;
  const std::string& m = ex->method;
  if (path == "/healthz") {
    if (m != "GET" && m != "HEAD") {
      ex->respond(json_error(405, "bad_request", "use GET"));
      return;
    }
    ex->respond(json_response(200, R"({"ok":true})"));
    return;
  }
  if (admin_token_.empty()) {
    ex->respond(json_error(401, "unauthenticated",
                           "no admin token is configured ([admin] token); only /healthz answers"));
    return;
  }
  std::string_view auth = ex->header("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  bool ok = auth.size() > kBearer.size() && auth.substr(0, kBearer.size()) == kBearer &&
            token_equals(auth.substr(kBearer.size()), admin_token_);
  if (!ok) {
    ex->respond(
        json_error(401, "unauthenticated",
                   auth.empty() ? "missing Authorization: Bearer <admin token>" : "wrong admin token"));
    return;
  }

  // Only the routes of the table, whatever the code below would take (a
  // trailing slash is ignored).
  std::string_view route_path = path;
  if (route_path.size() > 1 && route_path.back() == '/') route_path.remove_suffix(1);
  std::string allowed;
  switch (net::match_route(kRoutes, m, route_path, &allowed)) {
    case net::RouteMatch::kNone:
      return ex->respond(json_error(404, "not_found", "no such route"));
    case net::RouteMatch::kWrongMethod:
      return ex->respond(json_error(405, "bad_request", "use " + allowed));
    case net::RouteMatch::kFound:
      break;
  }

  if (path == "/api/v1/openapi.json") {
    net::HttpResponse r;
    r.body = space_openapi_count == 1
                 ? std::string(reinterpret_cast<const char*>(space_openapi_data[0]), space_openapi_sizes[0])
                 : std::string("{}");
    r.headers.emplace_back("Cache-Control", "no-cache");
    ex->respond(std::move(r));
    return;
  }
  if (path == "/metrics") {
    if (m != "GET") return ex->respond(json_error(405, "bad_request", "use GET"));
    net::HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = backend_->metrics_text();
    ex->respond(std::move(r));
    return;
  }
  if (path == "/api/v1/tokens") {
    if (m != "POST") return ex->respond(json_error(405, "bad_request", "use POST"));
    tokens(ex);
    return;
  }
  if (path == "/api/v1/rooms" || path.rfind("/api/v1/rooms/", 0) == 0) {
    backend_->rooms_http(ex);
    return;
  }
  constexpr std::string_view kPlugins = "/api/v1/plugins";
  if (path == kPlugins || path == "/api/v1/plugins/") {
    if (m == "GET") return plugins_list(ex);
    if (m == "POST") return plugins_load(ex);
    return ex->respond(json_error(405, "bad_request", "use GET or POST"));
  }
  if (path.rfind("/api/v1/plugins/", 0) == 0) {
    std::string_view rest = std::string_view(path).substr(kPlugins.size() + 1);
    size_t slash = rest.find('/');
    std::string_view name = rest.substr(0, slash);
    std::string_view tail = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    if (!valid_plugin_name(name)) return ex->respond(json_error(404, "not_found", "no such plugin"));
    if (tail.empty() && m == "DELETE") return plugins_unload(ex, name);
    if (tail == "/reload" && m == "POST") return plugins_reload(ex, name);
    if (tail.empty() && m == "GET") {
      PluginRuntime* rt = backend_->plugins();
      auto all = rt ? rt->list() : std::vector<PluginInfo>{};
      const PluginInfo* p = find_info(all, name);
      if (p == nullptr) return ex->respond(json_error(404, "not_found", "no such plugin"));
      return ex->respond(json_response(200, plugin_info_json(*p)));
    }
    return ex->respond(json_error(404, "not_found", "no such route"));
  }
  ex->respond(json_error(404, "not_found", "no such route"));
}

void AdminApi::plugins_list(const std::shared_ptr<net::HttpExchange>& ex) {
  PluginRuntime* rt = backend_->plugins();
  std::string out = "[";
  if (rt != nullptr) {
    bool first = true;
    for (const PluginInfo& p : rt->list()) {
      if (!first) out += ',';
      first = false;
      out += plugin_info_json(p);
    }
  }
  out += "]";
  ex->respond(json_response(200, std::move(out)));
}

void AdminApi::plugins_load(const std::shared_ptr<net::HttpExchange>& ex) {
  JsonPtr body = parse_body(ex);
  if (!body) return;
  const char* name = get_string(body.get(), "name");
  if (name == nullptr) return ex->respond(json_error(400, "bad_request", "name must be a string"));
  if (!valid_plugin_name(name))
    return ex->respond(json_error(400, "bad_request", "a plugin name is 1-64 characters of a-z 0-9 _ -"));
  PluginRuntime* rt = backend_->plugins();
  if (rt == nullptr) return ex->respond(json_error(503, "unavailable", "the plugin runtime is not running"));
  Status st = rt->load(name);
  if (st.code() == Status::Code::kAlreadyExists)
    return ex->respond(json_error(409, "conflict", std::string("plugin ") + name + " is already loaded"));
  if (!st.ok()) return ex->respond(json_error(422, "unprocessable", st.message()));
  auto all = rt->list();
  const PluginInfo* p = find_info(all, name);
  ex->respond(
      json_response(201, p ? plugin_info_json(*p) : std::string(R"({"name":)") + json_string(name) + "}"));
}

void AdminApi::plugins_unload(const std::shared_ptr<net::HttpExchange>& ex, std::string_view name) {
  PluginRuntime* rt = backend_->plugins();
  if (rt == nullptr) return ex->respond(json_error(503, "unavailable", "the plugin runtime is not running"));
  Status st = rt->unload(name);
  if (st.is_not_found()) return ex->respond(json_error(404, "not_found", st.message()));
  if (st.code() == Status::Code::kFailedPrecondition)
    return ex->respond(json_error(409, "conflict", st.message()));
  if (!st.ok()) return ex->respond(json_error(500, "internal", st.message()));
  net::HttpResponse r;
  r.status = 204;
  r.content_type.clear();
  ex->respond(std::move(r));
}

void AdminApi::plugins_reload(const std::shared_ptr<net::HttpExchange>& ex, std::string_view name) {
  PluginRuntime* rt = backend_->plugins();
  if (rt == nullptr) return ex->respond(json_error(503, "unavailable", "the plugin runtime is not running"));
  Status st = rt->reload(name);
  if (st.is_not_found()) return ex->respond(json_error(404, "not_found", st.message()));
  if (!st.ok()) return ex->respond(json_error(422, "unprocessable", st.message()));
  auto all = rt->list();
  const PluginInfo* p = find_info(all, name);
  ex->respond(json_response(200, p ? plugin_info_json(*p) : std::string("{}")));
}

void AdminApi::tokens(const std::shared_ptr<net::HttpExchange>& ex) {
  JsonPtr body = parse_body(ex);
  if (!body) return;
  const char* user = get_string(body.get(), "user");
  if (user == nullptr || *user == '\0')
    return ex->respond(json_error(400, "bad_request", "user must be a non-empty string"));
  const cJSON* name = get_field(body.get(), "name");
  if (name != nullptr && !cJSON_IsString(name))
    return ex->respond(json_error(400, "bad_request", "name must be a string"));
  const cJSON* ttl = get_field(body.get(), "ttl");
  int64_t ttl_s = 0;
  if (ttl != nullptr) {
    if (!cJSON_IsNumber(ttl) || !std::isfinite(ttl->valuedouble) || ttl->valuedouble < 1 ||
        ttl->valuedouble != std::floor(ttl->valuedouble) || ttl->valuedouble > 1e9)
      return ex->respond(json_error(400, "bad_request", "ttl must be a whole number of seconds, at least 1"));
    ttl_s = static_cast<int64_t>(ttl->valuedouble);
  }
  std::string token;
  int64_t expires_at_ms = 0;
  if (Status st = backend_->mint_token(user, name ? name->valuestring : "", ttl_s, &token, &expires_at_ms);
      !st.ok()) {
    if (st.code() == Status::Code::kFailedPrecondition)
      return ex->respond(json_error(404, "not_found", st.message()));
    if (st.is_invalid_argument()) return ex->respond(json_error(400, "bad_request", st.message()));
    return ex->respond(json_error(500, "internal", st.message()));
  }
  ex->respond(json_response(200, JsonObject().str("token", token).num("expires_at", expires_at_ms).done()));
}

}  // namespace hut::admin
