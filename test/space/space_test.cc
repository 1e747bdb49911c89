// The space over HTTP (contract section 3), spaced as a process, shutdown,
// and the embedding example.
#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "bus/ws_client.h"
#include "net/http_client.h"
#include "space/space_fixture.h"
#include "store/pg_server.h"

using namespace hut;
using namespace hut::test;

TEST_CASE("space: public HTTP routes") {
  TempDir dir;
  EmbeddedSpace es(test_config(dir));
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  int port = es.port();

  HttpResult page = http_get(port, "/");
  CHECK(page.status == 200);
  CHECK(page.header("content-type").find("text/html") == 0);
  CHECK(page.body.find("<html") != std::string::npos);

  HttpResult sdk = http_get(port, "/sdk/hutopia.js");
  CHECK(sdk.status == 200);
  CHECK(sdk.header("content-type").find("text/javascript") == 0);
  CHECK_FALSE(sdk.body.empty());

  HttpResult health = http_get(port, "/healthz");
  CHECK(health.status == 200);
  CHECK(health.body == R"({"ok":true})");

  HttpResult login = http_get(port, "/login");
  CHECK(login.status == 302);
  CHECK(login.header("location") ==
        "http://127.0.0.1:9/login?space=test-space&return=http%3A%2F%2F127.0.0.1%3A" + std::to_string(port) +
            "%2F");

  HttpResult asset = http_get(port, "/plugins/counter/widget.js");
  CHECK(asset.status == 200);
  CHECK(asset.header("content-type").find("text/javascript") == 0);
  CHECK(http_get(port, "/plugins/counter/nothing.js").status == 404);
  CHECK(http_get(port, "/plugins/nope/widget.js").status == 404);

  const char* attacks[] = {
      "/plugins/counter/../../etc/passwd",
      "/plugins/counter/..%2f..%2fetc%2fpasswd",
      "/plugins/counter/%2e%2e/%2e%2e/etc/passwd",
      "/plugins/counter/%252e%252e/%252e%252e/etc/passwd",
      "/plugins/counter/..\\..\\etc\\passwd",
      "/plugins/counter/%5c..%5c..%5cetc%5cpasswd",
      "/plugins/counter//etc/passwd",
      "/plugins/counter/%2fetc%2fpasswd",
      "/plugins/../plugins/counter/widget.js/../../../etc/passwd",
  };
  for (const char* a : attacks) {
    CAPTURE(a);
    HttpResult r = http_get(port, a);
    CHECK(r.status == 404);
    CHECK(r.body.find("root:") == std::string::npos);
  }
  // libwebsockets refuses a NUL in the path while parsing: the connection is
  // dropped before any route sees it.
  HttpResult nul = http_get(port, "/plugins/counter/widget.js%00.png");
  CHECK(nul.status != 200);
  CHECK(nul.body.empty());

  HttpResult api = http_get(port, "/api/counter/value");
  CHECK(api.status == 200);
  CHECK(api.body == R"({"value":0})");
  CHECK(api.header("x-hutopia-plugin") == "counter");
  CHECK(api.header("x-request-id").size() >= 16);
  HttpResult own_id = http_get(port, "/api/counter/value", {{"X-Request-Id", "req-42"}});
  CHECK(own_id.header("x-request-id") == "req-42");
  HttpResult api405 = http_request(port, "POST", "/api/counter/value", {}, "{}");
  CHECK(api405.status == 405);
  CHECK(api405.header("x-hutopia-plugin") == "counter");
  HttpResult unknown = http_get(port, "/api/nope/x");
  CHECK(unknown.status == 404);
  CHECK_FALSE(unknown.header("x-request-id").empty());
}

TEST_CASE("space: embedded stop gives clients 1001 and lets the loop end") {
  TempDir dir;
  EmbeddedSpace es(test_config(dir));
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  WsClient::Options o;
  o.port = es.port();
  auto c = WsClient::connect(o);
  REQUIRE(c != nullptr);
  REQUIRE(c->hello(app_token("leaver")).data.find("welcome") != std::string::npos);
  std::thread stopper([&] { es.stop(); });
  CHECK(c->wait_close(5000) == 1001);
  stopper.join();
  CHECK(http_get(es.port(), "/healthz", {}).status == 0);
}

TEST_CASE("space: spaced serves, reports its ports and stops cleanly on SIGTERM") {
  TempDir dir;
  SpaceConfig cfg = test_config(dir);
  SpacedProcess p(write_config_file(dir, cfg));
  INFO(p.output());
  REQUIRE(p.ok());
  CHECK(http_get(p.port(), "/healthz").body == R"({"ok":true})");
  CHECK(http_get(p.admin_port(), "/healthz").status == 200);
  WsClient::Options o;
  o.port = p.port();
  o.authorization = "Bearer " + app_token("proc");
  auto c = WsClient::connect(o);
  REQUIRE(c != nullptr);
  CHECK(c->recv().data.find("welcome") != std::string::npos);
  CHECK(c->request(R"({"op":"widget","ref":1,"plugin":"echo","data":[1]})") ==
        R"({"op":"ok","ref":1,"data":[1]})");
  int status = -2;
  std::thread killer([&] { status = p.signal_and_wait(SIGTERM); });
  CHECK(c->wait_close(5000) == 1001);
  killer.join();
  CHECK(status == 0);
}

TEST_CASE("space: a node of a cluster stops on SIGTERM while its Redis is away") {
  PgServer* pg = PgServer::get();
  if (pg == nullptr) {
    MESSAGE("skipped: " << PgServer::why());
    return;
  }
  TempDir dir;
  SpaceConfig cfg = test_config(dir);
  cfg.store.url = pg->new_database();
  cfg.cluster.redis = "redis://127.0.0.1:1";  // nothing listens: the node keeps trying
  cfg.cluster.reconnect_min_ms = 50;
  cfg.cluster.reconnect_max_ms = 200;
  SpacedProcess p(write_config_file(dir, cfg));
  INFO(p.output());
  REQUIRE(p.ok());
  CHECK(http_get(p.port(), "/healthz").status == 200);
  // Its Redis links and heartbeat must not keep a stopped node running.
  CHECK(p.signal_and_wait(SIGTERM, 20000) == 0);
}

TEST_CASE("spaced: SIGINT, --help, --version and bad configurations") {
  TempDir dir;
  SpacedProcess p(write_config_file(dir, test_config(dir)));
  REQUIRE(p.ok());
  CHECK(p.signal_and_wait(SIGINT) == 0);

  std::string bin = build_path("daemons/spaced/spaced");
  RunResult help = run_process({bin, "--help"});
  CHECK(help.status == 0);
  CHECK(help.out.find("--config") != std::string::npos);
  RunResult version = run_process({bin, "--version"});
  CHECK(version.status == 0);
  CHECK(version.out.find("spaced ") == 0);
  CHECK(run_process({bin}).status != 0);

  std::string bad = dir.file("bad.toml");
  write_file(bad, "[space]\nid = \"x\"\nlisten = 8080\n");
  RunResult r = run_process({bin, "--config", bad});
  CHECK(r.status != 0);
  CHECK(r.err.find("bad.toml") != std::string::npos);
  CHECK(r.err.find(":3") != std::string::npos);
  CHECK(r.err.find("space.listen") != std::string::npos);
  CHECK(r.err.find("Sanitizer") == std::string::npos);

  // A port in use: a clear message and a non-zero exit.
  SpaceConfig cfg = test_config(dir);
  SpacedProcess first(write_config_file(dir, cfg));
  REQUIRE(first.ok());
  // Its own data folder: the first one is locked by the running spaced.
  TempDir other;
  cfg = test_config(other);
  cfg.space.listen = "127.0.0.1:" + std::to_string(first.port());
  std::string taken = write_config_file(other, cfg);
  RunResult busy = run_process({bin, "--config", taken});
  CHECK(busy.status != 0);
  CHECK(busy.err.find("cannot listen") != std::string::npos);
  CHECK(busy.err.find("Sanitizer") == std::string::npos);
}

TEST_CASE("space: the embedding example runs by itself") {
  RunResult r = run_process({build_path("examples/embed/embed_example")});
  INFO(r.out << r.err);
  CHECK(r.status == 0);
  CHECK(r.out.find("listening on http://127.0.0.1:") != std::string::npos);
  CHECK(r.out.find(R"(builtin answered: {"greeting":"hello, ada","you_sent":{"n":1}})") != std::string::npos);
  CHECK(r.out.find("minted a token for ada") != std::string::npos);
  // No management API was asked for; the store lies in the data folder.
  CHECK(r.out.find("no management API") != std::string::npos);
  CHECK(r.out.find("/space.db\n") != std::string::npos);
  CHECK(r.out.find("ada posted message 1") != std::string::npos);
  CHECK(r.out.find(R"("text":"hello, room")") < r.out.find(R"("text":"welcome, from the space")"));
  CHECK(r.out.find(R"("from":{"id":"space:embedded","name":"An embedded space"})") != std::string::npos);
  CHECK(r.out.find(R"(members: {"members":[)") != std::string::npos);
  CHECK(r.out.find("space stopped") != std::string::npos);
}

namespace {

// A plugin compiled into the test that answers HTTP and widget requests
// later, from a timer, as a plugin waiting on its own work would.
const hut_host* g_later_host = nullptr;

struct LaterReply {
  uint64_t id;
  bool http;
};

void later_fire(hut_plugin* self, void* arg) {
  auto* r = static_cast<LaterReply*>(arg);
  if (r->http) {
    static const hut_header headers[] = {{"content-type", "text/plain"}, {"x-later", "yes"}};
    g_later_host->http_respond(self, r->id, 202, headers, 2, "later", 5);
  } else {
    g_later_host->reply(self, r->id, "\"later\"", 7);
  }
  delete r;
}

int later_on_http(hut_plugin* self, void*, const hut_http_request* req) {
  return g_later_host->timer_start(self, 50, 0, later_fire, new LaterReply{req->request_id, true}, nullptr);
}

int later_on_widget(hut_plugin* self, void*, const hut_widget_request* req) {
  return g_later_host->timer_start(self, 50, 0, later_fire, new LaterReply{req->request_id, false}, nullptr);
}

int later_init(const hut_host* host, hut_plugin* self, const char*, char*, size_t) {
  g_later_host = host;
  hut_hooks hooks;
  std::memset(&hooks, 0, sizeof hooks);
  hooks.on_http = later_on_http;
  hooks.on_widget = later_on_widget;
  return host->register_hooks(self, &hooks, sizeof hooks);
}

const hut_plugin_descriptor kLater = {HUT_PLUGIN_ABI_MAJOR,
                                      HUT_PLUGIN_ABI_MINOR,
                                      "later",
                                      "1.0.0",
                                      nullptr,
                                      nullptr,
                                      0,
                                      0,
                                      nullptr,
                                      nullptr,
                                      nullptr,
                                      nullptr,
                                      0};

}  // namespace

TEST_CASE("space: a compiled-in plugin answers HTTP and widget requests later") {
  TempDir dir;
  EmbeddedSpace es(test_config(dir));
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  Status st = es.call([&] { return es.space().register_plugin(&kLater, later_init, nullptr); });
  REQUIRE_MESSAGE(st.ok(), st.to_string());

  HttpResult r = http_request(es.port(), "POST", "/api/later/some/path?x=1", {{"X-Request-Id", "abc"}}, "{}");
  CHECK(r.status == 202);
  CHECK(r.body == "later");
  CHECK(r.header("content-type") == "text/plain");
  CHECK(r.header("x-later") == "yes");
  CHECK(r.header("x-hutopia-plugin") == "later");
  CHECK(r.header("x-request-id") == "abc");

  WsClient::Options o;
  o.port = es.port();
  auto c = WsClient::connect(o);
  REQUIRE(c != nullptr);
  REQUIRE(c->hello(app_token("l")).data.find("welcome") != std::string::npos);
  c->send_text(R"({"op":"widget","ref":1,"plugin":"later","data":{}})");
  c->send_text(R"({"op":"ping","ref":2})");
  // The ping overtakes the widget answer that comes from a timer.
  CHECK(c->recv().data == R"({"op":"ok","ref":2})");
  CHECK(c->recv().data == R"({"op":"ok","ref":1,"data":"later"})");
  // A client that leaves before its answer: the answer is dropped, the space goes on.
  HttpResult gone = http_request(es.port(), "GET", "/api/later/x", {}, "", 10);
  CHECK(gone.status == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(http_get(es.port(), "/healthz").status == 200);
}

namespace {

// A compiled-in plugin of ABI 1.5: HTTP answers the query's pairs, one
// "name=value" a line; a widget op is refused with an integer error code.
const hut_host* g_pairs_host = nullptr;

int pairs_on_http(hut_plugin* self, void*, const hut_http_request* req) {
  std::string body;
  for (size_t i = 0; i < req->query_param_count; ++i)
    body += std::string(req->query_params[i].name) + "=" + req->query_params[i].value + "\n";
  return g_pairs_host->http_respond(self, req->request_id, 200, nullptr, 0, body.data(), body.size());
}

int pairs_on_widget(hut_plugin* self, void*, const hut_widget_request* req) {
  return g_pairs_host->reply_error_code(self, req->request_id, HUT_EEXIST, nullptr);
}

int pairs_init(const hut_host* host, hut_plugin* self, const char*, char*, size_t) {
  g_pairs_host = host;
  if (!HUT_HOST_AT_LEAST(host, 5) || !HUT_HOST_HAS(host, reply_error_code)) return HUT_ENOTSUP;
  hut_hooks hooks;
  std::memset(&hooks, 0, sizeof hooks);
  hooks.on_http = pairs_on_http;
  hooks.on_widget = pairs_on_widget;
  return host->register_hooks(self, &hooks, sizeof hooks);
}

hut_plugin_descriptor pairs_descriptor() {
  hut_plugin_descriptor d;
  std::memset(&d, 0, sizeof d);
  d.abi_major = HUT_PLUGIN_ABI_MAJOR;
  d.abi_minor = HUT_PLUGIN_ABI_MINOR;
  d.name = "pairs";
  d.version = "1";
  return d;
}
const hut_plugin_descriptor kPairs = pairs_descriptor();

}  // namespace

TEST_CASE("space: ABI 1.5 over the wire: the query as decoded pairs, integer error codes") {
  TempDir dir;
  EmbeddedSpace es(test_config(dir));
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  Status st = es.call([&] { return es.space().register_plugin(&kPairs, pairs_init, nullptr); });
  REQUIRE_MESSAGE(st.ok(), st.to_string());

  // An encoded "&" and "=" stay inside their name or value; "%20" is a space.
  HttpResult r = http_get(es.port(), "/api/pairs/x?a%26b=c%3Dd&e=&flag&sp=one%20two");
  CHECK(r.status == 200);
  CHECK(r.body == "a&b=c=d\ne=\nflag=\nsp=one two\n");
  CHECK(http_get(es.port(), "/api/pairs/x").body == "");

  WsClient::Options o;
  o.port = es.port();
  auto c = WsClient::connect(o);
  REQUIRE(c != nullptr);
  REQUIRE(c->hello(app_token("p")).data.find("welcome") != std::string::npos);
  c->send_text(R"({"op":"widget","ref":1,"plugin":"pairs","data":{}})");
  CHECK(c->recv().data == R"({"op":"error","ref":1,"code":"conflict","message":"already exists"})");
}

TEST_CASE("space: a failed start, or a space destroyed without stop, leaves the loop clean") {
  TempDir dir;
  EmbeddedSpace first(test_config(dir));
  REQUIRE_MESSAGE(first.ok(), first.start_status().to_string());

  SpaceConfig busy = test_config(dir);
  busy.space.listen = "127.0.0.1:" + std::to_string(first.port());
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    auto s = Space::create(busy, &loop);
    REQUIRE(s.ok());
    Status st = (*s)->start();
    CHECK_FALSE(st.ok());
    CHECK(st.message().find("cannot listen") != std::string_view::npos);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);

  // Started, a client connected, then destroyed without stop(): the space
  // lets go of the loop once the loop ran a few more turns.
  uv_loop_init(&loop);
  {
    auto s = Space::create(test_config(dir), &loop);
    REQUIRE(s.ok());
    REQUIRE((*s)->start().ok());
    int port = (*s)->public_port();
    std::thread loop_thread([&] {
      for (int i = 0; i < 200; ++i)
        uv_run(&loop, UV_RUN_NOWAIT), std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    WsClient::Options o;
    o.port = port;
    auto c = WsClient::connect(o);
    CHECK(c != nullptr);
    loop_thread.join();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}
