#include "relay/routes.h"

#include <array>

#include "relay/answers.h"
#include "relay/handlers.h"
#include "relay/sessions.h"

namespace hut::relay {

namespace {

using Handler = net::HttpResponse (*)(Call&);

struct RouteHandler {
  net::Route route;
  Handler handler;
};

constexpr RouteHandler kHandlers[] = {
    {{"GET", "/"}, get_web_page},
    {{"GET", "/spaces"}, get_web_page},
    {{"GET", "/profile"}, get_web_page},
    {{"GET", "/web/{file}"}, get_web_page},
    {{"GET", "/.well-known/jwks.json"}, get_jwks},
    {{"GET", "/login"}, get_login},
    {{"POST", "/login"}, post_login},
    {{"GET", "/avatars/{user}"}, get_avatar},
    {{"GET", "/api/v1/openapi.json"}, get_openapi},
    {{"POST", "/api/v1/accounts"}, post_accounts},
    {{"POST", "/api/v1/sessions"}, post_sessions},
    {{"DELETE", "/api/v1/sessions"}, delete_sessions},
    {{"GET", "/api/v1/me"}, get_me},
    {{"PATCH", "/api/v1/me"}, patch_me},
    {{"PUT", "/api/v1/me/avatar"}, put_avatar},
    {{"GET", "/api/v1/users/{user}"}, get_user},
    {{"GET", "/api/v1/spaces"}, get_spaces},
    {{"POST", "/api/v1/spaces"}, post_spaces},
    {{"GET", "/api/v1/spaces/{space}"}, get_space},
    {{"PATCH", "/api/v1/spaces/{space}"}, patch_space},
    {{"POST", "/api/v1/spaces/{space}/tokens"}, post_space_tokens},
};

constexpr auto kRoutes = [] {
  std::array<net::Route, std::size(kHandlers)> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = kHandlers[i].route;
  return out;
}();

}  // namespace

std::span<const net::Route> relay_routes() { return kRoutes; }

bool hashes_password(std::string_view method, std::string_view path) {
  return method == "POST" && (path == "/api/v1/sessions" || path == "/api/v1/accounts" || path == "/login");
}

net::HttpResponse dispatch(Call& call) {
  const std::string& m = call.req.method;
  const std::string& p = call.req.path;
  std::string allowed;
  switch (net::match_route(relay_routes(), m, p, &allowed)) {
    case net::RouteMatch::kNone:
      return error(404, "not_found", "no such route");
    case net::RouteMatch::kWrongMethod:
      return error(405, "method_not_allowed", "use " + allowed);
    case net::RouteMatch::kFound:
      break;
  }
  // State-changing API calls that another site could forge are refused
  // before anything else happens.
  if (p.starts_with("/api/v1/") && m != "GET" && m != "HEAD") {
    if (std::optional<net::HttpResponse> refusal = forgery_refusal(call.req, call.issuer()))
      return std::move(*refusal);
  }
  const std::string_view method = m == "HEAD" ? std::string_view("GET") : std::string_view(m);
  for (const RouteHandler& h : kHandlers) {
    if (method == h.route.method && net::path_matches(h.route.pattern, p)) return h.handler(call);
  }
  return error(404, "not_found", "no such route");
}

}  // namespace hut::relay
