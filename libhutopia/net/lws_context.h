// A libwebsockets context on a libuv loop the project owns, as both the
// server (net/server.h) and the client transport (client/transport.h) make
// one: lws's log lines in the project's log, the context on a foreign loop,
// its owner found from any wsi, and its teardown in phases while the loop
// runs on (see /docs/architecture.md, "The network layer").
//
// Thread: the loop thread. Ownership: the server or transport owns its
// LwsContext; what lws holds on to (the anchor) outlives it until lws let go
// of the loop.
#ifndef HUTOPIA_NET_LWS_CONTEXT_H_
#define HUTOPIA_NET_LWS_CONTEXT_H_

#include <hutopia/status.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "net/lws.h"

namespace hut::net {

// Sends lws's errors (and warnings, when `warnings`) to log_write under
// "lws". lws's log level is one per process: the first call of each kind sets it.
void route_lws_logging(bool warnings);

// The text of one lws header of a request, or "" when absent.
std::string copy_header(struct lws* wsi, enum lws_token_indexes token);

class LwsContext {
 public:
  struct Options {
    // LWS_SERVER_OPTION_* flags on top of libuv on a foreign loop and
    // explicit vhosts.
    uint64_t lws_options = 0;
    size_t serv_buf_size = 0;  // pt_serv_buf_size; 0: lws's default
  };
  // Creates the context on `loop`; `owner` is what owner_of() finds.
  static Result<std::unique_ptr<LwsContext>> create(uv_loop_t* loop, void* owner, Options options);
  // As release(nullptr).
  ~LwsContext();
  LwsContext(const LwsContext&) = delete;
  LwsContext& operator=(const LwsContext&) = delete;

  // nullptr once lws freed it.
  struct lws_context* get() const {
    return anchor_ ? anchor_->context : nullptr;
  }
  // A client TLS context to free with the lws context (lws frees only the
  // ones it made itself).
  void keep_client_ssl(SSL_CTX* ctx) { anchor_->client_ssl = ctx; }
  // The owner given to create() of the context `wsi` belongs to; nullptr
  // once that LwsContext released it.
  static void* owner_of(struct lws* wsi);

  // The first phase of the teardown: lws closes its sockets and libuv
  // handles on the next loop turns. Call finish_destroy() a few turns later.
  void begin_destroy();
  // The second phase: frees the context once lws's handles are closed.
  void finish_destroy();
  // Lets go of the context: lws's callbacks find no owner from here on.
  // A context still alive is torn down on later loop turns; `done` runs on
  // the loop when lws let go of it (at once when it already had).
  void release(std::function<void()> done);

 private:
  // What lws holds on to: its user pointer and the slot it clears
  // (pcontext) when the context is gone. Heap, because a context still being
  // torn down outlives the LwsContext.
  struct Anchor {
    struct lws_context* context = nullptr;
    void* owner = nullptr;  // nullptr once released
    SSL_CTX* client_ssl = nullptr;
    ~Anchor();
  };
  LwsContext(uv_loop_t* loop) : loop_(loop) {}
  static void reap_later(uv_loop_t* loop, Anchor* anchor, std::function<void()> done);

  uv_loop_t* loop_;
  Anchor* anchor_ = nullptr;
  bool destroy_started_ = false;
};

}  // namespace hut::net

#endif  // HUTOPIA_NET_LWS_CONTEXT_H_
