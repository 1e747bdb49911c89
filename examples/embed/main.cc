// An application that embeds a Hutopia space on its own libuv loop.
//
// It registers a plugin compiled into the program itself, starts a space on
// port 0 (the public listener only: no management API, since the program
// sets no [admin] listen), keeps its store in <data_dir>/space.db, asks the
// plugin something in-process, creates a room, posts to it as a user and as
// the space, reads its history, sends a widget event to its members, mints an
// app token, and then stops the space and exits. Run it with no arguments; it
// exits 0 when everything answered.
#include <hutopia/plugin.h>
#include <hutopia/space.h>

#include <uv.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

namespace {

// ---- A plugin compiled into the program ----

const hut_host* g_host = nullptr;

int greeter_on_widget(hut_plugin* self, void*, const hut_widget_request* req) {
  std::string out = std::string(R"({"greeting":"hello, )") + req->user->name + R"(","you_sent":)" +
                    std::string(req->data_json, req->data_len) + "}";
  return g_host->reply(self, req->request_id, out.data(), out.size());
}

int greeter_init(const hut_host* host, hut_plugin* self, const char*, char* err, size_t errlen) {
  g_host = host;
  hut_hooks hooks;
  std::memset(&hooks, 0, sizeof hooks);
  hooks.on_widget = greeter_on_widget;
  int rc = host->register_hooks(self, &hooks, sizeof hooks);
  if (rc != HUT_OK) std::snprintf(err, errlen, "register_hooks: %s", host->strerror(rc));
  return rc;
}

const hut_plugin_descriptor kGreeter = {
    HUT_PLUGIN_ABI_MAJOR,
    HUT_PLUGIN_ABI_MINOR,
    "greeter",
    "1.0.0",
    nullptr,
    nullptr,
    0,
    0,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    0,
};

struct App {
  uv_loop_t loop;
  uv_timer_t timer;
  hut::Space* space = nullptr;
  int failures = 0;
};

void finish(App* app);

// The rooms in-process: create a room, post as a user and as the space, read
// the history back, and send the room's members a widget event.
void use_rooms(App* a) {
  a->space->create_room("general", "Anything goes", false, "ada", {"bob"}, [a](hut::Status created) {
    if (!created.ok()) {
      std::printf("create_room failed: %s\n", created.to_string().c_str());
      ++a->failures;
      return finish(a);
    }
    a->space->post_to_room(
        "general", "ada", "Ada", "hello, room", "", [a](hut::Status posted, uint64_t seq, int64_t) {
          if (!posted.ok()) ++a->failures;
          std::printf("ada posted message %llu\n", static_cast<unsigned long long>(seq));
          a->space->post_to_room(
              "general", "", "", "welcome, from the space", "", [a](hut::Status again, uint64_t, int64_t) {
                if (!again.ok()) ++a->failures;
                a->space->room_history("general", 0, 10, [a](hut::Status s, std::string page) {
                  if (s.ok()) {
                    std::printf("history: %s\n", page.c_str());
                  } else {
                    ++a->failures;
                  }
                  auto members = a->space->room_members("general");
                  std::printf("members: %s\n", members.ok() ? members->c_str() : "?");
                  auto sent = a->space->send_widget_event("greeter", hut::Audience::kRoom, "general",
                                                          R"({"tick":1})");
                  std::printf("event reached %zu sessions\n", sent.ok() ? *sent : 0);
                  finish(a);
                });
              });
        });
  });
}

void finish(App* app) {
  app->space->stop([app] {
    std::printf("space stopped\n");
    uv_close(reinterpret_cast<uv_handle_t*>(&app->timer), nullptr);
  });
}

}  // namespace

int main() {
  App app;
  uv_loop_init(&app.loop);

  hut::SpaceConfig config;
  config.space.id = "embedded";
  config.space.name = "An embedded space";
  config.space.listen = "127.0.0.1:0";
  config.space.plugins_dir = "/nonexistent";  // only the compiled-in plugin
  config.auth.app_issuer = "embed-example";
  config.auth.app_secret = "the secret this app shares with its own space";

  char tmpl[] = "/tmp/hut-embed-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  config.space.data_dir = tmpl;

  auto space = hut::Space::create(config, &app.loop);
  if (!space.ok()) {
    std::fprintf(stderr, "create: %s\n", space.status().to_string().c_str());
    return 1;
  }
  app.space = space->get();
  // Before start: a plugin file of the plugins folder could require it.
  hut::Status st = app.space->register_plugin(&kGreeter, greeter_init, nullptr);
  if (!st.ok()) {
    std::fprintf(stderr, "register_plugin: %s\n", st.to_string().c_str());
    return 1;
  }
  st = app.space->start();
  if (!st.ok()) {
    std::fprintf(stderr, "start: %s\n", st.to_string().c_str());
    return 1;
  }
  std::printf("listening on %s\n", app.space->public_url().c_str());
  std::printf("store %s\n", app.space->config().store.url.c_str());
  if (app.space->admin_url().empty()) std::printf("no management API\n");

  auto token = app.space->mint_app_token("ada", "Ada", 60);
  if (token.ok()) {
    std::printf("minted a token for ada, valid until %lld ms\n",
                static_cast<long long>(token->expires_at_ms));
  } else {
    ++app.failures;
  }

  // The program's own timer, on the same loop as the space.
  uv_timer_init(&app.loop, &app.timer);
  app.timer.data = &app;
  uv_timer_start(
      &app.timer,
      [](uv_timer_t* t) {
        App* a = static_cast<App*>(t->data);
        a->space->call_plugin("greeter", "ada", R"({"n":1})", [a](hut::Status s, std::string data) {
          if (s.ok()) {
            std::printf("builtin answered: %s\n", data.c_str());
          } else {
            std::printf("builtin failed: %s\n", s.to_string().c_str());
            ++a->failures;
          }
          use_rooms(a);
        });
      },
      10, 0);

  uv_run(&app.loop, UV_RUN_DEFAULT);
  space->reset();
  uv_run(&app.loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&app.loop);
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
  return app.failures == 0 && rc == 0 ? 0 : 1;
}
