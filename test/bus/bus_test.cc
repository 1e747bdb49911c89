// The widget bus against a real embedded space: auth, refusals, ops, events.
#include <doctest/doctest.h>

#include <thread>

#include "bus/ws_client.h"
#include "space/space_fixture.h"

using namespace hut;
using namespace hut::test;

namespace {

std::unique_ptr<WsClient> open_client(int port, const std::string& authorization = "",
                                      const std::string& protocol = "hutopia.v1") {
  WsClient::Options o;
  o.port = port;
  o.authorization = authorization;
  o.protocol = protocol;
  std::string err;
  auto c = WsClient::connect(o, &err);
  INFO(err);
  REQUIRE(c != nullptr);
  return c;
}

// A welcomed client for `user`.
std::unique_ptr<WsClient> welcomed(int port, const std::string& user) {
  auto c = open_client(port);
  WsEvent w = c->hello(app_token(user));
  REQUIRE(w.kind == WsEvent::kText);
  REQUIRE(w.data.find(R"("op":"welcome")") != std::string::npos);
  return c;
}

// The refusal every unauthenticated path ends in: the error, then 4001.
void expect_refused(WsClient& c, const WsEvent& first, const std::string& why) {
  REQUIRE(first.kind == WsEvent::kText);
  CHECK(first.data.find(R"("op":"error")") != std::string::npos);
  CHECK(first.data.find(R"("code":"unauthenticated")") != std::string::npos);
  CHECK(first.data.find(why) != std::string::npos);
  CHECK(c.wait_close() == 4001);
}

void expect_fresh_connection_works(int port) {
  auto c = welcomed(port, "fresh");
  CHECK(c->request(R"({"op":"ping","ref":1})") == R"({"op":"ok","ref":1})");
}

}  // namespace

TEST_CASE("bus: auth by header and by hello, welcome shape") {
  TempDir dir;
  EmbeddedSpace es(test_config(dir));
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());

  auto by_header = open_client(es.port(), "Bearer " + app_token("alice"));
  WsEvent w = by_header->recv();
  REQUIRE(w.kind == WsEvent::kText);
  CHECK(w.data.find(R"("op":"welcome")") != std::string::npos);
  CHECK(w.data.find(R"("user":{"id":"alice","name":"User alice"})") != std::string::npos);
  CHECK(w.data.find(R"("space":{"id":"test-space","name":"Test space"})") != std::string::npos);
  CHECK(w.data.find(R"("plugin":"counter","tag":"hut-counter","script":"/plugins/counter/widget.js")") !=
        std::string::npos);
  CHECK(w.data.find(R"("rooms":[])") != std::string::npos);
  CHECK(w.data.find(R"("session":")") != std::string::npos);

  // A client offering no subprotocol is accepted too, and authenticates by hello.
  auto by_hello = open_client(es.port(), "", "");
  WsEvent w2 = by_hello->hello(app_token("bob", [](Claims& c) { c.avatar = "https://example.org/b.png"; }));
  REQUIRE(w2.kind == WsEvent::kText);
  CHECK(w2.data.find(R"("user":{"id":"bob","name":"User bob","avatar":"https://example.org/b.png"})") !=
        std::string::npos);
  CHECK(by_hello->request(R"({"op":"ping","ref":"p1"})") == R"({"op":"ok","ref":"p1"})");
  CHECK(es.call([&] { return es.space().session_count(); }) == 2);
}

TEST_CASE("bus: every refusal is an error then 4001, and the next client is fine") {
  TempDir dir;
  SpaceConfig cfg = test_config(dir);
  cfg.limits.hello_timeout = 1;
  EmbeddedSpace es(cfg);
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());

  SUBCASE("bad signature in the header") {
    auto c = open_client(es.port(), "Bearer " + app_token("u", {}, "another-secret-entirely"));
    expect_refused(*c, c->recv(), "signature");
  }
  SUBCASE("not a bearer header") {
    auto c = open_client(es.port(), "Basic dXNlcjpwdw==");
    expect_refused(*c, c->recv(), "Bearer");
  }
  SUBCASE("expired") {
    auto c = open_client(es.port());
    expect_refused(*c,
                   c->hello(app_token("u",
                                      [](Claims& cl) {
                                        cl.iat -= 200;
                                        cl.exp = cl.iat + 100;
                                      })),
                   "expired");
  }
  SUBCASE("another space") {
    auto c = open_client(es.port());
    expect_refused(*c, c->hello(app_token("u", [](Claims& cl) { cl.aud = "elsewhere"; })), "");
  }
  SUBCASE("replayed jti") {
    std::string t = app_token("u");
    auto first = open_client(es.port());
    REQUIRE(first->hello(t).data.find("welcome") != std::string::npos);
    auto second = open_client(es.port());
    expect_refused(*second, second->hello(t), "already used");
  }
  SUBCASE("no hello in time") {
    auto c = open_client(es.port());
    expect_refused(*c, c->recv(3000), "no hello");
  }
  SUBCASE("no hello in time: each silent connection in turn, the welcomed ones spared") {
    auto gone = open_client(es.port());  // leaves before its deadline
    auto first = open_client(es.port());
    auto early = welcomed(es.port(), "early");
    auto second = open_client(es.port());
    gone.reset();
    expect_refused(*first, first->recv(5000), "no hello within 1 s");
    expect_refused(*second, second->recv(5000), "no hello within 1 s");
    // Past every deadline the welcomed session is still served.
    CHECK(early->request(R"({"op":"ping","ref":1})") == R"({"op":"ok","ref":1})");
    // A connection opened after the queue ran empty gets its deadline too.
    auto late = open_client(es.port());
    expect_refused(*late, late->recv(5000), "no hello within 1 s");
    CHECK(early->request(R"({"op":"ping","ref":2})") == R"({"op":"ok","ref":2})");
  }
  SUBCASE("an op before welcome") {
    auto c = open_client(es.port());
    c->send_text(R"({"op":"ping","ref":9})");
    WsEvent e = c->recv();
    CHECK(e.data.find(R"("ref":9)") != std::string::npos);
    expect_refused(*c, e, "hello");
  }
  expect_fresh_connection_works(es.port());
}

TEST_CASE("bus: widget requests reach the plugin and come back with the ref") {
  TempDir dir;
  EmbeddedSpace es(test_config(dir));
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  auto c = welcomed(es.port(), "w");
  CHECK(c->request(R"({"op":"widget","ref":1,"plugin":"echo","data":{"a":[1,"x",null]}})") ==
        R"({"op":"ok","ref":1,"data":{"a":[1,"x",null]}})");
  CHECK(c->request(R"({"op":"widget","ref":"s","plugin":"echo"})") == R"({"op":"ok","ref":"s","data":null})");
  std::string nf = c->request(R"({"op":"widget","ref":2,"plugin":"nope","data":1})");
  CHECK(nf.find(R"("ref":2,"code":"not_found")") != std::string::npos);
  std::string br = c->request(R"({"op":"widget","ref":3,"data":1})");
  CHECK(br.find(R"("ref":3,"code":"bad_request")") != std::string::npos);
  // A plugin error comes back as the plugin chose it.
  std::string pe = c->request(R"({"op":"widget","ref":4,"plugin":"counter","data":{"op":"fly"}})");
  CHECK(pe.find(R"("ref":4,"code":"bad_request")") != std::string::npos);
  // Room ops go to the rooms part.
  std::string ro = c->request(R"({"op":"rooms","ref":5})");
  CHECK(ro == R"({"op":"ok","ref":5,"rooms":[],"more":false})");
}

TEST_CASE("bus: bad frames get bad_request and keep the connection") {
  TempDir dir;
  EmbeddedSpace es(test_config(dir));
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  auto c = welcomed(es.port(), "b");
  const char* frames[] = {"nonsense",
                          "[]",
                          "42",
                          "{}",
                          R"({"op":7,"ref":1})",
                          R"({"op":"teleport","ref":2})",
                          R"({"op":"ping","ref":[1]})",
                          R"({"op":"hello","token":"x","ref":3})"};
  for (const char* f : frames) {
    CAPTURE(f);
    std::string r = c->request(f);
    CHECK(r.find(R"("code":"bad_request")") != std::string::npos);
  }
  CHECK(c->request(R"({"op":"teleport","ref":"t"})").find(R"("ref":"t")") != std::string::npos);
  CHECK(c->request(R"({"op":"ping","ref":10})") == R"({"op":"ok","ref":10})");
  CHECK_FALSE(c->closed());
}

TEST_CASE("bus: a client that keeps sending bad frames is closed with 1008") {
  TempDir dir;
  SpaceConfig cfg = test_config(dir);
  cfg.limits.bad_frames = 5;
  EmbeddedSpace es(cfg);
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  auto c = welcomed(es.port(), "spammer");
  for (int i = 0; i < 4; ++i) CHECK(c->request("junk").find("bad_request") != std::string::npos);
  CHECK(c->request(R"({"op":"ping","ref":1})") == R"({"op":"ok","ref":1})");
  c->send_text("junk");
  std::vector<std::string> skipped;
  CHECK(c->wait_close(5000, &skipped) == 1008);
  REQUIRE(skipped.size() == 1);
  CHECK(skipped[0].find("bad_request") != std::string::npos);
  expect_fresh_connection_works(es.port());
}

TEST_CASE("bus: events reach a user's sessions or everyone") {
  TempDir dir;
  EmbeddedSpace es(test_config(dir));
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  auto a1 = welcomed(es.port(), "ann");
  auto a2 = welcomed(es.port(), "ann");
  auto b = welcomed(es.port(), "ben");
  auto n =
      es.call([&] { return es.space().send_widget_event("demo", Audience::kUser, "ann", R"({"hi":1})"); });
  REQUIRE(n.ok());
  CHECK(*n == 2);
  CHECK(a1->recv().data == R"({"op":"widget","plugin":"demo","data":{"hi":1}})");
  CHECK(a2->recv().data == R"({"op":"widget","plugin":"demo","data":{"hi":1}})");
  auto all = es.call([&] { return es.space().send_widget_event("demo", Audience::kEveryone, "", "[2]"); });
  CHECK(*all == 3);
  for (WsClient* c : {a1.get(), a2.get(), b.get()})
    CHECK(c->recv().data == R"({"op":"widget","plugin":"demo","data":[2]})");
  auto bad = es.call([&] { return es.space().send_widget_event("demo", Audience::kEveryone, "", "{nope"); });
  CHECK_FALSE(bad.ok());
  // A plugin's event: counter tells everyone about an increment.
  CHECK(b->request(R"({"op":"widget","ref":1,"plugin":"counter","data":{"op":"increment"}})") ==
        R"({"op":"ok","ref":1,"data":{"value":1}})");
  CHECK(b->recv().data == R"({"op":"widget","plugin":"counter","data":{"value":1}})");
  CHECK(a2->recv().data.find(R"("plugin":"counter")") != std::string::npos);
}
