// The relay's admin listener: GET /healthz for anyone who reaches it, GET
// /metrics (Prometheus text) with the admin token. Loop thread.
#include "admin/admin_api.h"
#include "relay/answers.h"
#include "relay/relay_impl.h"
#include "util/metrics.h"

namespace hut {

using relay::error;

void Relay::Impl::handle_admin(const std::shared_ptr<net::HttpExchange>& ex) {
  const std::string& path = ex->path;
  if (ex->method != "GET" && ex->method != "HEAD") {
    ex->respond(error(405, "method_not_allowed", "use GET"));
    return;
  }
  if (path == "/healthz") {
    ex->respond(relay::json_response(200, R"({"ok":true})"));
    return;
  }
  const std::string& token = state.config.admin.token;
  if (token.empty()) {
    ex->respond(
        error(401, "unauthenticated", "no admin token is configured ([admin] token); only /healthz answers"));
    return;
  }
  std::string_view auth = ex->header("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  bool ok = auth.size() > kBearer.size() && auth.substr(0, kBearer.size()) == kBearer &&
            admin::AdminApi::token_equals(auth.substr(kBearer.size()), token);
  if (!ok) {
    ex->respond(error(401, "unauthenticated",
                      auth.empty() ? "missing Authorization: Bearer <admin token>" : "wrong admin token"));
    return;
  }
  if (path == "/metrics") {
    net::HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_text();
    ex->respond(std::move(r));
    return;
  }
  ex->respond(error(404, "not_found", "no such route"));
}

std::string Relay::Impl::metrics_text() const {
  const relay::RelayStats& stats = state.stats;
  std::string out;
  out +=
      "# HELP hutopia_relay_logins_total Password logins (API and login page), by result.\n"
      "# TYPE hutopia_relay_logins_total counter\n"
      "hutopia_relay_logins_total{result=\"ok\"} " +
      std::to_string(stats.logins_ok.load()) +
      "\n"
      "hutopia_relay_logins_total{result=\"failed\"} " +
      std::to_string(stats.logins_failed.load()) + "\n";
  metric_line(&out, "hutopia_relay_signups_total", "counter", "Accounts created.", stats.signups.load());
  metric_line(&out, "hutopia_relay_tokens_minted_total", "counter", "Relay tokens signed for spaces.",
              stats.tokens_minted.load());
  metric_line(&out, "hutopia_relay_throttled_total", "counter",
              "Requests answered 429 by a budget of [limits].", stats.throttled.load());
  metric_line(&out, "hutopia_relay_hash_refused_total", "counter",
              "Logins and sign-ups answered 503: the password-hash queue was full.",
              stats.hash_refused.load());
  metric_line(&out, "hutopia_relay_hash_running", "gauge", "Password hashes (argon2id) running now.",
              hash_running);
  metric_line(&out, "hutopia_relay_hash_queued", "gauge", "Logins and sign-ups waiting for a hash worker.",
              hash_waiting.size());
  metric_line(&out, "hutopia_relay_jobs", "gauge", "Requests waiting for or running on the thread pool.",
              pending);
  stats.hash_seconds.render(&out, "hutopia_relay_hash_request_duration_seconds",
                            "Time of a login or sign-up from its arrival to its answer, queue included.");
  counter_metric(&out, Count::kHttpRequests, net->counters()[Count::kHttpRequests]);
  http_responses_metric(&out, net->http_responses());
  metric_line(&out, "hutopia_http_sockets", "gauge", "Open connections to the public listener.",
              net->socket_count());
  return out;
}

}  // namespace hut
