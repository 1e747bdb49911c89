// The network layer's limits and close codes, against a real embedded space.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "bus/ws_client.h"
#include "net/http_client.h"
#include "space/space_fixture.h"

using namespace hut;
using namespace hut::test;

namespace {

std::unique_ptr<WsClient> welcomed(int port, const std::string& user, int receive_buffer = 0) {
  WsClient::Options o;
  o.port = port;
  o.receive_buffer = receive_buffer;
  std::string err;
  auto c = WsClient::connect(o, &err);
  INFO(err);
  REQUIRE(c != nullptr);
  WsEvent w = c->hello(app_token(user));
  REQUIRE(w.data.find(R"("op":"welcome")") != std::string::npos);
  return c;
}

void expect_fresh_connection_works(int port) {
  auto c = welcomed(port, "fresh");
  CHECK(c->request(R"({"op":"ping","ref":1})") == R"({"op":"ok","ref":1})");
}

std::string echo_frame(size_t data_chars) {
  return R"({"op":"widget","ref":1,"plugin":"echo","data":")" + std::string(data_chars, 'x') + "\"}";
}

}  // namespace

TEST_CASE("net: messages, fragments and the size limit") {
  TempDir dir;
  SpaceConfig cfg = test_config(dir);
  cfg.limits.max_message = 65536;
  EmbeddedSpace es(cfg);
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());

  SUBCASE("a message just under the limit, in one frame and in fragments") {
    auto c = welcomed(es.port(), "big");
    std::string frame = echo_frame(65000);
    std::string answer = c->request(frame);
    CHECK(answer.size() > 65000);
    CHECK(answer.find(R"("op":"ok")") != std::string::npos);
    std::vector<std::string> parts = {frame.substr(0, 10), frame.substr(10, 30000), frame.substr(30010)};
    REQUIRE(c->send_fragments(parts));
    CHECK(c->recv().data == answer);
  }
  SUBCASE("one frame over the limit: 1009") {
    auto c = welcomed(es.port(), "big");
    c->send_text(echo_frame(70000));
    CHECK(c->wait_close() == 1009);
  }
  SUBCASE("fragments that add up to more than the limit: 1009") {
    auto c = welcomed(es.port(), "big");
    std::string frame = echo_frame(80000);
    c->send_fragments({frame.substr(0, 40000), frame.substr(40000)});
    CHECK(c->wait_close() == 1009);
  }
  SUBCASE("text that is not UTF-8: 1007") {
    auto c = welcomed(es.port(), "utf");
    c->send_text("{\"op\":\"ping\",\"ref\":\"\xff\xfe\"}");
    CHECK(c->wait_close() == 1007);
  }
  SUBCASE("invalid UTF-8 split across fragments: 1007") {
    auto c = welcomed(es.port(), "utf");
    c->send_fragments({"{\"op\":\"ping\",\"ref\":\"\xe2\x82", "\x28\"}"});
    CHECK(c->wait_close() == 1007);
  }
  SUBCASE("a binary frame: 1003") {
    auto c = welcomed(es.port(), "bin");
    c->send_binary(R"({"op":"ping"})");
    CHECK(c->wait_close() == 1003);
  }
  SUBCASE("a binary frame before the hello: 1003") {
    WsClient::Options o;
    o.port = es.port();
    auto c = WsClient::connect(o);
    REQUIRE(c != nullptr);
    c->send_binary("\x01\x02");
    CHECK(c->wait_close() == 1003);
  }
  expect_fresh_connection_works(es.port());
}

TEST_CASE("net: only /bus upgrades") {
  TempDir dir;
  EmbeddedSpace es(test_config(dir));
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  WsClient::Options o;
  o.port = es.port();
  o.path = "/elsewhere";
  CHECK(WsClient::connect(o, nullptr, 2000) == nullptr);
  o.path = "/bus";
  o.port = es.admin_port();
  CHECK(WsClient::connect(o, nullptr, 2000) == nullptr);
  expect_fresh_connection_works(es.port());
}

TEST_CASE("net: connections over the limit are refused at the upgrade") {
  TempDir dir;
  SpaceConfig cfg = test_config(dir);
  cfg.limits.max_connections = 2;
  EmbeddedSpace es(cfg);
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  auto a = welcomed(es.port(), "a");
  auto b = welcomed(es.port(), "b");
  WsClient::Options o;
  o.port = es.port();
  CHECK(WsClient::connect(o, nullptr, 2000) == nullptr);
  a.reset();
  // The space notices the close on its next loop turns.
  std::unique_ptr<WsClient> c;
  for (int i = 0; i < 50 && c == nullptr; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (es.call([&] { return es.space().connection_count(); }) < 2) c = WsClient::connect(o, nullptr, 2000);
  }
  REQUIRE(c != nullptr);
  CHECK(c->hello(app_token("c")).data.find("welcome") != std::string::npos);
}

TEST_CASE("net: a client that stops reading is closed with 4008; a fast one is not slowed") {
  TempDir dir;
  SpaceConfig cfg = test_config(dir);
  cfg.limits.backpressure = 256 * 1024;
  EmbeddedSpace es(cfg);
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  auto slow = welcomed(es.port(), "slow");
  auto fast = welcomed(es.port(), "fast");

  const std::string data = "\"" + std::string(32 * 1024, 'e') + "\"";
  int sent = 0;
  size_t fast_got = 0;
  bool slow_gone = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  // Events for everyone until the slow reader is dropped (bounded: 64 MiB).
  while (sent < 2048 && !slow_gone && std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 16; ++i, ++sent)
      es.call([&] { return es.space().send_widget_event("flood", Audience::kEveryone, "", data).ok(); });
    while (fast_got < static_cast<size_t>(sent)) {
      WsEvent ev = fast->recv(5000);
      REQUIRE(ev.kind == WsEvent::kText);
      ++fast_got;
    }
    HttpResult m =
        http_get(es.admin_port(), "/metrics", {{"Authorization", std::string("Bearer ") + kAdminToken}});
    slow_gone = m.body.find("hutopia_closed_slow_total 1\n") != std::string::npos;
  }
  CHECK(slow_gone);
  CHECK(fast_got == static_cast<size_t>(sent));
  CHECK(fast->request(R"({"op":"ping","ref":"still"})") == R"({"op":"ok","ref":"still"})");
  // The slow client, reading again, finds what the kernel held and then the end.
  CHECK(slow->wait_close(10000) == 4008);
  MESSAGE("the slow reader was closed after " << sent << " events of 32 KiB");
}

TEST_CASE("net: HTTP request bodies are bounded; keep-alive and unknown routes") {
  TempDir dir;
  EmbeddedSpace es(test_config(dir));
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  HttpResult big = http_request(es.admin_port(), "POST", "/api/v1/tokens",
                                {{"Authorization", std::string("Bearer ") + kAdminToken}},
                                std::string(2 * 1024 * 1024, ' '));
  CHECK(big.status == 413);
  HttpResult chunked = http_request(
      es.admin_port(), "POST", "/api/v1/tokens",
      {{"Authorization", std::string("Bearer ") + kAdminToken}, {"Transfer-Encoding", "chunked"}}, "");
  CHECK(chunked.status == 411);
  HttpResult nf = http_get(es.port(), "/no/such/thing");
  CHECK(nf.status == 404);
  CHECK(nf.body.find(R"("code":"not_found")") != std::string::npos);
  CHECK(http_get(es.port(), "/healthz").status == 200);
}
