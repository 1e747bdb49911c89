// The network layer's context and listeners: the lws context on the loop,
// the public and admin vhosts and their callbacks, which hand each event to
// the HTTP exchange (http_exchange.cc) or the WebSocket connection
// (ws_connection.cc), and the shutdown in phases.
#include "net/server.h"

#include <algorithm>
#include <cstring>

#include "util/clock.h"
#include "util/log.h"

namespace hut::net {
namespace {

// lws allocates a receive buffer of this size for every bus connection and
// hands a message over in pieces of at most this size (on_ws_receive puts
// them together). Every buffer costs at least the memory page it starts in,
// so 64 KiB buffers made about 4 KiB of each idle connection's RSS. Most bus
// frames are ops of a few hundred bytes; 256-byte buffers keep an idle
// connection small at the price of more callbacks for large messages (a
// hello with a token comes in two or three pieces).
constexpr size_t kBusRxBufferSize = 256;

// No lws validity (idle ping and hang-up) timers: lws keeps every timer of a
// context in one sorted list, so arming one per connection made accepting N
// connections cost O(N^2). The bus keeps its own timers (the hello timeout).
const lws_retry_bo_t kNoIdleChecks = {};

// The callback reasons of an HTTP exchange, on either listener.
bool is_http_reason(enum lws_callback_reasons reason) {
  switch (reason) {
    case LWS_CALLBACK_HTTP:
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    case LWS_CALLBACK_HTTP_WRITEABLE:
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
      return true;
    default:
      return false;
  }
}

}  // namespace

NetServer::NetServer(uv_loop_t* loop, NetOptions options, NetHandler* handler)
    : loop_(loop), options_(std::move(options)), handler_(handler) {}

Result<std::unique_ptr<NetServer>> NetServer::create(uv_loop_t* loop, NetOptions options,
                                                     NetHandler* handler) {
  std::unique_ptr<NetServer> server(new NetServer(loop, std::move(options), handler));
  Status st = server->init();
  if (!st.ok()) return st;
  return server;
}

Status NetServer::init() {
  route_lws_logging(true);
  struct lws_protocols* public_protocols = public_protocols_;
  struct lws_protocols* admin_protocols = admin_protocols_;
  // protocols[0] is the default: an upgrade that offers no subprotocol binds
  // to it, and plain HTTP requests go to its callback as well.
  public_protocols[0] = {options_.websocket ? options_.ws_protocol.c_str() : "hutopia-http",
                         &NetServer::public_callback,
                         0,
                         kBusRxBufferSize,
                         0,
                         nullptr,
                         kBufferSize};
  public_protocols[1] = {nullptr, nullptr, 0, 0, 0, nullptr, 0};
  admin_protocols[0] = {"hutopia-admin", &NetServer::admin_callback, 0, kBufferSize, 0, nullptr, kBufferSize};
  admin_protocols[1] = {nullptr, nullptr, 0, 0, 0, nullptr, 0};

  bool public_tls = !options_.public_tls_cert.empty() && !options_.public_tls_key.empty();
  LwsContext::Options lo;
  lo.lws_options = LWS_SERVER_OPTION_VALIDATE_UTF8;
  if (public_tls) lo.lws_options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  lo.serv_buf_size = kBufferSize;
  Result<std::unique_ptr<LwsContext>> lws = LwsContext::create(loop_, this, lo);
  if (!lws.ok()) return lws.status();
  lws_ = std::move(*lws);

  auto make_vhost = [&](const char* name, const std::string& host, int port,
                        const struct lws_protocols* protocols, struct lws_vhost** out) -> Status {
    struct lws_context_creation_info vi;
    std::memset(&vi, 0, sizeof vi);
    vi.vhost_name = name;
    vi.port = port;
    bool any = host.empty() || host == "0.0.0.0" || host == "*" || host == "::";
    vi.iface = any ? nullptr : host.c_str();
    vi.protocols = protocols;
    vi.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (host.find(':') == std::string::npos && !any) vi.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    vi.keepalive_timeout = 30;
    vi.timeout_secs = 30;
    vi.user = this;
    vi.retry_and_idle_policy = &kNoIdleChecks;
    if (protocols == public_protocols && public_tls) {
      vi.ssl_cert_filepath = options_.public_tls_cert.c_str();
      vi.ssl_private_key_filepath = options_.public_tls_key.c_str();
      vi.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;  // lws reads it per vhost as well
    }
    *out = lws_create_vhost(context(), &vi);
    if (*out == nullptr) {
      return Status::unavailable("cannot listen on " + host + ":" + std::to_string(port) +
                                 " (address in use or not available)");
    }
    return Status();
  };
  HUT_RETURN_IF_ERROR(
      make_vhost("public", options_.public_host, options_.public_port, public_protocols, &public_vhost_));
  public_port_ = lws_get_vhost_listen_port(public_vhost_);
  if (options_.admin_enabled) {
    HUT_RETURN_IF_ERROR(
        make_vhost("admin", options_.admin_host, options_.admin_port, admin_protocols, &admin_vhost_));
    admin_port_ = lws_get_vhost_listen_port(admin_vhost_);
  }

  flusher_ = new Flusher;
  flusher_->server = this;
  uv_check_init(loop_, &flusher_->check);
  uv_idle_init(loop_, &flusher_->idle);
  flusher_->check.data = flusher_;
  flusher_->idle.data = flusher_;
  flusher_->open_handles = 2;
  // Neither handle keeps the loop alive on its own.
  uv_unref(reinterpret_cast<uv_handle_t*>(&flusher_->check));
  uv_unref(reinterpret_cast<uv_handle_t*>(&flusher_->idle));
  uv_check_start(&flusher_->check, [](uv_check_t* h) {
    auto* f = static_cast<Flusher*>(h->data);
    if (f->server != nullptr) f->server->flush_dirty();
  });
  return Status();
}

NetServer::~NetServer() {
  close_flusher();
  for (auto& [wsi, ex] : http_) ex->wsi_ = nullptr;
  http_.clear();
  for (auto& [wsi, conn] : conns_) conn->wsi_ = nullptr;
  if (shutdown_timer_ != nullptr) {
    shutdown_timer_->data = nullptr;
    uv_timer_stop(shutdown_timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(shutdown_timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    shutdown_timer_ = nullptr;
  }
  // From here on, lws's callbacks find no server; a context still alive is
  // torn down on later loop turns.
  lws_.reset();
  conns_.clear();
}

void NetServer::for_each_connection(const std::function<void(WsConnection*)>& fn) {
  std::vector<WsConnection*> all;
  all.reserve(conns_.size());
  for (auto& [wsi, conn] : conns_) all.push_back(conn.get());
  for (WsConnection* c : all) fn(c);
}

// Both listeners' protocol callback: HTTP goes to the exchange of the
// listener's routes; the public listener also carries the WebSocket endpoint
// and counts sockets, the admin one refuses every upgrade.
int NetServer::listener_callback(Listener listener, struct lws* wsi, enum lws_callback_reasons reason,
                                 void* user, void* in, size_t len) {
  NetServer* self = from_wsi(wsi);
  if (self == nullptr) return lws_callback_http_dummy(wsi, reason, user, in, len);
  if (is_http_reason(reason)) return self->http_callback(listener, wsi, reason, in, len);
  if (listener == Listener::kAdmin)
    return reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION
               ? 1
               : lws_callback_http_dummy(wsi, reason, user, in, len);
  switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_TIMER:
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
      return self->ws_callback(wsi, reason, in, len);
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
      // `wsi` is the listener here; the new socket has no wsi yet.
      if (self->sockets_.size() >= self->options_.max_connections) {
        self->counters_[Count::kRefusedConnections]++;
        return 1;
      }
      return 0;
    case LWS_CALLBACK_WSI_CREATE:
      self->sockets_.insert(wsi);
      return 0;
    case LWS_CALLBACK_WSI_DESTROY:
      // Upgrades that never reached ESTABLISHED end here too.
      self->sockets_.erase(wsi);
      self->pending_auth_.erase(wsi);
      self->http_closed(wsi);
      return 0;
    default:
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

int NetServer::public_callback(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in,
                               size_t len) {
  return listener_callback(Listener::kPublic, wsi, reason, user, in, len);
}

int NetServer::admin_callback(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in,
                              size_t len) {
  return listener_callback(Listener::kAdmin, wsi, reason, user, in, len);
}

void NetServer::shutdown(int grace_ms, std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  shutdown_done_ = std::move(done);
  for_each_connection([](WsConnection* c) { c->close(LWS_CLOSE_STATUS_GOINGAWAY, "space shutting down"); });
  uint64_t now = loop_now_ms(loop_);
  shutdown_deadline_ms_ = now + static_cast<uint64_t>(std::max(grace_ms, 0));
  shutdown_timer_ = new uv_timer_t;
  uv_timer_init(loop_, shutdown_timer_);
  shutdown_timer_->data = this;
  uv_timer_start(
      shutdown_timer_,
      [](uv_timer_t* t) {
        if (t->data != nullptr) static_cast<NetServer*>(t->data)->shutdown_tick();
      },
      10, 10);
}

void NetServer::shutdown_tick() {
  uint64_t now = loop_now_ms(loop_);
  if (!context_destroy_started_) {
    if (!conns_.empty() && now < shutdown_deadline_ms_) return;
    context_destroy_started_ = true;
    destroy_deadline_ms_ = now + 50;
    for (auto& [wsi, ex] : http_) ex->wsi_ = nullptr;
    http_.clear();
    body_bytes_ = 0;
    spool_bytes_ = 0;
    // First phase: lws closes its sockets and uv handles asynchronously.
    lws_->begin_destroy();
    return;
  }
  // Second phase: by now the close callbacks of lws's uv handles ran (they
  // run on the loop turn after the first phase), so the context can go.
  if (now < destroy_deadline_ms_) return;
  lws_->finish_destroy();
  if (context() != nullptr) log_write(LogLevel::kWarn, "net", "the lws context outlived its second destroy");
  uv_timer_stop(shutdown_timer_);
  shutdown_timer_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(shutdown_timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  shutdown_timer_ = nullptr;
  close_flusher();
  auto done = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  if (done) done();
}

}  // namespace hut::net
