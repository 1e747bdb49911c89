// hut::Relay (include/hutopia/relay.h): its life (create, start, reload,
// stop) and the thread-pool jobs that answer requests (relay_impl.h).
#include <hutopia/relay.h>
#include <openssl/crypto.h>

#include "config/schema.h"
#include "relay/answers.h"
#include "relay/relay_impl.h"
#include "relay/routes.h"
#include "util/clock.h"
#include "util/log.h"

namespace hut {

using relay::error;
using relay::internal_error;

struct Relay::Impl::Job {
  uv_work_t work;
  Impl* impl;
  std::shared_ptr<net::HttpExchange> exchange;
  relay::Request request;
  net::HttpResponse response;
  bool hashes = false;  // runs in the password-hash lane
  uint64_t start_ns = 0;
};

namespace {

// The admin listener's URL: 0.0.0.0 is reached on 127.0.0.1.
std::string admin_http_url(const std::string& host, int port) {
  std::string h = host.empty() || host == "0.0.0.0" ? "127.0.0.1" : host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  return "http://" + h + ":" + std::to_string(port);
}

}  // namespace

// ---------------------------------------------------------------- requests

void Relay::Impl::on_http(std::shared_ptr<net::HttpExchange> exchange) {
  LogRequestScope scope(exchange->request_id);
  if (stopping) {
    exchange->respond(error(503, "unavailable", "the relay is shutting down"));
    return;
  }
  if (exchange->listener == net::Listener::kAdmin) {
    handle_admin(exchange);
    return;
  }
  auto* job = new Job();
  job->start_ns = uv_hrtime();
  job->impl = this;
  job->exchange = exchange;
  relay::Request& req = job->request;
  req.method = exchange->method;
  req.path = exchange->path;
  req.query = exchange->query;
  req.body = exchange->body;
  req.authorization = std::string(exchange->header("authorization"));
  req.cookie = std::string(exchange->header("cookie"));
  req.content_type = std::string(exchange->header("content-type"));
  req.origin = std::string(exchange->header("origin"));
  req.peer = exchange->peer;
  job->work.data = job;
  job->hashes = relay::hashes_password(req.method, req.path);
  const RelayConfig::Limits& limits = state.config.limits;
  if (job->hashes && hash_running >= static_cast<size_t>(limits.hash_workers)) {
    if (hash_waiting.size() >= static_cast<size_t>(limits.hash_queue)) {
      delete job;
      state.stats.hash_refused++;
      net::HttpResponse r = error(503, "busy", "the relay is busy checking passwords; try again shortly");
      r.headers.emplace_back("Retry-After", "1");
      exchange->respond(std::move(r));
      return;
    }
    ++pending;
    hash_waiting.push_back(job);
    return;
  }
  ++pending;
  if (job->hashes) ++hash_running;
  if (!submit(job)) {
    --pending;
    if (job->hashes) --hash_running;
    delete job;
    exchange->respond(internal_error("cannot queue work"));
  }
}

bool Relay::Impl::submit(Job* job) { return uv_queue_work(loop, &job->work, run_job, after_job) == 0; }

void Relay::Impl::start_waiting_hash_jobs() {
  while (!hash_waiting.empty() && hash_running < static_cast<size_t>(state.config.limits.hash_workers)) {
    std::unique_ptr<Job> job(hash_waiting.front());
    hash_waiting.pop_front();
    if (!job->exchange->connected()) {  // the client left: no hash for nobody
      --pending;
      continue;
    }
    ++hash_running;
    if (!submit(job.get())) {
      --hash_running;
      --pending;
      LogRequestScope scope(job->exchange->request_id);
      job->exchange->respond(internal_error("cannot queue work"));
      continue;
    }
    job.release();
  }
}

// A pool thread.
void Relay::Impl::run_job(uv_work_t* work) {
  auto* job = static_cast<Job*>(work->data);
  LogRequestScope scope(job->exchange->request_id);
  relay::Call call{job->impl->state, job->request, wall_ms()};
  job->response = relay::dispatch(call);
  // The pool's threads are libuv's and outlive the relay; OpenSSL's state
  // for this thread (its error queue) is freed after each job so that none
  // is left behind when the process ends.
  OPENSSL_thread_stop();
}

void Relay::Impl::after_job(uv_work_t* work, int) {
  std::unique_ptr<Job> job(static_cast<Job*>(work->data));
  Impl* impl = job->impl;
  --impl->pending;
  if (job->hashes) {
    --impl->hash_running;
    impl->state.stats.hash_seconds.observe_ns(uv_hrtime() - job->start_ns);
    if (!impl->stopping) impl->start_waiting_hash_jobs();
  }
  if (job->response.status == 429) impl->state.stats.throttled++;
  if (impl->net) job->exchange->respond(std::move(job->response));
  job->exchange.reset();
  impl->maybe_finish_stop();
}

// ---------------------------------------------------------------- life

Relay::Relay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Relay::~Relay() {
  if (!impl_) return;
  impl_->net.reset();
  if (impl_->owned_loop) {
    // Lets the pool jobs and the closing handles finish.
    uv_run(impl_->owned_loop.get(), UV_RUN_DEFAULT);
    std::unique_ptr<uv_loop_t> loop = std::move(impl_->owned_loop);
    impl_.reset();
    uv_loop_close(loop.get());
  }
}

Result<std::unique_ptr<Relay>> Relay::create(const RelayOptions& options, uv_loop_t* loop) {
  RelayConfig config = options_config(options);
  HUT_RETURN_IF_ERROR(check_relay_config(config));
  std::unique_ptr<uv_loop_t> owned;
  if (loop == nullptr) {
    owned = std::make_unique<uv_loop_t>();
    int rc = uv_loop_init(owned.get());
    if (rc != 0) return Status::io_error(std::string("uv_loop_init: ") + uv_strerror(rc));
    loop = owned.get();
  }
  auto impl = std::make_unique<Impl>(std::move(config), loop);
  Status st = impl->state.open();
  if (!st.ok()) {
    if (owned) uv_loop_close(owned.get());
    return st;
  }
  impl->owned_loop = std::move(owned);
  return std::unique_ptr<Relay>(new Relay(std::move(impl)));
}

Result<std::unique_ptr<Relay>> Relay::from_file(const std::string& path, uv_loop_t* loop) {
  RelayOptions options;
  HUT_RETURN_IF_ERROR(load_relay_options(path, process_env(), &options));
  return create(options, loop);
}

Status Relay::start() {
  Impl& d = *impl_;
  if (d.started) return Status::failed_precondition("the relay was started already");
  const RelayConfig& c = d.state.config;
  Result<ListenAddress> addr = parse_listen_address(c.relay.listen);
  if (!addr.ok()) return Status::invalid_argument("relay.listen: " + std::string(addr.status().message()));
  Result<ListenAddress> admin = parse_listen_address(c.admin.listen);
  if (!admin.ok()) return Status::invalid_argument("admin.listen: " + std::string(admin.status().message()));
  net::NetOptions o;
  o.public_host = addr->host;
  o.public_port = addr->port;
  o.admin_enabled = true;
  o.admin_host = admin->host;
  o.admin_port = admin->port;
  // An avatar may have 1 MiB; a larger body gets 413 from the network layer.
  o.max_body = 1 << 20;
  o.websocket = false;  // HTTP only: every upgrade is refused
  Result<std::unique_ptr<net::NetServer>> net = net::NetServer::create(d.loop, o, &d);
  if (!net.ok()) return net.status();
  d.net = std::move(*net);
  d.host = addr->host;
  d.port = d.net->public_port();
  d.admin_host = admin->host;
  d.admin_port = d.net->admin_port();
  d.started = true;
  return Status();
}

void Relay::stop(std::function<void()> done) {
  Impl& d = *impl_;
  if (d.stopping) return;
  d.stopping = true;
  d.stop_done = std::move(done);
  while (!d.hash_waiting.empty()) {
    std::unique_ptr<Impl::Job> job(d.hash_waiting.front());
    d.hash_waiting.pop_front();
    --d.pending;
    job->exchange->respond(error(503, "unavailable", "the relay is shutting down"));
  }
  if (!d.net) {
    d.net_down = true;
    d.maybe_finish_stop();
    return;
  }
  d.net->shutdown(2000, [&d] {
    d.net_down = true;
    d.maybe_finish_stop();
  });
}

void Relay::Impl::maybe_finish_stop() {
  if (!stopping || !net_down || pending > 0 || stopped) return;
  stopped = true;
  net.reset();
  if (stop_done) {
    auto d = std::move(stop_done);
    d();
  }
}

Status Relay::reload(const RelayOptions& options, std::vector<std::string>* applied,
                     std::vector<std::string>* needs_restart) {
  const RelayConfig& next = options_config(options);
  HUT_RETURN_IF_ERROR(check_relay_config(next));
  Impl& d = *impl_;
  ReloadReport report;
  auto diff = [&](const char* name, const auto& before, const auto& after, bool live) {
    if (before == after) return;
    (live ? report.applied : report.needs_restart).push_back(name);
  };
  RelayConfig& c = d.state.config;
#define HUT_LIVE(section, key) diff(#section "." #key, c.section.key, next.section.key, true)
#define HUT_RESTART(section, key) diff(#section "." #key, c.section.key, next.section.key, false)
  HUT_RESTART(relay, listen);
  HUT_RESTART(relay, issuer);
  HUT_RESTART(relay, data_dir);
  HUT_RESTART(relay, token_ttl);
  HUT_RESTART(relay, session_ttl);
  HUT_RESTART(relay, registration);
  HUT_RESTART(admin, listen);
  HUT_LIVE(admin, token);
  HUT_LIVE(log, level);
  HUT_LIVE(limits, login_attempts_per_account);
  HUT_LIVE(limits, login_attempts_per_address);
  HUT_LIVE(limits, login_window);
  HUT_LIVE(limits, accounts_per_address);
  HUT_LIVE(limits, account_window);
  HUT_LIVE(limits, tokens_per_user);
  HUT_LIVE(limits, token_window);
  HUT_RESTART(limits, spaces_per_user);
  HUT_LIVE(limits, hash_workers);
  HUT_LIVE(limits, hash_queue);
#undef HUT_LIVE
#undef HUT_RESTART
  // Only what pool threads never read from the configuration is written
  // here; the budgets themselves are thread-safe.
  const RelayConfig::Limits& l = next.limits;
  relay::RelayState& s = d.state;
  s.login_account_limit->set_budget(l.login_attempts_per_account, l.login_window * 1000);
  s.login_address_limit->set_budget(l.login_attempts_per_address, l.login_window * 1000);
  s.account_limit->set_budget(l.accounts_per_address, l.account_window * 1000);
  s.token_limit->set_budget(l.tokens_per_user, l.token_window * 1000);
  c.limits.login_attempts_per_account = l.login_attempts_per_account;
  c.limits.login_attempts_per_address = l.login_attempts_per_address;
  c.limits.login_window = l.login_window;
  c.limits.accounts_per_address = l.accounts_per_address;
  c.limits.account_window = l.account_window;
  c.limits.tokens_per_user = l.tokens_per_user;
  c.limits.token_window = l.token_window;
  c.limits.hash_workers = l.hash_workers;
  c.limits.hash_queue = l.hash_queue;
  c.admin.token = next.admin.token;
  c.log = next.log;
  if (!d.stopping) d.start_waiting_hash_jobs();
  *applied = std::move(report.applied);
  *needs_restart = std::move(report.needs_restart);
  return Status();
}

int Relay::run() {
  if (!impl_->owned_loop) return -1;
  uv_run(impl_->loop, UV_RUN_DEFAULT);
  return 0;
}

uv_loop_t* Relay::loop() const { return impl_->loop; }
std::string Relay::public_url() const {
  const std::string& h = impl_->host;
  if (h.find(':') != std::string::npos) return "http://[" + h + "]:" + std::to_string(impl_->port);
  return "http://" + h + ":" + std::to_string(impl_->port);
}
std::string Relay::admin_url() const { return admin_http_url(impl_->admin_host, impl_->admin_port); }
int Relay::public_port() const { return impl_->port; }
int Relay::admin_port() const { return impl_->admin_port; }
RelayOptions Relay::options() const {
  RelayOptions out;
  options_config(out) = impl_->state.config;
  return out;
}

Result<std::string> Relay::rotate_signing_key() { return impl_->state.keys->rotate(wall_ms() / 1000); }

Result<std::string> rotate_relay_signing_key(const RelayOptions& options) {
  const RelayConfig& config = options_config(options);
  relay::SigningKeys keys(config.relay.data_dir + "/keys", config.relay.token_ttl);
  return keys.rotate(wall_ms() / 1000);
}

}  // namespace hut
