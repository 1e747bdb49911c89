// The network layer: one libwebsockets context on a libuv loop with two
// listeners, the public one (HTTP, and unless NetOptions::websocket is off a
// WebSocket endpoint, for a space the bus at /bus, subprotocol hutopia.v1)
// and the admin one (HTTP only).
//
// What it does itself: HTTP request assembly (headers, a bounded body, kept
// in memory or, where the handler's body_plan says so, written to a file as
// it arrives), response bodies from memory or read from a file piece by piece,
// responses that may come later than the request, WebSocket message assembly
// with the size limit (1009), UTF-8 validity (1007), refusal of binary frames
// (1003), a per-connection output queue with a backpressure limit (4008) that
// never slows other connections, and graceful shutdown (1001 to everyone,
// then the lws context is destroyed in phases while the loop runs on).
// What it leaves to its NetHandler: routing of HTTP requests and the meaning
// of WebSocket messages.
//
// Where: server.cc holds the context, the listeners and the shutdown;
// http_exchange.cc the HTTP exchange (http_exchange.h); ws_connection.cc the
// WebSocket connection (ws_connection.h); lws_context.cc what the server and
// the client transport (client/transport.h, the library's HTTP client)
// share of setting lws up.
//
// Thread: every method runs on the loop thread, except where noted.
// Ownership: the owner of the NetServer (the Space) owns it and the handler;
// the loop is borrowed and must outlive the NetServer. WsConnection objects
// belong to the NetServer and live from the upgrade until on_ws_close
// returns. HttpExchange objects are shared: the handler may keep one to
// answer later; once its connection is gone, respond() is a no-op.
#ifndef HUTOPIA_NET_SERVER_H_
#define HUTOPIA_NET_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <hutopia/status.h>

#include "net/http_exchange.h"
#include "net/lws.h"
#include "net/lws_context.h"
#include "net/ws_connection.h"
#include "util/metrics.h"

namespace hut::net {
class NetHandler {
 public:
  virtual ~NetHandler() = default;
  virtual void on_http(std::shared_ptr<HttpExchange> exchange) = 0;
  // Once the headers of a request with a body are in (public listener,
  // not GET or HEAD): how to take the body. Default: buffered.
  virtual BodyPlan body_plan(const HttpExchange& exchange) {
    (void)exchange;
    return {};
  }
  // The WebSocket calls come only when NetOptions::websocket is on; an
  // HTTP-only handler need not override them.
  virtual void on_ws_open(WsConnection* conn) { conn->close(1008, "no WebSocket here"); }
  // A whole text message, valid UTF-8, within the size limit.
  virtual void on_ws_message(WsConnection* conn, std::string_view text) {
    (void)conn;
    (void)text;
  }
  // The connection is gone; `conn` is freed when this returns.
  virtual void on_ws_close(WsConnection* conn) { (void)conn; }
};

struct NetOptions {
  std::string public_host = "127.0.0.1";
  int public_port = 0;  // 0: any free port
  bool admin_enabled = true;
  std::string admin_host = "127.0.0.1";
  int admin_port = 0;
  size_t max_message = 65536;     // bytes of one WebSocket message
  size_t backpressure = 1 << 20;  // unsent bytes per connection
  size_t max_body = 1 << 20;      // bytes of one HTTP request body
  // Request body bytes buffered at once across every connection (by their
  // Content-Length, from the headers until the exchange ends); a request
  // that would pass it gets 503 and the connection is closed.
  size_t max_body_total = 16 << 20;
  // The same for bodies written to disk (BodyPlan), by their Content-Length.
  size_t max_spool_total = size_t{1} << 30;
  // Connections to the public listener at once, HTTP and WebSocket alike;
  // more are closed as they are accepted. The admin listener is not counted.
  size_t max_connections = 100000;
  // PEM files: the public listener speaks TLS when both are set.
  std::string public_tls_cert;
  std::string public_tls_key;
  // Whether the public listener has a WebSocket endpoint: upgrades to
  // ws_path are accepted (a space's bus). Off, it is an HTTP listener only
  // (the relay): every upgrade is refused and HTTP is served as usual.
  bool websocket = true;
  std::string ws_path = "/bus";
  std::string ws_protocol = "hutopia.v1";
};

;

class NetServer {
 public:
  // Creates the context and both listeners on `loop`. Call on the loop
  // thread, or before the loop runs.
  static Result<std::unique_ptr<NetServer>> create(uv_loop_t* loop, NetOptions options, NetHandler* handler);
  ~NetServer();
  NetServer(const NetServer&) = delete;
  NetServer& operator=(const NetServer&) = delete;

  int public_port() const { return public_port_; }
  int admin_port() const { return admin_port_; }
  size_t connection_count() const { return conns_.size(); }
  // Open connections to the public listener, HTTP and WebSocket.
  size_t socket_count() const { return sockets_.size(); }
  // Request body bytes counted against max_body_total now.
  size_t body_bytes() const { return body_bytes_; }
  // What it counts (the Count values up to kRefusedBodies).
  const Counters& counters() const { return counters_; }
  const HttpResponsesByClass& http_responses() const { return http_responses_; }
  const NetOptions& options() const { return options_; }
  // A reload's new limits (max_message, backpressure, max_connections,
  // max_body, max_body_total); open connections stay, and the limits apply
  // to what comes from then on.
  void set_limits(const NetOptions& limits) {
    options_.max_message = limits.max_message;
    options_.backpressure = limits.backpressure;
    options_.max_connections = limits.max_connections;
    options_.max_body = limits.max_body;
    options_.max_body_total = limits.max_body_total;
  }

  // Closes every WebSocket with 1001, waits (up to `grace_ms`) for them to
  // go, then destroys the lws context while the loop runs on. `done` runs on
  // the loop once lws let go of the loop; after that the NetServer may be
  // destroyed and the loop closed.
  void shutdown(int grace_ms, std::function<void()> done);
  bool shutting_down() const { return shutting_down_; }

  // Calls `fn` for every open connection.
  void for_each_connection(const std::function<void(WsConnection*)>& fn);

 private:
  friend class WsConnection;
  friend class HttpExchange;
  NetServer(uv_loop_t* loop, NetOptions options, NetHandler* handler);
  Status init();

  static int listener_callback(Listener listener, struct lws* wsi, enum lws_callback_reasons reason,
                               void* user, void* in, size_t len);
  static int public_callback(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in,
                             size_t len);
  static int admin_callback(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in,
                            size_t len);
  int http_callback(Listener listener, struct lws* wsi, enum lws_callback_reasons reason, void* in,
                    size_t len);
  int ws_callback(struct lws* wsi, enum lws_callback_reasons reason, void* in, size_t len);

  int on_http_request(Listener listener, struct lws* wsi, const char* uri);
  int write_http(struct lws* wsi);
  // A body that goes to disk (BodyPlan): opens its file, then writes each
  // piece as it arrives.
  int refuse_busy(HttpExchange& ex);
  int start_spool(const std::shared_ptr<HttpExchange>& ex, const BodyPlan& plan, size_t content_length);
  int spool_body(HttpExchange& ex, const char* in, size_t len);
  void http_closed(struct lws* wsi);
  // Removes the exchange of `wsi` from http_ and returns its body budget.
  void forget_http(struct lws* wsi);
  // Counts the response's status class and logs the request's line.
  void http_answered(const HttpExchange& ex, int status);
  int on_ws_receive(WsConnection* conn, const char* in, size_t len);
  int on_ws_writeable(WsConnection* conn);
  // Hands (part of) a connection's output to lws; asks for WRITEABLE when
  // lws still holds an earlier write or output is left. -1: the write failed.
  int write_out(WsConnection* conn);
  void mark_dirty(WsConnection* conn);
  void flush_dirty();
  void close_flusher();
  // Writes the close frame once a close was asked for and the queue is
  // empty; otherwise waits for WRITEABLE. Returns -1 when the write failed.
  int finish_close_if_due(WsConnection* conn);
  int send_close_frame(WsConnection* conn);
  void shutdown_tick();

  // The buffers of lws for a connection and for HTTP writes.
  static constexpr size_t kBufferSize = 65536;

  uv_loop_t* loop_;
  NetOptions options_;
  // lws keeps pointers to these for the lifetime of the vhosts.
  struct lws_protocols public_protocols_[2] = {};
  struct lws_protocols admin_protocols_[2] = {};
  NetHandler* handler_;
  std::unique_ptr<LwsContext> lws_;
  struct lws_context* context() const {
    return lws_ ? lws_->get() : nullptr;
  }
  static NetServer* from_wsi(struct lws* wsi) { return static_cast<NetServer*>(LwsContext::owner_of(wsi)); }
  struct lws_vhost* public_vhost_ = nullptr;
  struct lws_vhost* admin_vhost_ = nullptr;
  int public_port_ = 0;
  int admin_port_ = 0;
  uint64_t next_conn_id_ = 1;
  std::unordered_map<struct lws*, std::unique_ptr<WsConnection>> conns_;
  std::unordered_map<struct lws*, std::string> pending_auth_;  // from the upgrade request
  std::unordered_map<struct lws*, std::shared_ptr<HttpExchange>> http_;
  std::unordered_set<struct lws*> sockets_;  // accepted on the public listener
  size_t body_bytes_ = 0;
  size_t spool_bytes_ = 0;
  std::vector<unsigned char> write_buf_;  // write_http's, reused
  // Output buffers of connections whose output was written out, kept for
  // the next connection that sends (a fan-out appends to a thousand
  // connections a turn; without these every one of them allocates and grows
  // a buffer, and frees it after the write). At most kSpareBytes in all, so
  // idle connections still keep no buffer.
  std::vector<std::string> spare_out_;
  size_t spare_bytes_ = 0;
  static constexpr size_t kSpareBytes = 1 << 20;
  static constexpr size_t kSpareMaxCapacity = 16 * 1024;
  static constexpr size_t kOutFirstCapacity = 1024;
  // Gives `conn` an output buffer (a spare one when there is one).
  void take_out_buffer(WsConnection* conn, size_t need);
  // Takes back a connection's emptied output buffer.
  void give_back_out_buffer(WsConnection* conn);
  Counters counters_;
  HttpResponsesByClass http_responses_ = {0, 0, 0, 0, 0};
  // Connections with output appended during this loop turn (nullptr where
  // one closed meanwhile). A check handle writes them after the poll phase;
  // an idle handle, active while the list is not empty, keeps the poll from
  // blocking when output was appended outside it (timers). Heap, freed by
  // the close callbacks.
  std::vector<WsConnection*> dirty_;
  struct Flusher {
    uv_check_t check;
    uv_idle_t idle;
    NetServer* server = nullptr;
    int open_handles = 0;
  };
  Flusher* flusher_ = nullptr;

  bool shutting_down_ = false;
  bool context_destroy_started_ = false;  // the context's teardown began (shutdown_tick)
  uint64_t shutdown_deadline_ms_ = 0;
  uint64_t destroy_deadline_ms_ = 0;
  std::function<void()> shutdown_done_;
  uv_timer_t* shutdown_timer_ = nullptr;  // heap; freed by its close callback
};

}  // namespace hut::net

#endif  // HUTOPIA_NET_SERVER_H_
