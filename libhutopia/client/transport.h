// The client side of the network layer: one libwebsockets context of its own
// on a libuv loop, for outgoing HTTP requests and WebSocket connections,
// plain or TLS (certificates verified against the system's trust store, or
// a CA file given in the options).
//
// Names are resolved on libuv's thread pool (lws would resolve them on the
// loop), then lws connects to the address with the name in the Host header,
// which is also the name the server certificate must carry.
//
// Thread: the loop thread. Ownership: the owner (hut::Client) owns the
// Transport; the loop is borrowed and must outlive it. Destroying the
// Transport drops every pending callback; lws's context is then torn down on
// later loop turns (run the loop until it returns before closing it).
#ifndef HUTOPIA_CLIENT_TRANSPORT_H_
#define HUTOPIA_CLIENT_TRANSPORT_H_

#include <hutopia/status.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "net/lws.h"
#include "net/lws_context.h"
#include "util/url.h"

namespace hut::client {

using hut::Url;  // util/url.h: http(s):// and ws(s):// URLs

struct HttpReply {
  int status = 0;
  std::string body;
};

class Transport {
 public:
  struct Options {
    std::string ca_file;  // PEM trust anchors for TLS; empty: the system's
    size_t max_body = 4 << 20;
    size_t max_message = 1 << 20;
    int connect_timeout_s = 20;
  };
  static Result<std::unique_ptr<Transport>> create(uv_loop_t* loop, Options options);
  ~Transport();
  // Drops every pending callback and tears the lws context down; `done`
  // runs on the loop once lws let go of it. Destroy the Transport after.
  void shutdown(std::function<void()> done);
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // One HTTP request. `done` runs on the loop once (kUnavailable when no
  // answer came), unless the Transport goes first.
  void http(std::string method, const Url& url, std::vector<std::pair<std::string, std::string>> headers,
            std::string body, std::function<void(Result<HttpReply>)> done);

  // One WebSocket connection.
  class Socket {
   public:
    std::function<void()> on_open;
    std::function<void(std::string_view)> on_message;
    // Once, when the socket closed or never opened: the peer's close code
    // (1006 when none came) and a reason.
    std::function<void(int code, std::string reason)> on_close;
    void send(std::string text);
    // Closes with 1000; on_close follows.
    void close();
    bool open() const { return open_; }

   private:
    friend class Transport;
    Transport* owner_ = nullptr;
    struct lws* wsi_ = nullptr;
    bool open_ = false;
    bool closing_ = false;
    bool finished_ = false;
    int peer_code_ = 0;
    std::string peer_reason_;
    std::string message_;
    std::deque<std::string> out_;
    Url url_;
    std::string host_;
    std::string target_;  // the path and query
    std::string protocol_;
  };
  // Connects to url (ws:// or wss://; http(s):// are taken as the same).
  // The Socket belongs to the Transport until its on_close ran; the caller
  // may forget it after close() or on_close.
  Socket* connect_ws(const Url& url, std::string protocol);

 private:
  struct Request;
  struct Resolve;
  Transport(uv_loop_t* loop, Options options);
  Status init();
  static int http_entry(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in, size_t len);
  // The entry of a protocol: the callback `handle` for the Item of `wsi`
  // while it is one of the transport's `live` ones; lws's default otherwise.
  template <class Item, std::unordered_set<Item*> Transport::*live,
            int (Transport::*handle)(Item*, struct lws*, enum lws_callback_reasons, void*, size_t)>
  static int entry(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in, size_t len);
  static Transport* owner_of(struct lws* wsi);
  int http_callback(Request* req, struct lws* wsi, enum lws_callback_reasons reason, void* in, size_t len);
  int ws_callback(Socket* s, struct lws* wsi, enum lws_callback_reasons reason, void* in, size_t len);
  void resolve(const std::string& host, std::function<void(std::string address, std::string error)> done);
  // What a request and a WebSocket connect with alike: the context and
  // vhost, the resolved `address`, the URL's port and TLS, `target` as the
  // path, `host` as Host and Origin. The strings must outlive the connect.
  lws_client_connect_info connect_info(const std::string& address, const Url& url, const std::string& target,
                                       const std::string& host) const;
  void start_request(Request* req, const std::string& address);
  void finish_request(Request* req, Result<HttpReply> result);
  void start_socket(Socket* s, const std::string& address);
  void finish_socket(Socket* s, int code, std::string reason);
  void reap_socket(Socket* s);

  uv_loop_t* loop_;
  Options options_;
  struct lws_protocols protocols_[3] = {};
  // The lws context; the client TLS context handed to the vhost goes with
  // it (lws frees only those it made, and libwebsockets 4.1 leaks its own
  // client SSL_CTX at teardown).
  std::unique_ptr<net::LwsContext> lws_;
  struct lws_vhost* vhost_ = nullptr;
  std::unordered_set<Request*> requests_;
  std::unordered_set<Socket*> sockets_;
  std::unordered_set<Resolve*> resolving_;
  std::string protocol_name_http_ = "hut-client-http";
};

}  // namespace hut::client

#endif  // HUTOPIA_CLIENT_TRANSPORT_H_
