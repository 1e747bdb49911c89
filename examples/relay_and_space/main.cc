// A program that embeds a Hutopia relay and a Hutopia space on one libuv
// loop, the space trusting that relay's tokens (it fetches the relay's key
// set from it).
//
//   relay_and_space <data dir> [relay port] [space port]
//
// The relay listens on 127.0.0.1:<relay port> (default 8700) and names
// itself (its tokens' issuer) http://127.0.0.1:<relay port>; the space, on
// 127.0.0.1:<space port> (default 0: any free port), is made once the relay
// listens, so that it fetches the keys from the relay's real address even
// when the relay port is 0. Both admin listeners take free ports. It prints a "<name> listening on <url>"
// line per listener and runs until SIGINT or SIGTERM, then stops both and exits 0.
#include <hutopia/relay.h>
#include <hutopia/space.h>

#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

namespace {

struct App {
  uv_loop_t loop;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  std::unique_ptr<hut::Relay> relay;
  std::unique_ptr<hut::Space> space;
  int running = 0;  // of the two, those not stopped yet
};

void close_signals(App* app) {
  uv_close(reinterpret_cast<uv_handle_t*>(&app->sigint), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&app->sigterm), nullptr);
}

void on_signal(uv_signal_t* handle, int) {
  App* app = static_cast<App*>(handle->data);
  uv_signal_stop(&app->sigint);
  uv_signal_stop(&app->sigterm);
  auto one_stopped = [app](const char* what) {
    std::printf("%s stopped\n", what);
    if (--app->running == 0) close_signals(app);
  };
  app->space->stop([one_stopped] { one_stopped("space"); });
  app->relay->stop([one_stopped] { one_stopped("relay"); });
}

int fail(const char* what, const hut::Status& st) {
  std::fprintf(stderr, "relay_and_space: %s: %s\n", what, st.to_string().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: relay_and_space <data dir> [relay port] [space port]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::string relay_port = argc > 2 ? argv[2] : "8700";
  const std::string space_port = argc > 3 ? argv[3] : "0";
  App app;
  uv_loop_init(&app.loop);

  hut::RelayConfig rc;
  rc.relay.listen = "127.0.0.1:" + relay_port;
  rc.relay.issuer = "http://127.0.0.1:" + relay_port;
  rc.relay.data_dir = dir + "/relay";
  rc.admin.listen = "127.0.0.1:0";
  auto relay = hut::Relay::create(rc, &app.loop);
  if (!relay.ok()) return fail("relay", relay.status());
  app.relay = std::move(*relay);
  hut::Status st = app.relay->start();
  if (!st.ok()) return fail("relay start", st);

  hut::SpaceConfig sc;
  sc.space.id = "demo";
  sc.space.name = "A space beside its relay";
  sc.space.listen = "127.0.0.1:" + space_port;
  sc.space.data_dir = dir + "/space";
  sc.space.plugins_dir = dir + "/no-plugins";
  sc.admin.listen = "127.0.0.1:0";
  sc.auth.relay_issuer = rc.relay.issuer;
  sc.auth.relay_jwks = app.relay->public_url() + "/.well-known/jwks.json";
  sc.auth.relay_login = app.relay->public_url() + "/login";
  auto space = hut::Space::create(sc, &app.loop);
  if (!space.ok()) return fail("space", space.status());
  app.space = std::move(*space);

  st = app.space->start();
  if (!st.ok()) return fail("space start", st);
  app.running = 2;
  std::printf("relay listening on %s\nrelay admin listening on %s\n", app.relay->public_url().c_str(),
              app.relay->admin_url().c_str());
  std::printf("space listening on %s\nspace admin listening on %s\n", app.space->public_url().c_str(),
              app.space->admin_url().c_str());
  std::fflush(stdout);

  uv_signal_init(&app.loop, &app.sigint);
  uv_signal_init(&app.loop, &app.sigterm);
  app.sigint.data = &app;
  app.sigterm.data = &app;
  uv_signal_start(&app.sigint, on_signal, SIGINT);
  uv_signal_start(&app.sigterm, on_signal, SIGTERM);

  uv_run(&app.loop, UV_RUN_DEFAULT);
  app.space.reset();
  app.relay.reset();
  uv_run(&app.loop, UV_RUN_DEFAULT);
  int closed = uv_loop_close(&app.loop);
  if (closed != 0) std::fprintf(stderr, "relay_and_space: the loop still had handles\n");
  return closed == 0 ? 0 : 1;
}
