// The plugin runtime, driven with real plugin libraries built by meson on a
// real libuv loop.
#include <cJSON.h>
#include <doctest/doctest.h>

#include <cstring>
#include <thread>

#include "plugin_fixture.h"

using hut::check_plugin_abi;
using hut::EventTarget;
using hut::PluginHttpRequest;
using hut::PluginRuntime;
using hut::Status;
using hut::test::PluginFixture;
using hut::test::Recorder;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("plugins: refused plugins are named with their reasons and the others load in dependency order") {
  PluginFixture f;
  for (const char* name : {"bad_major", "newer_minor", "needs_missing", "cycle_a", "cycle_b", "on_cycle",
                           "init_fails", "after_fail", "zz_base", "aa_user"})
    f.add(name);
  f.add_first_party("echo");
  f.add_file(hut::test::build_path("plugins/echo.so"), "renamed");
  hut::test::write_file(f.plugins_dir() + "/junk.so", "not a shared library");
  PluginRuntime& rt = f.start();
  rt.load_all();

  CHECK(f.info("bad_major").state == "failed");
  CHECK(
      contains(f.info("bad_major").error, "built for plugin ABI 2." + std::to_string(HUT_PLUGIN_ABI_MINOR)));
  CHECK(f.info("newer_minor").state == "failed");
  CHECK(contains(f.info("newer_minor").error,
                 "built for plugin ABI 1." + std::to_string(HUT_PLUGIN_ABI_MINOR + 1)));
  CHECK(f.info("needs_missing").error == "requires not_there, which is missing");
  CHECK(f.info("cycle_a").error == "in a dependency cycle: cycle_a -> cycle_b -> cycle_a");
  CHECK(f.info("cycle_b").error == "in a dependency cycle: cycle_b -> cycle_a -> cycle_b");
  CHECK(f.info("on_cycle").error == "requires cycle_a, which is in a dependency cycle");
  CHECK(f.info("init_fails").state == "failed");
  CHECK(f.info("init_fails").error == "init failed (invalid argument): the answer is not 42");
  CHECK(f.info("after_fail").error == "requires init_fails, which failed to load");
  CHECK(contains(f.info("renamed").error, "names it \"echo\", not \"renamed\""));
  CHECK(contains(f.info("junk").error, "cannot open"));

  // One failure stops nobody else.
  for (const char* name : {"zz_base", "aa_user", "echo"}) {
    CAPTURE(name);
    CHECK(rt.is_loaded(name));
    CHECK(f.info(name).state == "loaded");
    CHECK(f.info(name).error.empty());
  }
  CHECK(!rt.is_loaded("bad_major"));
  CHECK(f.info("aa_user").requires_ == std::vector<std::string>{"zz_base"});
  CHECK(f.info("aa_user").abi == "1." + std::to_string(HUT_PLUGIN_ABI_MINOR));

  // zz_base starts before aa_user, which requires it, although its name sorts after.
  REQUIRE(f.services.events.size() == 2);
  CHECK(f.services.events[0].data == R"({"init":"zz_base"})");
  CHECK(f.services.events[0].target == EventTarget::kEveryone);
  CHECK(f.services.events[1].data == R"({"init":"aa_user"})");
  auto widgets = rt.widgets();
  REQUIRE(widgets.size() == 2);
  CHECK(widgets[0].tag == "x-zz_base");
  CHECK(widgets[0].script == "/plugins/zz_base/widget.js");
  CHECK(widgets[1].tag == "x-aa_user");

  // Shutdown ends them in reverse order.
  rt.shutdown();
  REQUIRE(f.services.events.size() == 4);
  CHECK(f.services.events[2].data == R"({"fini":"aa_user"})");
  CHECK(f.services.events[3].data == R"({"fini":"zz_base"})");
  CHECK(!rt.is_loaded("echo"));
}

TEST_CASE("plugins: the TOML configuration reaches init as JSON") {
  PluginFixture f;
  f.add("config_probe");
  f.add("init_fails");
  f.write_config("config_probe", R"(
name = "probe"
count = 3
ratio = 0.5
on = true
big = 9007199254740993
tags = ["a", "b"]
day = 2026-11-23
[db]
url_env = "PROBE_DB_URL"
)");
  f.write_config("init_fails", "answer = 42\n");
  PluginRuntime& rt = f.start();
  rt.load_all();
  CHECK(rt.is_loaded("init_fails"));  // its init saw {"answer":42}
  REQUIRE(rt.is_loaded("config_probe"));
  auto* r = f.answer(f.widget("config_probe", "null"));
  REQUIRE(r != nullptr);
  REQUIRE(r->ok);
  cJSON* json = cJSON_Parse(r->data.c_str());
  REQUIRE(json != nullptr);
  CHECK(std::string(cJSON_GetStringValue(cJSON_GetObjectItem(json, "name"))) == "probe");
  CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(json, "count")) == 3);
  CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(json, "ratio")) == 0.5);
  CHECK(cJSON_IsTrue(cJSON_GetObjectItem(json, "on")));
  CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(json, "tags")) == 2);
  CHECK(std::string(cJSON_GetStringValue(cJSON_GetObjectItem(json, "day"))) == "2026-11-23");
  CHECK(std::string(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(json, "db"), "url_env"))) ==
        "PROBE_DB_URL");
  cJSON_Delete(json);
  // An integer a double cannot hold goes through exactly.
  CHECK(contains(r->data, "\"big\":9007199254740993"));
}

TEST_CASE("plugins: a configuration that is not TOML fails the plugin, naming the file and line") {
  PluginFixture f;
  f.add("config_probe");
  f.write_config("config_probe", "ok = 1\nbroken = = 2\n");
  PluginRuntime& rt = f.start();
  Status st = rt.load("config_probe");
  CHECK(st.code() == Status::Code::kFailedPrecondition);
  CHECK(f.info("config_probe").state == "failed");
  CHECK(contains(f.info("config_probe").error, "config_probe.toml:2:"));
}

TEST_CASE("plugins: assets are found by exact path with their content types, and nothing else is") {
  PluginFixture f;
  f.add("assets");
  PluginRuntime& rt = f.start();
  REQUIRE(rt.load("assets").ok());

  const hut::PluginAsset* js = rt.find_asset("assets", "widget.js");
  REQUIRE(js != nullptr);
  CHECK(js->content_type == "text/javascript; charset=utf-8");
  CHECK(js->data == hut::test::read_file(hut::test::source_path("test/plugins/assets_dist/widget.js")));
  const hut::PluginAsset* css = rt.find_asset("assets", "style.css");
  REQUIRE(css != nullptr);
  CHECK(css->content_type == "text/css; charset=utf-8");
  const hut::PluginAsset* svg = rt.find_asset("assets", "img/logo.svg");
  REQUIRE(svg != nullptr);
  CHECK(svg->content_type == "image/svg+xml");
  CHECK(svg->data == hut::test::read_file(hut::test::source_path("test/plugins/assets_dist/img/logo.svg")));
  const hut::PluginAsset* runtime_txt = rt.find_asset("assets", "runtime.txt");
  REQUIRE(runtime_txt != nullptr);
  CHECK(runtime_txt->data == "made at run time");
  CHECK(runtime_txt->content_type == "text/plain; charset=utf-8");

  for (std::string bad :
       {std::string(""), std::string("/widget.js"), std::string("../assets/widget.js"),
        std::string("img/../widget.js"), std::string("img\\logo.svg"), std::string("./widget.js"),
        std::string("img//logo.svg"), std::string("widget.js\0.png", 14), std::string("img/"),
        std::string("%2e%2e/widget.js"), std::string("WIDGET.JS"), std::string("nope.js")}) {
    CAPTURE(bad);
    CHECK(rt.find_asset("assets", bad) == nullptr);
  }
  CHECK(rt.find_asset("nobody", "widget.js") == nullptr);

  auto widgets = rt.widgets();
  REQUIRE(widgets.size() == 1);
  CHECK(widgets[0].plugin == "assets");
  CHECK(widgets[0].tag == "test-assets");
  CHECK(widgets[0].script == "/plugins/assets/widget.js");

  REQUIRE(rt.unload("assets").ok());
  CHECK(rt.find_asset("assets", "widget.js") == nullptr);
  CHECK(rt.widgets().empty());
}

TEST_CASE("plugins: HTTP requests reach the plugin and its responses reach the space") {
  PluginFixture f;
  f.add("http_api");
  f.add_first_party("echo");
  PluginRuntime& rt = f.start();
  rt.load_all();
  REQUIRE(rt.is_loaded("http_api"));

  auto* hello = f.response(f.http("http_api", "GET", "/hello", "who=ada"));
  REQUIRE(hello != nullptr);
  CHECK(hello->status == 200);
  CHECK(hello->body == "hello who=ada");
  CHECK(std::find(hello->headers.begin(), hello->headers.end(),
                  std::make_pair(std::string("x-test"), std::string("yes"))) != hello->headers.end());

  std::string body = std::string("{\"a\":1}\0tail", 12);
  auto* echo =
      f.response(f.http("http_api", "POST", "/echo", "", body, {{"content-type", "application/json"}}));
  REQUIRE(echo != nullptr);
  CHECK(echo->status == 200);
  CHECK(echo->body == body);
  CHECK(echo->headers.at(0).second == "application/json");

  // Answered later, from a timer.
  uint64_t later = f.http("http_api", "GET", "/later");
  CHECK(f.services.response_to(later) == nullptr);
  auto* late = f.response(later);
  REQUIRE(late != nullptr);
  CHECK(late->body == "late");

  // A hook that refuses without answering: the runtime answers for it.
  auto* refused = f.response(f.http("http_api", "GET", "/refuse"));
  REQUIRE(refused != nullptr);
  CHECK(refused->status == 403);
  CHECK(contains(refused->body, "\"code\":\"forbidden\""));
  auto* missing = f.response(f.http("http_api", "GET", "/nothing-here"));
  REQUIRE(missing != nullptr);
  CHECK(missing->status == 404);

  Status st;
  f.http("nobody", "GET", "/", "", "", {}, &st);
  CHECK(st.code() == Status::Code::kNotFound);
  f.http("echo", "GET", "/", "", "", {}, &st);  // echo takes no HTTP requests
  CHECK(st.code() == Status::Code::kNotFound);

  auto stats = f.stats("http_api");
  CHECK(stats.calls >= 6);   // five requests and the timer
  CHECK(stats.errors == 2);  // /refuse and /nothing-here
}

TEST_CASE("plugins: the key-value store keeps a plugin's data across reload and a new runtime") {
  PluginFixture f;
  f.add("kv");
  PluginRuntime& rt = f.start();
  REQUIRE(rt.load("kv").ok());

  auto ask = [&](const std::string& data) {
    const auto* r = f.answer(f.widget("kv", data));
    REQUIRE(r != nullptr);
    return *r;
  };
  CHECK(ask(R"({"op":"put","key":"a","value":"one"})").ok);
  CHECK(ask(R"({"op":"put","key":"b","value":"two"})").ok);
  CHECK(ask(R"({"op":"get","key":"a"})").data == R"({"value":"one"})");
  auto absent = ask(R"({"op":"get","key":"zzz"})");
  CHECK(!absent.ok);
  CHECK(absent.code == "not_found");
  CHECK(ask(R"({"op":"big"})").data == R"({"ok":true})");

  REQUIRE(rt.reload("kv").ok());
  CHECK(ask(R"({"op":"get","key":"a"})").data == R"({"value":"one"})");
  CHECK(ask(R"({"op":"del","key":"a"})").data == R"({"deleted":true})");
  CHECK(ask(R"({"op":"del","key":"a"})").data == R"({"deleted":false})");

  PluginRuntime& rt2 = f.restart();
  REQUIRE(rt2.load("kv").ok());
  CHECK(ask(R"({"op":"get","key":"b"})").data == R"({"value":"two"})");
  CHECK(ask(R"({"op":"get","key":"a"})").code == "not_found");
  // A request the plugin refuses: bad_request for HUT_EINVAL.
  auto bad = ask(R"({"op":"what"})");
  CHECK(!bad.ok);
  CHECK(bad.code == "bad_request");
}

TEST_CASE("plugins: unload is refused while another plugin requires it") {
  PluginFixture f;
  f.add("zz_base");
  f.add("aa_user");
  PluginRuntime& rt = f.start();

  // Loading one by one needs its requirements first.
  Status st = rt.load("aa_user");
  CHECK(st.code() == Status::Code::kFailedPrecondition);
  CHECK(contains(std::string(st.message()), "requires zz_base, which is not loaded"));
  CHECK(f.info("aa_user").state == "failed");
  REQUIRE(rt.load("zz_base").ok());
  REQUIRE(rt.load("aa_user").ok());
  CHECK(f.info("aa_user").state == "loaded");
  CHECK(rt.load("aa_user").code() == Status::Code::kAlreadyExists);
  CHECK(rt.load("../aa_user").code() == Status::Code::kInvalidArgument);
  CHECK(rt.load("no_such_plugin").code() == Status::Code::kFailedPrecondition);

  st = rt.unload("zz_base");
  CHECK(st.code() == Status::Code::kFailedPrecondition);
  CHECK(contains(std::string(st.message()), "zz_base is required by aa_user"));
  CHECK(rt.is_loaded("zz_base"));

  REQUIRE(rt.unload("aa_user").ok());
  CHECK(f.services.has_event("aa_user", R"({"fini":"aa_user"})"));
  CHECK(f.info("aa_user").state == "unloaded");
  REQUIRE(rt.unload("zz_base").ok());
  CHECK(rt.unload("zz_base").code() == Status::Code::kNotFound);
  CHECK(rt.reload("zz_base").code() == Status::Code::kNotFound);
}

TEST_CASE("plugins: reload loads the current file again and answers the old instance's requests") {
  PluginFixture f;
  f.add("reloadme_v1", "reloadme");
  PluginRuntime& rt = f.start();
  REQUIRE(rt.load("reloadme").ok());
  CHECK(f.info("reloadme").version == "1");
  const auto* first = f.answer(f.widget("reloadme", R"({"op":"ask"})"));
  REQUIRE(first != nullptr);
  CHECK(first->data == R"({"version":"1"})");

  uint64_t held = f.widget("reloadme", R"({"op":"hold"})", "s1");
  CHECK(f.services.reply_to(held) == nullptr);

  f.add("reloadme_v2", "reloadme");
  REQUIRE(rt.reload("reloadme").ok());
  CHECK(f.info("reloadme").version == "2");
  CHECK(f.info("reloadme").state == "loaded");
  const auto* unavailable = f.services.reply_to(held);
  REQUIRE(unavailable != nullptr);
  CHECK(!unavailable->ok);
  CHECK(unavailable->code == "unavailable");

  const auto* second = f.answer(f.widget("reloadme", R"({"op":"ask"})"));
  REQUIRE(second != nullptr);
  CHECK(second->data == R"({"version":"2"})");
}

TEST_CASE("plugins: timers fire on the loop, repeat, stop, and end with the plugin") {
  PluginFixture f;
  f.add("timer");
  PluginRuntime& rt = f.start();
  REQUIRE(rt.load("timer").ok());
  CHECK(f.run_until([&] {
    return f.services.has_event("timer", R"({"timer":"once"})") &&
           f.services.has_event("timer", R"({"tick":3})");
  }));
  f.run_for(30);
  CHECK(!f.services.has_event("timer", R"({"tick":4})"));
  size_t onces = 0;
  for (const auto& e : f.services.events) onces += e.data == R"({"timer":"once"})";
  CHECK(onces == 1);
  CHECK(f.stats("timer").calls == 4);

  // Timers still pending when the plugin goes are ended with it.
  REQUIRE(rt.reload("timer").ok());
  REQUIRE(rt.unload("timer").ok());
  size_t before = f.services.events.size();
  f.run_for(30);
  CHECK(f.services.events.size() == before);
}

TEST_CASE("plugins: work posted from another thread runs on the loop thread") {
  PluginFixture f;
  f.add("threaded");
  PluginRuntime& rt = f.start();
  REQUIRE(rt.load("threaded").ok());
  for (int i = 0; i < 3; ++i) {
    uint64_t id = f.widget("threaded", "null");
    const auto* r = f.answer(id);
    REQUIRE(r != nullptr);
    CHECK(r->ok);
    CHECK(r->data == R"({"posted":true})");
    CHECK(r->thread == std::this_thread::get_id());
  }
  CHECK(f.stats("threaded").calls == 6);  // three hooks, three posted callbacks
}

TEST_CASE("plugins: stats count calls, errors and time of every hook") {
  PluginFixture f;
  f.add_first_party("echo");
  f.add("kv");
  PluginRuntime& rt = f.start();
  rt.load_all();
  for (int i = 0; i < 5; ++i) f.widget("echo", "{\"n\":" + std::to_string(i) + "}");
  f.widget("kv", R"({"op":"nonsense"})");
  auto echo = f.stats("echo");
  CHECK(echo.calls == 5);
  CHECK(echo.errors == 0);
  CHECK(echo.time_ns > 0);
  auto kv = f.stats("kv");
  CHECK(kv.calls == 1);
  CHECK(kv.errors == 1);
  Status st;
  f.widget("nobody", "null", "s1", &st);
  CHECK(st.code() == Status::Code::kNotFound);
}

namespace builtin {

const hut_host* host = nullptr;
int inits = 0;
int finis = 0;

int on_widget(hut_plugin* self, void*, const hut_widget_request* req) {
  std::string answer = "{\"inits\":" + std::to_string(inits) + "}";
  return host->reply(self, req->request_id, answer.data(), answer.size());
}

int init(const hut_host* h, hut_plugin* self, const char*, char*, size_t) {
  host = h;
  ++inits;
  hut_hooks hooks{};
  hooks.on_widget = on_widget;
  return host->register_hooks(self, &hooks, sizeof hooks);
}

void fini(hut_plugin*) { ++finis; }

const char* const needs[] = {"not_there", nullptr};
const hut_plugin_descriptor descriptor = {HUT_PLUGIN_ABI_MAJOR,
                                          HUT_PLUGIN_ABI_MINOR,
                                          "inside",
                                          "1.2.3",
                                          nullptr,
                                          nullptr,
                                          0,
                                          0,
                                          nullptr,
                                          nullptr,
                                          nullptr,
                                          nullptr,
                                          0};
const hut_plugin_descriptor needy = {HUT_PLUGIN_ABI_MAJOR,
                                     HUT_PLUGIN_ABI_MINOR,
                                     "needy",
                                     "1",
                                     needs,
                                     nullptr,
                                     0,
                                     0,
                                     nullptr,
                                     nullptr,
                                     nullptr,
                                     nullptr,
                                     0};
const hut_plugin_descriptor future = {HUT_PLUGIN_ABI_MAJOR,
                                      HUT_PLUGIN_ABI_MINOR + 1,
                                      "future",
                                      "1",
                                      nullptr,
                                      nullptr,
                                      0,
                                      0,
                                      nullptr,
                                      nullptr,
                                      nullptr,
                                      nullptr,
                                      0};

}  // namespace builtin

TEST_CASE("plugins: a plugin compiled into the program loads, reloads and unloads like the others") {
  PluginFixture f;
  PluginRuntime& rt = f.start();
  builtin::inits = builtin::finis = 0;
  REQUIRE(rt.load_builtin(&builtin::descriptor, builtin::init, builtin::fini).ok());
  CHECK(rt.is_loaded("inside"));
  CHECK(f.info("inside").version == "1.2.3");
  CHECK(rt.load_builtin(&builtin::descriptor, builtin::init, builtin::fini).code() ==
        Status::Code::kAlreadyExists);
  CHECK(f.answer(f.widget("inside", "null"))->data == R"({"inits":1})");
  REQUIRE(rt.reload("inside").ok());
  CHECK(builtin::finis == 1);
  CHECK(f.answer(f.widget("inside", "null"))->data == R"({"inits":2})");
  REQUIRE(rt.unload("inside").ok());
  CHECK(builtin::finis == 2);

  Status st = rt.load_builtin(&builtin::needy, builtin::init, nullptr);
  CHECK(st.code() == Status::Code::kFailedPrecondition);
  CHECK(f.info("needy").error == "requires not_there, which is not loaded");
  st = rt.load_builtin(&builtin::future, builtin::init, nullptr);
  CHECK(st.code() == Status::Code::kFailedPrecondition);
  CHECK(
      contains(f.info("future").error, "built for plugin ABI 1." + std::to_string(HUT_PLUGIN_ABI_MINOR + 1)));
  CHECK(builtin::inits == 2);
}

TEST_CASE("plugins: plugins built against ABI 1.1 and 1.2 still load in a space of a later minor") {
  PluginFixture f;
  PluginRuntime& rt = f.start();
  // Static: the runtime borrows a builtin's descriptor until it is gone.
  static hut_plugin_descriptor old[2] = {builtin::descriptor, builtin::descriptor};
  for (uint32_t minor : {1u, 2u}) {
    std::string name = "old_minor_" + std::to_string(minor);
    hut_plugin_descriptor& d = old[minor - 1];
    d.abi_minor = minor;
    d.name = minor == 1 ? "old_minor_1" : "old_minor_2";
    builtin::inits = 0;
    CHECK(rt.load_builtin(&d, builtin::init, builtin::fini).ok());
    CHECK(rt.is_loaded(name));
    CHECK(f.info(name).abi == "1." + std::to_string(minor));
    CHECK(builtin::inits == 1);
    CHECK(rt.unload(name).ok());
  }
}

TEST_CASE("plugins: widget events, notifications and answers reach the space as asked") {
  PluginFixture f;
  f.add("events");
  PluginRuntime& rt = f.start();
  REQUIRE(rt.load("events").ok());

  const auto* n = f.answer(f.widget("events", R"("notify")"));
  REQUIRE(n != nullptr);
  CHECK(n->data == R"({"ok":true})");
  REQUIRE(f.services.notices.size() == 2);
  CHECK(f.services.notices[0].plugin == "events");
  CHECK(f.services.notices[0].user == "u1");
  CHECK(f.services.notices[0].title == "Title");
  CHECK(f.services.notices[0].body == "Body");
  CHECK(f.services.notices[0].url == "https://example.test/x");
  CHECK(f.services.notices[1].title == "Bare");
  CHECK(f.services.notices[1].body.empty());

  const auto* t = f.answer(f.widget("events", R"("targets")", "sess-7"));
  REQUIRE(t != nullptr);
  CHECK(t->data == R"({"ok":true})");
  REQUIRE(f.services.events.size() == 4);
  CHECK(f.services.events[0].target == EventTarget::kSession);
  CHECK(f.services.events[0].target_id == "sess-7");
  CHECK(f.services.events[0].data == "1");
  CHECK(f.services.events[1].target == EventTarget::kUser);
  CHECK(f.services.events[1].target_id == "u1");
  CHECK(f.services.events[2].target == EventTarget::kRoom);
  CHECK(f.services.events[2].target_id == "lobby");
  CHECK(f.services.events[3].target == EventTarget::kEveryone);

  uint64_t twice = f.widget("events", R"("twice")");
  REQUIRE(f.answer(twice) != nullptr);
  CHECK(f.services.count_replies(twice) == 1);
  CHECK(f.stats("events").errors == 0);

  const auto* teapot = f.answer(f.widget("events", R"("teapot")"));
  REQUIRE(teapot != nullptr);
  CHECK(teapot->code == "conflict");
  CHECK(teapot->message == "I am a teapot");

  const auto* unknown = f.answer(f.widget("events", R"("what")"));
  REQUIRE(unknown != nullptr);
  CHECK(unknown->code == "bad_request");
  CHECK(f.stats("events").errors == 1);
}

TEST_CASE("plugins: a reload whose file is gone leaves the plugin failed with the reason") {
  PluginFixture f;
  f.add("reloadme_v1", "reloadme");
  PluginRuntime& rt = f.start();
  REQUIRE(rt.load("reloadme").ok());
  std::filesystem::remove(f.plugins_dir() + "/reloadme.so");
  CHECK(rt.reload("reloadme").code() == Status::Code::kFailedPrecondition);
  CHECK(!rt.is_loaded("reloadme"));
  CHECK(f.info("reloadme").state == "failed");
  CHECK(contains(f.info("reloadme").error, "no file reloadme.so"));
  f.add("reloadme_v2", "reloadme");
  CHECK(rt.load("reloadme").ok());
  CHECK(f.info("reloadme").version == "2");
}

TEST_CASE(
    "plugins: the C++ layer gives timers, posts from threads and the store, and keeps exceptions inside") {
  PluginFixture f;
  f.add("cpp_probe");
  PluginRuntime& rt = f.start();
  REQUIRE(rt.load("cpp_probe").ok());
  const auto* timer = f.answer(f.widget("cpp_probe", R"("timer")"));
  REQUIRE(timer != nullptr);
  CHECK(timer->data == R"({"timer":true})");
  const auto* posted = f.answer(f.widget("cpp_probe", R"("post")"));
  REQUIRE(posted != nullptr);
  CHECK(posted->data == R"({"posted":true})");
  CHECK(posted->thread == std::this_thread::get_id());
  CHECK(f.answer(f.widget("cpp_probe", R"("kv")"))->data == R"({"kv":true})");
  const auto* thrown = f.answer(f.widget("cpp_probe", R"("throw")"));
  REQUIRE(thrown != nullptr);
  CHECK(thrown->code == "internal");
  CHECK(rt.is_loaded("cpp_probe"));
  // Unloading with a thread's post in flight: the request is answered
  // "unavailable" once, and the posted callback never runs.
  uint64_t last = f.widget("cpp_probe", R"("post")");
  REQUIRE(rt.unload("cpp_probe").ok());
  f.run_for(20);
  CHECK(f.services.count_replies(last) == 1);
  REQUIRE(f.services.reply_to(last) != nullptr);
  CHECK(f.services.reply_to(last)->code == "unavailable");
}

TEST_CASE("plugins: room hooks see joins, leaves, presence, and may refuse or rewrite a post") {
  PluginFixture f;
  f.add("rooms_hooks");
  f.add_first_party("echo");  // has none of these hooks
  PluginRuntime& rt = f.start();
  rt.load_all();
  REQUIRE(rt.is_loaded("rooms_hooks"));
  hut::UserRef ada{"u-ada", "Ada", ""};

  rt.member_joined("lobby", ada);
  rt.member_left("lobby", ada);
  rt.user_online(ada);
  rt.user_offline(ada);
  REQUIRE(f.services.events.size() == 4);
  CHECK(f.services.events[0].target == EventTarget::kRoom);
  CHECK(f.services.events[0].target_id == "lobby");
  CHECK(f.services.events[0].data == R"({"joined":"u-ada"})");
  CHECK(f.services.events[1].data == R"({"left":"u-ada"})");
  CHECK(f.services.events[2].target == EventTarget::kUser);
  CHECK(f.services.events[2].target_id == "u-ada");
  CHECK(f.services.events[2].data == R"({"online":true})");
  CHECK(f.services.events[3].data == R"({"online":false})");

  std::string text = "hello there";
  std::string data = R"({"keep":1})";
  CHECK(rt.filter_post("lobby", ada, &text, &data, "").ok());
  CHECK(text == "hello there");
  CHECK(data == R"({"keep":1})");

  text = "please shout this";
  data.clear();
  CHECK(rt.filter_post("lobby", ada, &text, &data, "").ok());
  CHECK(text == "PLEASE SHOUT THIS");
  CHECK(data == R"({"shouted":true})");

  text = "a forbidden word";
  Status st = rt.filter_post("lobby", ada, &text, &data, "");
  CHECK(st.code() == Status::Code::kPermissionDenied);
  CHECK(st.message() == "no forbidden words here");
  CHECK(text == "a forbidden word");
  // A plugin's own post is not filtered by that plugin.
  CHECK(rt.filter_post("lobby", ada, &text, &data, "rooms_hooks").ok());
  CHECK(text == "a forbidden word");

  CHECK(f.stats("rooms_hooks").calls == 7);
  CHECK(f.stats("echo").calls == 0);
}

namespace {

size_t count_events(const Recorder& r, std::string_view data) {
  size_t n = 0;
  for (const auto& e : r.events) n += e.data == data;
  return n;
}

}  // namespace

TEST_CASE("plugins: a plugin built against the frozen ABI 1.1 header loads and works") {
  PluginFixture f;
  f.add("abi_1_1");
  PluginRuntime& rt = f.start();
  REQUIRE(rt.load("abi_1_1").ok());
  CHECK(f.info("abi_1_1").abi == "1.1");
  CHECK(f.info("abi_1_1").state == "loaded");
  // Its key-value store, its timer and its answer, through the 1.1 table.
  const auto* r = f.answer(f.widget("abi_1_1", R"({"put":"kept"})"));
  REQUIRE(r != nullptr);
  CHECK(r->ok);
  CHECK(r->data == R"({"abi":"1.1","kv":"kept","rooms":true})");
  REQUIRE(rt.reload("abi_1_1").ok());
  CHECK(f.answer(f.widget("abi_1_1", R"({"put":"again"})"))->data ==
        R"({"abi":"1.1","kv":"again","rooms":true})");
  CHECK(rt.unload("abi_1_1").ok());
}

TEST_CASE("plugins: a plugin built against the new header that requires only ABI 1.1 loads") {
  PluginFixture f;
  f.add("requires_1_1");
  PluginRuntime& rt = f.start();
  REQUIRE(rt.load("requires_1_1").ok());
  CHECK(f.info("requires_1_1").abi == "1." + std::to_string(HUT_PLUGIN_ABI_MINOR));
  // In this space it finds the newer functions and uses them.
  CHECK(f.answer(f.widget("requires_1_1", R"({"op":"count"})"))->data == R"({"count":1})");
  CHECK(f.answer(f.widget("requires_1_1", R"({"op":"count"})"))->data == R"({"count":2})");
}

TEST_CASE("plugins: built against a newer minor, a plugin loads when what it requires is here") {
  PluginFixture f;
  PluginRuntime& rt = f.start();
  // A descriptor as a header two minors ahead of this space would make it.
  static hut_plugin_descriptor future_ok = builtin::descriptor;
  future_ok.name = "future_ok";
  future_ok.abi_minor = HUT_PLUGIN_ABI_MINOR + 2;
  future_ok.requires_abi = HUT_PLUGIN_ABI(1, 1);
  builtin::inits = 0;
  Status st = rt.load_builtin(&future_ok, builtin::init, builtin::fini);
  REQUIRE_MESSAGE(st.ok(), st.to_string());
  CHECK(builtin::inits == 1);
  CHECK(f.info("future_ok").abi == "1." + std::to_string(HUT_PLUGIN_ABI_MINOR + 2));
  CHECK(f.answer(f.widget("future_ok", "null"))->data == R"({"inits":1})");

  // Requiring the newer minor: refused, naming both versions.
  static hut_plugin_descriptor future_needs = future_ok;
  future_needs.name = "future_needs";
  future_needs.requires_abi = HUT_PLUGIN_ABI(1, HUT_PLUGIN_ABI_MINOR + 1);
  CHECK(rt.load_builtin(&future_needs, builtin::init, nullptr).code() == Status::Code::kFailedPrecondition);
  CHECK(f.info("future_needs").error == "built for plugin ABI 1." + std::to_string(HUT_PLUGIN_ABI_MINOR + 2) +
                                            " and requires 1." + std::to_string(HUT_PLUGIN_ABI_MINOR + 1) +
                                            ", this space has 1." + std::to_string(HUT_PLUGIN_ABI_MINOR));
  // Requiring more than it was built against, or another major: refused.
  static hut_plugin_descriptor odd = future_ok;
  odd.name = "odd";
  odd.requires_abi = HUT_PLUGIN_ABI(1, HUT_PLUGIN_ABI_MINOR + 3);
  CHECK(rt.load_builtin(&odd, builtin::init, nullptr).code() == Status::Code::kFailedPrecondition);
  CHECK(contains(f.info("odd").error, "which is not an older minor"));
  CHECK(builtin::inits == 1);

  // The rule as an older space of this version applies it: a 1.5 plugin
  // requiring 1.1 runs from 1.1 on; one that leaves requires_abi out needs 1.5.
  hut_plugin_descriptor d = builtin::descriptor;
  d.abi_minor = 5;
  d.requires_abi = HUT_PLUGIN_ABI(1, 1);
  CHECK(check_plugin_abi(d, 5).ok());
  CHECK(check_plugin_abi(d, 1).ok());
  CHECK(!check_plugin_abi(d, 0).ok());
  d.requires_abi = 0;
  CHECK(check_plugin_abi(d, 5).ok());
  CHECK(!check_plugin_abi(d, 4).ok());
  // Before 1.5 the field did not exist: it is not read.
  d.abi_minor = 4;
  d.requires_abi = HUT_PLUGIN_ABI(1, 1);
  CHECK(!check_plugin_abi(d, 3).ok());
}

TEST_CASE("plugins: ABI 1.5 instance data, error codes and the release of every arg") {
  PluginFixture f;
  f.add("abi15");
  PluginRuntime& rt = f.start();
  REQUIRE(rt.load("abi15").ok());
  // The one-shot timer fires, then its arg is released.
  REQUIRE(f.run_until([&] { return f.services.has_event("abi15", R"({"released":"once"})"); }));
  CHECK(f.services.has_event("abi15", R"({"fired":"once"})"));

  // Instance data: state kept by the instance, found from any callback.
  CHECK(f.answer(f.widget("abi15", R"({"op":"count"})"))->data == R"({"count":1})");
  CHECK(f.answer(f.widget("abi15", R"({"op":"count"})"))->data == R"({"count":2})");

  // An integer error code becomes the bus code a hook's refusal gets.
  const auto* fail = f.answer(f.widget("abi15", R"({"op":"fail"})"));
  REQUIRE(fail != nullptr);
  CHECK(!fail->ok);
  CHECK(fail->code == "forbidden");
  CHECK(fail->message == "not allowed");

  // A posted callback runs, then its arg is released.
  CHECK(f.answer(f.widget("abi15", R"({"op":"post"})"))->data == R"({"posted":true})");
  CHECK(f.run_until([&] { return f.services.has_event("abi15", R"({"released":"post"})"); }));

  // A stopped timer is released at once.
  CHECK(f.answer(f.widget("abi15", R"({"op":"stop"})"))->data == R"({"stopped":0})");
  CHECK(count_events(f.services, R"({"released":"stopped"})") == 1);

  // A room call that completes: done, then release.
  CHECK(f.answer(f.widget("abi15", R"({"op":"room"})"))->data == R"({"room_rc":0})");
  REQUIRE(f.services.room_calls.size() == 1);
  f.services.room_calls[0](HUT_OK, R"({"seq":1,"ts":2})");
  CHECK(f.services.has_event("abi15", R"({"room_done":0})"));
  CHECK(count_events(f.services, R"({"released":"room"})") == 1);

  // A room call still out when the plugin goes is released, and its done
  // never runs; the repeating timer is released too.
  CHECK(f.answer(f.widget("abi15", R"({"op":"room"})"))->data == R"({"room_rc":0})");
  REQUIRE(f.services.room_calls.size() == 2);
  REQUIRE(rt.unload("abi15").ok());
  CHECK(count_events(f.services, R"({"released":"room"})") == 2);
  CHECK(count_events(f.services, R"({"released":"repeat"})") == 1);
  size_t dones = count_events(f.services, R"({"room_done":0})");
  f.services.room_calls[1](HUT_OK, "{}");
  CHECK(count_events(f.services, R"({"room_done":0})") == dones);
  // Each arg was released exactly once.
  CHECK(count_events(f.services, R"({"released":"once"})") == 1);
  CHECK(count_events(f.services, R"({"released":"post"})") == 1);
  CHECK(count_events(f.services, R"({"released":"stopped"})") == 1);
}

TEST_CASE("plugins: query pairs reach on_http decoded, each pair whole") {
  PluginFixture f;
  f.add("abi15");
  PluginRuntime& rt = f.start();
  REQUIRE(rt.load("abi15").ok());
  PluginHttpRequest req;
  req.method = "GET";
  req.path = "/pairs";
  req.query = "a&b=c=d&e=";
  req.query_params = {{"a&b", "c=d"}, {"e", ""}, {"flag", ""}};
  hut::Result<hut::RequestId> id =
      rt.dispatch_http("abi15", std::move(req), "test", f.services.http_answer());
  REQUIRE(id.ok());
  const auto* r = f.response(*id);
  REQUIRE(r != nullptr);
  CHECK(r->body == "a&b=c=d\ne=\nflag=\n");
}
