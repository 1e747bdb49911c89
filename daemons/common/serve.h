// The run of both daemons once their server exists: signals, start, the
// "listening on" lines, the loop, and a clean end on SIGINT or SIGTERM
// (contract section 7).
#ifndef HUTOPIA_DAEMONS_COMMON_SERVE_H_
#define HUTOPIA_DAEMONS_COMMON_SERVE_H_

#include <uv.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <hutopia/status.h>

namespace hut::daemon {

// Runs `server` on `loop` until a signal has stopped it. `Server` has
// `Status start()` and `void stop(std::function<void()> done)` (hut::Space,
// the relay); `urls(server)` gives the URLs printed as "listening on" lines.
// Signals are caught from before those lines: whoever reads them may signal
// at once. The first SIGINT or SIGTERM stops the server; later ones are
// ignored. Destroys the server, drains and closes the loop, and returns the
// exit code: 0, or 1 when the server did not start. `name` prefixes messages.
template <typename Server, typename Urls>
int serve(const char* name, uv_loop_t* loop, std::unique_ptr<Server> server, Urls urls) {
  struct Signals {
    uv_signal_t sigint;
    uv_signal_t sigterm;
    Server* server = nullptr;
    const char* name = nullptr;
    bool stopping = false;
    void close() {
      uv_close(reinterpret_cast<uv_handle_t*>(&sigint), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&sigterm), nullptr);
    }
  } signals;
  signals.server = server.get();
  signals.name = name;
  auto on_signal = [](uv_signal_t* handle, int signum) {
    auto* s = static_cast<Signals*>(handle->data);
    if (s->stopping) return;
    s->stopping = true;
    std::fprintf(stderr, "%s: %s, shutting down\n", s->name, signum == SIGINT ? "SIGINT" : "SIGTERM");
    s->server->stop([s] { s->close(); });
  };
  uv_signal_init(loop, &signals.sigint);
  uv_signal_init(loop, &signals.sigterm);
  signals.sigint.data = &signals;
  signals.sigterm.data = &signals;
  uv_signal_start(&signals.sigint, on_signal, SIGINT);
  uv_signal_start(&signals.sigterm, on_signal, SIGTERM);
  int code = 0;
  Status st = server->start();
  if (!st.ok()) {
    std::fprintf(stderr, "%s: cannot start: %s\n", name, std::string(st.message()).c_str());
    signals.close();
    code = 1;
  } else {
    for (const std::string& url : urls(*server)) std::printf("listening on %s\n", url.c_str());
    std::fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
  }
  server.reset();
  // Whatever the server closed while being destroyed.
  uv_run(loop, UV_RUN_DEFAULT);
  if (uv_loop_close(loop) != 0) std::fprintf(stderr, "%s: the loop still had handles at exit\n", name);
  return code;
}

}  // namespace hut::daemon

#endif  // HUTOPIA_DAEMONS_COMMON_SERVE_H_
