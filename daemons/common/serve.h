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

#ifdef HUT_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace hut::daemon {

// Tells the service manager about the daemon's state (sd_notify(3): READY=1,
// RELOADING=1, STOPPING=1, STATUS=...). Does nothing when the daemon was not
// started by one (no NOTIFY_SOCKET) or was built without libsystemd.
inline void notify_manager(const std::string& state) {
#ifdef HUT_HAVE_SYSTEMD
  sd_notify(0, state.c_str());
#else
  (void)state;
#endif
}

// Runs `server` on `loop` until a signal has stopped it. `Server` has
// `Status start()` and `void stop(std::function<void()> done)` (hut::Space,
// the relay); `urls(server)` gives the URLs printed as "listening on" lines.
// Signals are caught from before those lines: whoever reads them may signal
// at once. The first SIGINT or SIGTERM stops the server; later ones are
// ignored. Readiness (READY=1) is sent to the service manager after the
// listeners are up and the lines are printed, STOPPING=1 on the stopping
// signal. SIGHUP calls `server->reload()` where the server has one (what a
// reload can change is the server's to say), between RELOADING=1 and READY=1. Destroys the server, drains and
// closes the loop, and returns the exit code: 0, or 1 when the server did not start. `name` prefixes
// messages.
template <typename Server, typename Urls>
int serve(const char* name, uv_loop_t* loop, std::unique_ptr<Server> server, Urls urls) {
  struct Signals {
    uv_signal_t sigint;
    uv_signal_t sigterm;
    uv_signal_t sighup;
    Server* server = nullptr;
    const char* name = nullptr;
    bool stopping = false;
    void close() {
      uv_close(reinterpret_cast<uv_handle_t*>(&sigint), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&sigterm), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&sighup), nullptr);
    }
  } signals;
  signals.server = server.get();
  signals.name = name;
  auto on_signal = [](uv_signal_t* handle, int signum) {
    auto* s = static_cast<Signals*>(handle->data);
    if (s->stopping) return;
    s->stopping = true;
    notify_manager("STOPPING=1");
    std::fprintf(stderr, "%s: %s, shutting down\n", s->name, signum == SIGINT ? "SIGINT" : "SIGTERM");
    s->server->stop([s] { s->close(); });
  };
  uv_signal_init(loop, &signals.sigint);
  uv_signal_init(loop, &signals.sigterm);
  uv_signal_init(loop, &signals.sighup);
  signals.sigint.data = &signals;
  signals.sigterm.data = &signals;
  signals.sighup.data = &signals;
  uv_signal_start(&signals.sigint, on_signal, SIGINT);
  uv_signal_start(&signals.sigterm, on_signal, SIGTERM);
  auto on_hup = [](uv_signal_t* handle, int) {
    auto* s = static_cast<Signals*>(handle->data);
    if (s->stopping) return;
    if constexpr (requires(Server & srv) { srv.reload(); }) {
      notify_manager("RELOADING=1");
      Status st = s->server->reload();
      if (st.ok()) {
        std::fprintf(stderr, "%s: SIGHUP, reloaded\n", s->name);
      } else {
        std::fprintf(stderr, "%s: SIGHUP, reload failed: %s\n", s->name, std::string(st.message()).c_str());
      }
      notify_manager("READY=1");
    } else {
      std::fprintf(stderr, "%s: SIGHUP ignored: nothing to reload\n", s->name);
    }
  };
  uv_signal_start(&signals.sighup, on_hup, SIGHUP);
  int code = 0;
  Status st = server->start();
  if (!st.ok()) {
    std::fprintf(stderr, "%s: cannot start: %s\n", name, std::string(st.message()).c_str());
    signals.close();
    code = 1;
  } else {
    std::string status = "STATUS=listening on";
    for (const std::string& url : urls(*server)) {
      std::printf("listening on %s\n", url.c_str());
      status += " " + url;
    }
    std::fflush(stdout);
    notify_manager("READY=1\n" + status);
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
