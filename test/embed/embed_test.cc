// The embedding API of hut::Space against a real space on loopback: built-in
// plugins a plugin file requires, configurations built in code, the store
// path and the admin listener a program may leave out, widget events for a
// room, and the rooms calls in-process next to real bus clients.
#include <doctest/doctest.h>

#include <hutopia/plugin.h>

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <sstream>

#include "bus/ws_client.h"
#include "net/http_client.h"
#include "space/space_fixture.h"

using namespace hut;
using namespace hut::test;

namespace {

constexpr auto kWait = std::chrono::seconds(20);

// ---- A plugin compiled into the test program ----

const hut_host* g_host = nullptr;
int g_builtin_inits = 0;

int builtin_on_widget(hut_plugin* self, void*, const hut_widget_request* req) {
  static const char answer[] = R"({"builtin":true})";
  return g_host->reply(self, req->request_id, answer, sizeof answer - 1);
}

int builtin_init(const hut_host* host, hut_plugin* self, const char*, char* err, size_t errlen) {
  g_host = host;
  ++g_builtin_inits;
  hut_hooks hooks;
  std::memset(&hooks, 0, sizeof hooks);
  hooks.on_widget = builtin_on_widget;
  int rc = host->register_hooks(self, &hooks, sizeof hooks);
  if (rc != HUT_OK) std::snprintf(err, errlen, "register_hooks failed");
  return rc;
}

hut_plugin_descriptor builtin_descriptor() {
  hut_plugin_descriptor d;
  std::memset(&d, 0, sizeof d);
  d.abi_major = HUT_PLUGIN_ABI_MAJOR;
  d.abi_minor = HUT_PLUGIN_ABI_MINOR;
  d.name = "host_builtin";
  d.version = "1.0.0";
  return d;
}
const hut_plugin_descriptor kBuiltin = builtin_descriptor();

// A plugins folder holding only the test plugin that requires host_builtin.
std::string plugins_with_needs_builtin(const TempDir& dir) {
  std::string folder = dir.file("plugins");
  std::filesystem::create_directories(folder);
  std::filesystem::copy_file(build_path("test/embed/needs_builtin.so"), folder + "/needs_builtin.so");
  return folder;
}

std::unique_ptr<WsClient> welcomed(int port, const std::string& user, std::string* welcome = nullptr) {
  WsClient::Options o;
  o.port = port;
  std::string err;
  auto c = WsClient::connect(o, &err, 10000);
  INFO(err);
  REQUIRE(c != nullptr);
  WsEvent w = c->hello(app_token(user), 10000);
  REQUIRE(w.kind == WsEvent::kText);
  REQUIRE(w.data.find(R"("op":"welcome")") != std::string::npos);
  if (welcome != nullptr) *welcome = w.data;
  return c;
}

// The next text message that contains `needle`, skipping others; empty when
// none came within the wait.
std::string recv_containing(WsClient& c, const std::string& needle) {
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < deadline) {
    WsEvent e = c.recv(1000);
    if (e.kind == WsEvent::kClosed) return {};
    if (e.kind == WsEvent::kText && e.data.find(needle) != std::string::npos) return e.data;
  }
  return {};
}

// Runs an asynchronous call of the space on its loop and waits for its answer.
template <typename T, typename Start>
T await(EmbeddedSpace& es, Start start) {
  auto promise = std::make_shared<std::promise<T>>();
  auto future = promise->get_future();
  REQUIRE(es.space().post([&es, promise, start] { start(es.space(), promise); }));
  REQUIRE(future.wait_for(kWait) == std::future_status::ready);
  return future.get();
}

struct Posted {
  Status status;
  uint64_t seq = 0;
};

Posted post(EmbeddedSpace& es, const std::string& room, const std::string& user, const std::string& text) {
  return await<Posted>(es, [room, user, text](Space& s, std::shared_ptr<std::promise<Posted>> p) {
    s.post_to_room(room, user, "", text, "", [p](Status st, uint64_t seq, int64_t) {
      p->set_value(Posted{st, seq});
    });
  });
}

Status create_room(EmbeddedSpace& es, const std::string& room, const std::string& master,
                   const std::vector<std::string>& members, bool is_private = false) {
  return await<Status>(es, [=](Space& s, std::shared_ptr<std::promise<Status>> p) {
    s.create_room(room, "a topic", is_private, master, members, [p](Status st) { p->set_value(st); });
  });
}

std::pair<Status, std::string> history(EmbeddedSpace& es, const std::string& room, int limit = 50) {
  using R = std::pair<Status, std::string>;
  return await<R>(es, [room, limit](Space& s, std::shared_ptr<std::promise<R>> p) {
    s.room_history(room, 0, limit, [p](Status st, std::string page) { p->set_value(R{st, page}); });
  });
}

// The TCP ports this process listens on, from /proc: the sockets among its
// open files whose state is LISTEN.
std::set<int> listening_ports() {
  std::set<std::string> inodes;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      char target[256];
      std::string link = std::string("/proc/self/fd/") + e->d_name;
      ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      std::string t(target, static_cast<size_t>(n));
      if (t.rfind("socket:[", 0) == 0) inodes.insert(t.substr(8, t.size() - 9));
    }
    closedir(d);
  }
  std::set<int> ports;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retr, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
      if (state != "0A" || inodes.count(inode) == 0) continue;
      ports.insert(std::stoi(local.substr(local.rfind(':') + 1), nullptr, 16));
    }
  }
  return ports;
}

}  // namespace

TEST_CASE("embed: a plugin file that requires a built-in plugin loads after it") {
  TempDir dir;
  SpaceConfig cfg = test_config(dir);
  cfg.space.plugins_dir = plugins_with_needs_builtin(dir);
  int inits_before = g_builtin_inits;
  EmbeddedSpace es(cfg, [](Space& s) {
    REQUIRE(s.register_plugin(&kBuiltin, builtin_init).ok());
    // One name, one plugin.
    CHECK(s.register_plugin(&kBuiltin, builtin_init).code() == Status::Code::kAlreadyExists);
  });
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  CHECK(g_builtin_inits == inits_before + 1);

  // Both are loaded: the management API lists them, and a bus client gets the
  // widget of the plugin file and an answer from the built-in one.
  HttpResult list =
      http_get(es.admin_port(), "/api/v1/plugins", {{"Authorization", std::string("Bearer ") + kAdminToken}});
  REQUIRE(list.status == 200);
  CHECK(list.body.find(R"("name":"host_builtin")") != std::string::npos);
  CHECK(list.body.find(R"("name":"needs_builtin")") != std::string::npos);
  CHECK(list.body.find(R"("error")") == std::string::npos);
  std::string welcome;
  auto c = welcomed(es.port(), "ada", &welcome);
  CHECK(welcome.find(R"("plugin":"needs_builtin","tag":"x-needs_builtin")") != std::string::npos);
  std::string answer = c->request(R"({"op":"widget","ref":1,"plugin":"host_builtin","data":{}})", 10000);
  CHECK(answer.find(R"("builtin":true)") != std::string::npos);

  // The built-in plugin cannot go while the plugin file requires it.
  Status unload = es.call([&] { return es.space().unload_plugin("host_builtin"); });
  CHECK(unload.code() == Status::Code::kFailedPrecondition);
}

TEST_CASE("embed: without the built-in plugin the plugin file that requires it does not load") {
  TempDir dir;
  SpaceConfig cfg = test_config(dir);
  cfg.space.plugins_dir = plugins_with_needs_builtin(dir);
  EmbeddedSpace es(cfg);
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  HttpResult list =
      http_get(es.admin_port(), "/api/v1/plugins", {{"Authorization", std::string("Bearer ") + kAdminToken}});
  REQUIRE(list.status == 200);
  CHECK(list.body.find("requires host_builtin") != std::string::npos);
  std::string welcome;
  auto c = welcomed(es.port(), "ada", &welcome);
  CHECK(welcome.find("x-needs_builtin") == std::string::npos);
}

TEST_CASE("embed: a configuration built in code is refused with the file's message") {
  struct Case {
    const char* toml;
    std::function<void(SpaceConfig&)> set;
  };
  const Case cases[] = {
      {"[space]\nlisten = \"127.0.0.1:99999\"\n", [](SpaceConfig& c) { c.space.listen = "127.0.0.1:99999"; }},
      {"[space]\nid = \"no spaces\"\n", [](SpaceConfig& c) { c.space.id = "no spaces"; }},
      {"[auth]\nleeway = 31\n", [](SpaceConfig& c) { c.auth.leeway = 31; }},
      {"[admin]\ntoken = \"change-me\"\n", [](SpaceConfig& c) { c.admin.token = "change-me"; }},
      {"[store]\nurl = \"mysql://x\"\n", [](SpaceConfig& c) { c.store.url = "mysql://x"; }},
      {"[auth]\napp_token_ttl = 600\n", [](SpaceConfig& c) { c.auth.app_token_ttl = 600; }},
      {"[admin]\nlisten = \"localhost\"\n", [](SpaceConfig& c) { c.admin.listen = "localhost"; }},
  };
  for (const Case& k : cases) {
    Result<SpaceConfig> from_file = parse_space_config(k.toml, "spaced.toml", {});
    REQUIRE(!from_file.ok());
    SpaceConfig in_code;
    k.set(in_code);
    Status checked = validate_space_config(in_code);
    Result<std::unique_ptr<Space>> created = Space::create(in_code);
    INFO(k.toml);
    REQUIRE(!checked.ok());
    REQUIRE(!created.ok());
    CHECK(checked.code() == Status::Code::kInvalidArgument);
    // The same words; the file's message adds where the value was.
    std::string file_msg(from_file.status().message());
    std::string code_msg(checked.message());
    CHECK(file_msg == "spaced.toml:2: " + code_msg);
    CHECK(std::string(created.status().message()) == code_msg);
  }
  // The defaults of a configuration built in code pass.
  CHECK(validate_space_config(SpaceConfig{}).ok());
  CHECK(validate_relay_config(RelayConfig{}).ok());
  RelayConfig relay;
  relay.limits.hash_workers = 0;
  CHECK(std::string(validate_relay_config(relay).message()) ==
        "limits.hash_workers: must be between 1 and 64");
}

TEST_CASE("embed: the store is <data_dir>/space.db unless given, and keeps the rooms") {
  TempDir dir;
  SpaceConfig cfg = test_config(dir);
  cfg.store.url.clear();
  cfg.space.data_dir = dir.file("data");
  {
    EmbeddedSpace es(cfg);
    REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
    CHECK(es.space().config().store.url == "sqlite://" + dir.file("data") + "/space.db");
    REQUIRE(create_room(es, "kept", "", {"ada"}).ok());
    REQUIRE(post(es, "kept", "ada", "still here after a restart").status.ok());
  }
  CHECK(std::filesystem::file_size(dir.file("data/space.db")) > 0);
  // A second space on the same folder reads the same store.
  EmbeddedSpace again(cfg);
  REQUIRE_MESSAGE(again.ok(), again.start_status().to_string());
  auto [st, page] = history(again, "kept");
  REQUIRE(st.ok());
  CHECK(page.find("still here after a restart") != std::string::npos);
  // A file's empty store url derives the same way.
  Result<SpaceConfig> file = parse_space_config("[space]\ndata_dir = \"/srv/hut/\"\n", "spaced.toml", {});
  REQUIRE(file.ok());
  CHECK(file->store.url == "sqlite:///srv/hut/space.db");
}

TEST_CASE("embed: no admin listener unless one is configured") {
  TempDir dir;
  SpaceConfig cfg = test_config(dir);
  cfg.admin = {};  // as a program that never mentions it
  {
    EmbeddedSpace es(cfg);
    REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
    CHECK(es.space().admin_port() == 0);
    CHECK(es.space().admin_url().empty());
    // The process listens on the public port and nothing else.
    CHECK(listening_ports() == std::set<int>{es.port()});
    // The management API is not reachable on the public listener either.
    CHECK(http_get(es.port(), "/api/v1/plugins").status == 404);
    CHECK(http_get(es.port(), "/healthz").status == 200);
  }
  cfg.admin.listen = "127.0.0.1:0";
  EmbeddedSpace with_admin(cfg);
  REQUIRE_MESSAGE(with_admin.ok(), with_admin.start_status().to_string());
  REQUIRE(with_admin.admin_port() > 0);
  CHECK(listening_ports() == std::set<int>{with_admin.port(), with_admin.admin_port()});
  CHECK(http_get(with_admin.admin_port(), "/healthz").status == 200);
  // A file without [admin] listen keeps spaced's management API.
  Result<SpaceConfig> file = parse_space_config("", "spaced.toml", {});
  REQUIRE(file.ok());
  CHECK(file->admin.listen == "127.0.0.1:7999");
}

TEST_CASE("embed: a widget event for a room reaches its members' sessions only") {
  TempDir dir;
  EmbeddedSpace es(test_config(dir));
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  REQUIRE(create_room(es, "crew", "ada", {"bob"}).ok());
  auto ada = welcomed(es.port(), "ada");
  auto bob = welcomed(es.port(), "bob");
  auto bob2 = welcomed(es.port(), "bob");
  auto eve = welcomed(es.port(), "eve");

  Result<size_t> sent = es.call(
      [&] { return es.space().send_widget_event("greeter", Audience::kRoom, "crew", R"({"to":"crew"})"); });
  REQUIRE(sent.ok());
  CHECK(*sent == 3);
  const std::string event = R"({"op":"widget","plugin":"greeter","data":{"to":"crew"}})";
  CHECK(recv_containing(*ada, R"("to":"crew")") == event);
  CHECK(recv_containing(*bob, R"("to":"crew")") == event);
  CHECK(recv_containing(*bob2, R"("to":"crew")") == event);
  // Eve is in no room: her next message is the answer to her own ping.
  CHECK(eve->request(R"({"op":"ping","ref":9})", 10000) == R"({"op":"ok","ref":9})");

  // An unknown room reaches nobody.
  Result<size_t> none =
      es.call([&] { return es.space().send_widget_event("greeter", Audience::kRoom, "no-such-room", "{}"); });
  REQUIRE(none.ok());
  CHECK(*none == 0);
}

TEST_CASE("embed: an in-process post reaches a bus client and the history") {
  TempDir dir;
  EmbeddedSpace es(test_config(dir));
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  REQUIRE(create_room(es, "lobby", "ada", {"bob"}).ok());
  CHECK(create_room(es, "lobby", "", {}).code() == Status::Code::kAlreadyExists);
  CHECK(create_room(es, "bad/id", "", {}).code() == Status::Code::kInvalidArgument);
  auto ada = welcomed(es.port(), "ada");

  Posted by_bob = post(es, "lobby", "bob", "hello from the program");
  REQUIRE_MESSAGE(by_bob.status.ok(), by_bob.status.to_string());
  std::string ev = recv_containing(*ada, "hello from the program");
  CHECK(ev.find(R"("op":"message","room":"lobby","seq":)" + std::to_string(by_bob.seq) + ",") !=
        std::string::npos);
  CHECK(ev.find(R"("from":{"id":"bob")") != std::string::npos);

  Posted by_space = post(es, "lobby", "", "a word from the space");
  REQUIRE(by_space.status.ok());
  CHECK(by_space.seq == by_bob.seq + 1);
  ev = recv_containing(*ada, "a word from the space");
  CHECK(ev.find(R"("from":{"id":"space:test-space","name":"Test space"})") != std::string::npos);

  // The history in-process and over the bus hold both.
  auto [st, page] = history(es, "lobby");
  REQUIRE(st.ok());
  CHECK(page.find("hello from the program") < page.find("a word from the space"));
  CHECK(page.find(R"("more":false)") != std::string::npos);
  auto [st1, one] = history(es, "lobby", 1);
  REQUIRE(st1.ok());
  CHECK(one.find("hello from the program") == std::string::npos);
  CHECK(one.find(R"("more":true)") != std::string::npos);
  std::string bus_history = ada->request(R"({"op":"history","ref":2,"room":"lobby"})", 10000);
  CHECK(bus_history.find("hello from the program") != std::string::npos);
  CHECK(bus_history.find("a word from the space") != std::string::npos);

  // Members, in pages.
  Result<std::string> members = es.call([&] { return es.space().room_members("lobby", "", 1); });
  REQUIRE(members.ok());
  CHECK(members->find(R"("id":"ada")") != std::string::npos);  // online first
  CHECK(members->find(R"("more":true)") != std::string::npos);
  Result<std::string> rest = es.call([&] { return es.space().room_members("lobby", "ada", 10); });
  REQUIRE(rest.ok());
  CHECK(rest->find(R"("id":"bob")") != std::string::npos);
  CHECK(rest->find(R"("more":false)") != std::string::npos);

  // Refusals name the bus's error code.
  Posted nowhere = post(es, "nowhere", "bob", "x");
  CHECK(nowhere.status.code() == Status::Code::kNotFound);
  CHECK(std::string(nowhere.status.message()).rfind("not_found: ", 0) == 0);
  auto [st2, none] = history(es, "nowhere");
  CHECK(st2.code() == Status::Code::kNotFound);
  CHECK(!es.call([&] { return es.space().room_members("nowhere"); }).ok());
}

TEST_CASE("embed: a muted user's in-process post is refused as on the bus") {
  TempDir dir;
  EmbeddedSpace es(test_config(dir));
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  REQUIRE(create_room(es, "quiet", "ada", {"bob"}).ok());
  auto ada = welcomed(es.port(), "ada");
  auto bob = welcomed(es.port(), "bob");
  REQUIRE(ada->send_text(R"({"op":"mute","ref":1,"room":"quiet","user":"bob"})"));
  std::string muted = recv_containing(*ada, R"("ref":1)");
  INFO(muted);
  REQUIRE(muted.find(R"("op":"ok")") != std::string::npos);

  // On the bus...
  REQUIRE(bob->send_text(R"({"op":"post","ref":2,"room":"quiet","text":"let me talk"})"));
  std::string refused = recv_containing(*bob, R"("ref":2)");
  CHECK(refused.find(R"("code":"muted")") != std::string::npos);
  // ... and in-process, the same refusal.
  Posted in_process = post(es, "quiet", "bob", "let me talk in-process");
  CHECK(in_process.status.code() == Status::Code::kPermissionDenied);
  CHECK(std::string(in_process.status.message()) == "muted: bob is muted in this room");
  auto [st, page] = history(es, "quiet");
  REQUIRE(st.ok());
  CHECK(page.find("let me talk") == std::string::npos);
  // Ada is not muted.
  CHECK(post(es, "quiet", "ada", "ada may talk").status.ok());
}

TEST_CASE("embed: reload checks a configuration built in code as create does") {
  TempDir dir;
  SpaceConfig cfg = test_config(dir);
  cfg.store.url.clear();
  EmbeddedSpace es(cfg);
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  SpaceConfig bad = cfg;
  bad.limits.post_rate = 0;
  Result<Space::ReloadReport> refused = es.call([&] { return es.space().reload(bad); });
  REQUIRE(!refused.ok());
  CHECK(std::string(refused.status().message()) == "limits.post_rate: must be between 1 and 1000000000");
  // The same configuration again changes nothing, its derived store url included.
  SpaceConfig same = cfg;
  same.limits.post_rate = 7;
  Result<Space::ReloadReport> applied = es.call([&] { return es.space().reload(same); });
  REQUIRE(applied.ok());
  CHECK(applied->needs_restart.empty());
  CHECK(applied->applied == std::vector<std::string>{"limits.post_rate"});
}
