// The relay's keys: fetched at start, fetched again for an unknown kid (rate
// limited), kept on disk for a start while the relay is down.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>

#include "bus/ws_client.h"
#include "space/space_fixture.h"

using namespace hut;
using namespace hut::test;

namespace {

constexpr const char* kRelayIssuer = "http://relay.test";

// Serves one JSON document on GET, from a thread, until destroyed.
class JwksServer {
 public:
  JwksServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] { serve(); });
  }
  ~JwksServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  int requests() const { return requests_; }
  void set_body(std::string body) {
    std::lock_guard<std::mutex> lock(mu_);
    body_ = std::move(body);
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      char buf[4096];
      std::string req;
      while (req.find("\r\n\r\n") == std::string::npos) {
        pollfd q{c, POLLIN, 0};
        if (poll(&q, 1, 2000) <= 0) break;
        ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      ++requests_;
      std::string body;
      {
        std::lock_guard<std::mutex> lock(mu_);
        body = body_;
      }
      std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      close(c);
    }
  }
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::string body_;
  std::thread thread_;
};

std::string relay_token(const Key& key, const std::string& user) {
  static int n = 0;
  Claims c;
  c.iss = kRelayIssuer;
  c.sub = user;
  c.aud = kSpaceId;
  c.iat = static_cast<int64_t>(std::time(nullptr));
  c.exp = c.iat + 60;
  c.jti = "relay-" + std::to_string(++n) + "-" + std::to_string(c.iat);
  c.name = user;
  c.username = user;
  auto t = sign_token(key, c);
  return t.ok() ? *t : std::string();
}

std::string hello_answer(int port, const std::string& token) {
  WsClient::Options o;
  o.port = port;
  auto c = WsClient::connect(o);
  if (c == nullptr) return "no connection";
  WsEvent e = c->hello(token);
  return e.data;
}

}  // namespace

TEST_CASE("space: relay keys are fetched, refreshed for a new kid, and kept on disk") {
  auto k1 = Key::generate_ed25519("k1");
  auto k2 = Key::generate_ed25519("k2");
  auto k3 = Key::generate_ed25519("k3");
  REQUIRE(k1.ok());
  REQUIRE(k2.ok());
  REQUIRE(k3.ok());
  KeySet one;
  one.add(*k1);
  KeySet two = one;
  two.add(*k2);

  TempDir dir;
  SpaceConfig cfg = test_config(dir);
  cfg.auth.relay_issuer = kRelayIssuer;
  {
    JwksServer relay;
    relay.set_body(one.to_jwks());
    cfg.auth.relay_jwks = "http://127.0.0.1:" + std::to_string(relay.port()) + "/.well-known/jwks.json";
    EmbeddedSpace es(cfg);
    REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
    CHECK(hello_answer(es.port(), relay_token(*k1, "r1")).find(R"("op":"welcome")") != std::string::npos);

    // The relay rotates: a token with the new kid makes the space look again.
    relay.set_body(two.to_jwks());
    int before = relay.requests();
    CHECK(hello_answer(es.port(), relay_token(*k2, "r2")).find(R"("op":"welcome")") != std::string::npos);
    CHECK(relay.requests() == before + 1);

    // Right after, another unknown kid does not make it fetch again.
    std::string refused = hello_answer(es.port(), relay_token(*k3, "r3"));
    CHECK(refused.find("unknown signing key") != std::string::npos);
    CHECK(relay.requests() == before + 1);
  }
  // The relay is gone; the space starts from its saved copy.
  REQUIRE(std::filesystem::exists(dir.file("relay-jwks.json")));
  cfg.auth.relay_jwks = "http://127.0.0.1:9/.well-known/jwks.json";
  EmbeddedSpace again(cfg);
  REQUIRE_MESSAGE(again.ok(), again.start_status().to_string());
  CHECK(hello_answer(again.port(), relay_token(*k2, "r4")).find(R"("op":"welcome")") != std::string::npos);
}
