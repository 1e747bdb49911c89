// The management API (contract section 4) on a real admin listener.
#include <doctest/doctest.h>

#include <filesystem>

#include <hutopia/plugin.h>

#include "bus/ws_client.h"
#include "net/http_client.h"
#include "space/space_fixture.h"

using namespace hut;
using namespace hut::test;

namespace {
const std::vector<std::pair<std::string, std::string>> kAuth = {
    {"Authorization", std::string("Bearer ") + kAdminToken}};
}

TEST_CASE("admin: authentication") {
  TempDir dir;
  EmbeddedSpace es(test_config(dir));
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  int port = es.admin_port();
  HttpResult h = http_get(port, "/healthz");
  CHECK(h.status == 200);
  CHECK(h.body == R"({"ok":true})");
  for (const char* path : {"/api/v1/plugins", "/metrics"}) {
    CAPTURE(path);
    HttpResult none = http_get(port, path);
    CHECK(none.status == 401);
    CHECK(none.body.find(R"({"error":{"code":"unauthenticated","message":)") == 0);
    CHECK(http_get(port, path, {{"Authorization", "Bearer wrong"}}).status == 401);
    CHECK(http_get(port, path, {{"Authorization", std::string("Bearer ") + kAdminToken + "x"}}).status ==
          401);
    CHECK(http_get(port, path, {{"Authorization", kAdminToken}}).status == 401);
    CHECK(http_get(port, path, kAuth).status == 200);
  }
  CHECK(http_get(port, "/api/v1/nothing", kAuth).status == 404);
}

TEST_CASE("admin: without a configured admin token only healthz answers") {
  TempDir dir;
  SpaceConfig cfg = test_config(dir);
  cfg.admin.token.clear();
  EmbeddedSpace es(cfg);
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  CHECK(http_get(es.admin_port(), "/healthz").status == 200);
  CHECK(http_get(es.admin_port(), "/api/v1/plugins", {{"Authorization", "Bearer "}}).status == 401);
  CHECK(http_get(es.admin_port(), "/metrics", kAuth).status == 401);
}

TEST_CASE("admin: plugins") {
  TempDir dir;
  TempDir plugins;
  std::filesystem::copy_file(build_path("plugins/echo.so"), plugins.file("echo.so"));
  std::filesystem::copy_file(build_path("plugins/counter.so"), plugins.file("counter.so"));
  write_file(plugins.file("broken.so"), "not a library");
  SpaceConfig cfg = test_config(dir);
  cfg.space.plugins_dir = plugins.path();
  EmbeddedSpace es(cfg);
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  int port = es.admin_port();

  HttpResult list = http_get(port, "/api/v1/plugins", kAuth);
  CHECK(list.status == 200);
  // The echo plugin is built against this tree's header.
  const std::string abi = std::to_string(HUT_PLUGIN_ABI_MAJOR) + "." + std::to_string(HUT_PLUGIN_ABI_MINOR);
  CHECK(list.body.find(R"({"name":"echo","version":"1.0.0","abi":")" + abi +
                       R"(","requires":[],"widgets":[],"state":"loaded"})") != std::string::npos);
  CHECK(list.body.find(R"("name":"counter")") != std::string::npos);

  CHECK(http_request(port, "POST", "/api/v1/plugins", kAuth, R"({"name":"echo"})").status == 409);
  HttpResult broken = http_request(port, "POST", "/api/v1/plugins", kAuth, R"({"name":"broken"})");
  CHECK(broken.status == 422);
  CHECK(broken.body.find(R"("message":)") != std::string::npos);
  CHECK(http_request(port, "POST", "/api/v1/plugins", kAuth, R"({"name":"missing"})").status == 422);
  CHECK(http_request(port, "POST", "/api/v1/plugins", kAuth, R"({"name":"../echo"})").status == 400);
  CHECK(http_request(port, "POST", "/api/v1/plugins", kAuth, "{name:").status == 400);
  CHECK(http_request(port, "POST", "/api/v1/plugins", kAuth, R"({"name":5})").status == 400);

  CHECK(http_request(port, "DELETE", "/api/v1/plugins/echo", kAuth).status == 204);
  CHECK(http_request(port, "DELETE", "/api/v1/plugins/echo", kAuth).status == 404);
  // Unloaded: the bus says not_found.
  WsClient::Options o;
  o.port = es.port();
  o.authorization = "Bearer " + app_token("p");
  auto c = WsClient::connect(o);
  REQUIRE(c != nullptr);
  REQUIRE(c->recv().data.find("welcome") != std::string::npos);
  CHECK(c->request(R"({"op":"widget","ref":1,"plugin":"echo","data":1})").find("not_found") !=
        std::string::npos);

  HttpResult loaded = http_request(port, "POST", "/api/v1/plugins", kAuth, R"({"name":"echo"})");
  CHECK(loaded.status == 201);
  CHECK(loaded.body.find(R"("name":"echo")") != std::string::npos);
  CHECK(c->request(R"({"op":"widget","ref":2,"plugin":"echo","data":2})") ==
        R"({"op":"ok","ref":2,"data":2})");

  HttpResult reloaded = http_request(port, "POST", "/api/v1/plugins/counter/reload", kAuth);
  CHECK(reloaded.status == 200);
  CHECK(reloaded.body.find(R"("state":"loaded")") != std::string::npos);
  CHECK(http_request(port, "POST", "/api/v1/plugins/nope/reload", kAuth).status == 404);
  // The connection survived all of it.
  CHECK(c->request(R"({"op":"ping","ref":3})") == R"({"op":"ok","ref":3})");
}

TEST_CASE("admin: app tokens") {
  TempDir dir;
  EmbeddedSpace es(test_config(dir));
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  int port = es.admin_port();
  HttpResult t =
      http_request(port, "POST", "/api/v1/tokens", kAuth, R"({"user":"u7","name":"Ursula","ttl":60})");
  REQUIRE(t.status == 200);
  size_t at = t.body.find(R"("token":")");
  REQUIRE(at != std::string::npos);
  std::string token = t.body.substr(at + 9, t.body.find('"', at + 9) - at - 9);
  CHECK(t.body.find(R"("expires_at":)") != std::string::npos);
  long long expires = std::stoll(t.body.substr(t.body.find(R"("expires_at":)") + 13));
  long long now_ms = static_cast<long long>(std::time(nullptr)) * 1000;
  CHECK(expires > now_ms + 50000);
  CHECK(expires <= now_ms + 61000);

  WsClient::Options o;
  o.port = es.port();
  auto c = WsClient::connect(o);
  REQUIRE(c != nullptr);
  WsEvent w = c->hello(token);
  CHECK(w.data.find(R"("user":{"id":"u7","name":"Ursula"})") != std::string::npos);

  CHECK(http_request(port, "POST", "/api/v1/tokens", kAuth, R"({"name":"x"})").status == 400);
  CHECK(http_request(port, "POST", "/api/v1/tokens", kAuth, R"({"user":"u","ttl":"long"})").status == 400);
  CHECK(http_request(port, "POST", "/api/v1/tokens", kAuth, R"({"user":"u","ttl":100000})").status == 400);
  HttpResult bad = http_request(port, "POST", "/api/v1/tokens", kAuth, "not json");
  CHECK(bad.status == 400);
  CHECK(bad.body.find("JSON") != std::string::npos);
  CHECK(http_get(port, "/api/v1/tokens", kAuth).status == 405);
}

TEST_CASE("admin: tokens without an app secret, and metrics") {
  TempDir dir;
  SpaceConfig cfg = test_config(dir);
  cfg.auth.app_secret.clear();
  EmbeddedSpace es(cfg);
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  HttpResult t = http_request(es.admin_port(), "POST", "/api/v1/tokens", kAuth, R"({"user":"u"})");
  CHECK(t.status == 404);
  CHECK(t.body.find("app_secret") != std::string::npos);

  WsClient::Options o;
  o.port = es.port();
  auto c = WsClient::connect(o);
  REQUIRE(c != nullptr);
  c->hello(app_token("u"));
  CHECK(c->wait_close() == 4001);

  HttpResult m = http_get(es.admin_port(), "/metrics", kAuth);
  CHECK(m.status == 200);
  CHECK(m.header("content-type").find("text/plain") == 0);
  CHECK(m.body.find("# TYPE hutopia_connections_total counter\nhutopia_connections_total 1\n") !=
        std::string::npos);
  CHECK(m.body.find("hutopia_auth_failures_total 1\n") != std::string::npos);
  CHECK(m.body.find("hutopia_frames_in_total 1\n") != std::string::npos);
  CHECK(m.body.find(R"(hutopia_plugin_calls_total{plugin="echo"})") != std::string::npos);
}
