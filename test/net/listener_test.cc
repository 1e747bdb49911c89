// The network layer on its own, with a handler of the test's: a listener
// with and without a WebSocket endpoint.
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "bus/ws_client.h"
#include "net/http_client.h"
#include "net/server.h"

using namespace hut;
using namespace hut::test;

namespace {

// Answers every request with 200 and "hello <path>"; no WebSocket methods of
// its own.
class HelloHandler : public net::NetHandler {
 public:
  void on_http(std::shared_ptr<net::HttpExchange> exchange) override {
    requests++;
    net::HttpResponse r;
    r.content_type = "text/plain";
    r.body = "hello " + exchange->path;
    exchange->respond(std::move(r));
  }
  std::atomic<int> requests{0};
};

// A NetServer on a loop of its own thread, shut down and joined on destruction.
class LoopServer {
 public:
  explicit LoopServer(net::NetOptions options) {
    uv_loop_init(&loop_);
    auto server = net::NetServer::create(&loop_, std::move(options), &handler);
    if (!server.ok()) {
      error = server.status().to_string();
      uv_loop_close(&loop_);
      return;
    }
    server_ = std::move(*server);
    port = server_->public_port();
    uv_async_init(&loop_, &stop_, [](uv_async_t* a) {
      auto* self = static_cast<LoopServer*>(a->data);
      self->server_->shutdown(1000, [self] {
        self->server_.reset();
        uv_close(reinterpret_cast<uv_handle_t*>(&self->stop_), nullptr);
      });
    });
    stop_.data = this;
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  ~LoopServer() {
    if (!thread_.joinable()) return;
    uv_async_send(&stop_);
    thread_.join();
    // The lws reaper's timers ran on the loop; what is left closes here.
    uv_run(&loop_, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop_) == 0);
  }
  bool ok() const { return error.empty(); }

  HelloHandler handler;
  int port = 0;
  std::string error;

 private:
  uv_loop_t loop_;
  uv_async_t stop_;
  std::unique_ptr<net::NetServer> server_;
  std::thread thread_;
};

net::NetOptions local_options() {
  net::NetOptions o;
  o.admin_enabled = false;
  return o;
}

}  // namespace

TEST_CASE("net: a listener without a WebSocket endpoint serves HTTP and refuses every upgrade") {
  net::NetOptions o = local_options();
  o.websocket = false;
  LoopServer s(o);
  REQUIRE_MESSAGE(s.ok(), s.error);
  HttpResult r = http_get(s.port, "/login");
  CHECK(r.status == 200);
  CHECK(r.body == "hello /login");
  for (const char* path : {"/bus", "/", "/login"}) {
    WsClient::Options wo;
    wo.port = s.port;
    wo.path = path;
    CAPTURE(path);
    CHECK(WsClient::connect(wo, nullptr, 3000) == nullptr);
    wo.protocol = "";
    CHECK(WsClient::connect(wo, nullptr, 3000) == nullptr);
  }
  // A refused upgrade is not handed to the handler as a request.
  CHECK(s.handler.requests == 1);
  CHECK(http_get(s.port, "/after").body == "hello /after");
}

TEST_CASE("net: a listener with a WebSocket endpoint upgrades at its path only") {
  net::NetOptions o = local_options();
  o.ws_path = "/socket";
  LoopServer s(o);
  REQUIRE_MESSAGE(s.ok(), s.error);
  WsClient::Options wo;
  wo.port = s.port;
  wo.path = "/bus";
  CHECK(WsClient::connect(wo, nullptr, 3000) == nullptr);
  wo.path = "/socket";
  std::string err;
  auto c = WsClient::connect(wo, &err, 3000);
  INFO(err);
  REQUIRE(c != nullptr);
  // A handler that does not take WebSockets closes them with 1008.
  CHECK(c->wait_close() == 1008);
  CHECK(http_get(s.port, "/x").body == "hello /x");
}
