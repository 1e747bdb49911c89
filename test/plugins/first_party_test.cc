// The first-party plugins (plugins/) and the example plugins (examples/),
// loaded by the real runtime from the files meson built.
#include <cJSON.h>
#include <doctest/doctest.h>

#include "plugin_fixture.h"

using hut::EventTarget;
using hut::PluginRuntime;
using hut::test::PluginFixture;

TEST_CASE("echo answers a widget request with the data it got") {
  PluginFixture f;
  f.add_first_party("echo");
  PluginRuntime& rt = f.start();
  rt.load_all();
  REQUIRE(rt.is_loaded("echo"));
  CHECK(f.info("echo").version == "1.0.0");
  for (std::string data : {std::string(R"({"hello":[1,2,{"x":"é"}]})"), std::string("null"),
                           std::string("42"), std::string(R"("text")")}) {
    const auto* r = f.answer(f.widget("echo", data));
    REQUIRE(r != nullptr);
    CHECK(r->ok);
    CHECK(r->data == data);
  }
  // An absent `data` reaches the plugin as null.
  const auto* r = f.answer(f.widget("echo", ""));
  REQUIRE(r != nullptr);
  CHECK(r->data == "null");
}

TEST_CASE("counter: a shared counter that broadcasts its value and keeps it") {
  PluginFixture f;
  f.add_first_party("counter");
  f.write_config("counter", "start = 10\n");
  PluginRuntime& rt = f.start();
  rt.load_all();
  REQUIRE(rt.is_loaded("counter"));

  auto widgets = rt.widgets();
  REQUIRE(widgets.size() == 1);
  CHECK(widgets[0].tag == "hut-counter");
  CHECK(widgets[0].script == "/plugins/counter/widget.js");
  const hut::PluginAsset* js = rt.find_asset("counter", "widget.js");
  REQUIRE(js != nullptr);
  CHECK(js->content_type == "text/javascript; charset=utf-8");
  CHECK(js->data == hut::test::read_file(hut::test::source_path("plugins/counter/dist/widget.js")));
  CHECK(js->data.find("customElements.define(\"hut-counter\"") != std::string::npos);

  CHECK(f.answer(f.widget("counter", R"({"op":"get"})"))->data == R"({"value":10})");
  const auto* inc = f.answer(f.widget("counter", R"({"op":"increment"})"));
  REQUIRE(inc != nullptr);
  CHECK(inc->data == R"({"value":11})");
  REQUIRE(f.services.events.size() == 1);
  CHECK(f.services.events[0].plugin == "counter");
  CHECK(f.services.events[0].target == EventTarget::kEveryone);
  CHECK(f.services.events[0].data == R"({"value":11})");
  CHECK(f.answer(f.widget("counter", R"({"op":"increment","by":5})"))->data == R"({"value":16})");

  const auto* bad = f.answer(f.widget("counter", R"({"op":"increment","by":"lots"})"));
  CHECK(!bad->ok);
  CHECK(bad->code == "bad_request");
  CHECK(f.answer(f.widget("counter", R"({"op":"explode"})"))->code == "bad_request");
  CHECK(f.answer(f.widget("counter", "null"))->code == "bad_request");

  const auto* http = f.response(f.http("counter", "GET", "/value"));
  REQUIRE(http != nullptr);
  CHECK(http->status == 200);
  CHECK(http->body == R"({"value":16})");
  CHECK(f.response(f.http("counter", "POST", "/value"))->status == 405);
  CHECK(f.response(f.http("counter", "GET", "/other"))->status == 404);

  // The value outlives the runtime; the stored value wins over `start`.
  PluginRuntime& rt2 = f.restart();
  rt2.load_all();
  CHECK(f.answer(f.widget("counter", R"({"op":"get"})"))->data == R"({"value":16})");
}

TEST_CASE("chat: loads and serves its widget <hut-chat> from web/") {
  PluginFixture f;
  f.add_first_party("chat");
  PluginRuntime& rt = f.start();
  rt.load_all();
  REQUIRE(rt.is_loaded("chat"));
  auto widgets = rt.widgets();
  REQUIRE(widgets.size() == 1);
  CHECK(widgets[0].tag == "hut-chat");
  CHECK(widgets[0].script == "/plugins/chat/chat.js");
  const hut::PluginAsset* js = rt.find_asset("chat", "chat.js");
  REQUIRE(js != nullptr);
  CHECK(js->data == hut::test::read_file(hut::test::source_path("plugins/chat/web/chat.js")));
}

TEST_CASE("counter: a configuration it cannot use fails its init with a message") {
  PluginFixture f;
  f.add_first_party("counter");
  f.write_config("counter", "start = \"ten\"\n");
  PluginRuntime& rt = f.start();
  rt.load_all();
  CHECK(!rt.is_loaded("counter"));
  CHECK(f.info("counter").error ==
        "init failed (invalid argument): counter.toml: `start` must be an integer");
}

TEST_CASE("examples: hello (C) registers its widget script and answers") {
  PluginFixture f;
  f.add_file(hut::test::build_path("examples/hello_c/hello.so"), "hello");
  PluginRuntime& rt = f.start();
  rt.load_all();
  REQUIRE(rt.is_loaded("hello"));
  const hut::PluginAsset* js = rt.find_asset("hello", "hello.js");
  REQUIRE(js != nullptr);
  CHECK(js->data.find("customElements.define('hello-card'") != std::string::npos);
  CHECK(rt.widgets().at(0).tag == "hello-card");
  CHECK(f.answer(f.widget("hello", "null"))->data == R"({"text":"Hello from a plugin!"})");
}

TEST_CASE("examples: greeter (C++) reads its configuration, counts in its store, answers HTTP") {
  PluginFixture f;
  f.add_file(hut::test::build_path("examples/plugin_cpp/greeter.so"), "greeter");
  f.write_config("greeter", "greeting = \"Good morning\"\n");
  PluginRuntime& rt = f.start();
  rt.load_all();
  REQUIRE(rt.is_loaded("greeter"));
  CHECK(f.answer(f.widget("greeter", "null"))->data == R"({"greeting":"Good morning, Ada!","count":1})");
  CHECK(f.answer(f.widget("greeter", "null"))->data == R"({"greeting":"Good morning, Ada!","count":2})");
  const auto* reset = f.answer(f.widget("greeter", R"({"reset":true})"));
  REQUIRE(reset != nullptr);
  CHECK(reset->code == "forbidden");
  CHECK(reset->message == "the count is not reset from a widget");
  CHECK(f.info("greeter").abi == "1." + std::to_string(HUT_PLUGIN_ABI_MINOR));
  const auto* http = f.response(f.http("greeter", "GET", "/count"));
  REQUIRE(http != nullptr);
  CHECK(http->body == R"({"count":2})");
  CHECK(f.response(f.http("greeter", "GET", "/nope"))->status == 404);

  REQUIRE(rt.reload("greeter").ok());
  CHECK(f.answer(f.widget("greeter", "null"))->data == R"({"greeting":"Good morning, Ada!","count":3})");

  f.write_config("greeter", "greeting = 7\n");
  CHECK(!rt.reload("greeter").ok());
  CHECK(f.info("greeter").error ==
        "init failed (invalid argument): greeter.toml: `greeting` must be a string");
}
