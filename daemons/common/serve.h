// The run of both daemons once their configuration is read: the data dir's
// lock, the log level, the server on its loop, signals, start, the "listening
// on" lines, the loop, reloads on SIGHUP, and a clean end on SIGINT or SIGTERM
// (contract section 7).
#ifndef HUTOPIA_DAEMONS_COMMON_SERVE_H_
#define HUTOPIA_DAEMONS_COMMON_SERVE_H_

#include <uv.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <hutopia/log.h>
#include <hutopia/status.h>

#include <functional>

#include "common/backup.h"
#include "common/cli.h"

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
// signal. SIGHUP calls `reload(*server)` (what a reload can change is the
// daemon's to say and log), between RELOADING=1 and READY=1. Destroys the
// server, drains and closes the loop, and returns the exit code: 0, or 1 when
// the server did not start. `name` prefixes messages.
template <typename Server, typename Urls>
int serve(const char* name, uv_loop_t* loop, std::unique_ptr<Server> server, Urls urls,
          std::function<void(Server&)> reload) {
  struct Signals {
    uv_signal_t sigint;
    uv_signal_t sigterm;
    uv_signal_t sighup;
#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer defers a signal that arrives just before the loop
    // enters epoll_wait until the next intercepted call, which on an idle
    // loop comes only with its next timer (up to 30 s later): a limitation
    // of the sanitizer, not of the daemon. In TSan builds this timer wakes
    // the loop twice a second so a deferred signal is handled at once, as in
    // the other builds. It does not keep the loop alive.
    uv_timer_t sanitizer_wake;
#endif
    Server* server = nullptr;
    const char* name = nullptr;
    std::function<void(Server&)> reload;
    bool stopping = false;
    void close() {
      uv_close(reinterpret_cast<uv_handle_t*>(&sigint), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&sigterm), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&sighup), nullptr);
#if defined(__SANITIZE_THREAD__)
      uv_close(reinterpret_cast<uv_handle_t*>(&sanitizer_wake), nullptr);
#endif
    }
  } signals;
  signals.server = server.get();
  signals.name = name;
  signals.reload = std::move(reload);
  auto on_signal = [](uv_signal_t* handle, int signum) {
    auto* s = static_cast<Signals*>(handle->data);
    if (s->stopping) return;
    s->stopping = true;
    notify_manager("STOPPING=1");
    log_fields(LogLevel::kInfo, s->name, "shutting down",
               {{"signal", signum == SIGINT ? "SIGINT" : "SIGTERM"}});
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
    if (s->reload) {
      notify_manager("RELOADING=1");
      log_fields(LogLevel::kInfo, s->name, "reloading the configuration", {{"signal", "SIGHUP"}});
      s->reload(*s->server);
      notify_manager("READY=1");
    } else {
      log_fields(LogLevel::kInfo, s->name, "nothing to reload", {{"signal", "SIGHUP"}});
    }
  };
  uv_signal_start(&signals.sighup, on_hup, SIGHUP);
#if defined(__SANITIZE_THREAD__)
  uv_timer_init(loop, &signals.sanitizer_wake);
  uv_timer_start(
      &signals.sanitizer_wake, [](uv_timer_t*) {}, 500, 500);
  uv_unref(reinterpret_cast<uv_handle_t*>(&signals.sanitizer_wake));
#endif
  int code = 0;
  Status st = server->start();
  if (!st.ok()) {
    log_fields(LogLevel::kError, name, "cannot start", {{"error", st.message()}});
    signals.close();
    code = 1;
  } else {
    std::string status = "STATUS=listening on";
    for (const std::string& url : urls(*server)) {
      std::printf("listening on %s\n", url.c_str());
      log_fields(LogLevel::kInfo, name, "listening", {{"url", url}});
      status += " " + url;
    }
    std::fflush(stdout);
    notify_manager("READY=1\n" + status);
    uv_run(loop, UV_RUN_DEFAULT);
  }
  server.reset();
  // Whatever the server closed while being destroyed.
  uv_run(loop, UV_RUN_DEFAULT);
  if (uv_loop_close(loop) != 0) log_write(LogLevel::kWarn, name, "the loop still had handles at exit");
  return code;
}

// What both daemons do once the command line and the configuration are
// read: take the lock of `data_dir` (one daemon per data dir; `restore` checks
// the same lock), set the log level, create the server (`Server::create(config,
// loop)`) on a loop of its own and serve() it. On SIGHUP the file at
// `config_path` is read again with `load` and given to `Server::reload`, whose
// report (applied keys, keys waiting for a restart) is logged. Returns the
// exit code.
template <typename Server, typename Config, typename Load, typename Urls>
int run_server(const char* name, const std::string& data_dir, Config config, const std::string& config_path,
               Load load, Urls urls) {
  if (Status st = lock_data_dir(data_dir); !st.ok()) return report_error(name, st, 1);
  apply_log_level(config.log.level);
  uv_loop_t loop;
  uv_loop_init(&loop);
  Result<std::unique_ptr<Server>> server = Server::create(std::move(config), &loop);
  if (!server.ok()) {
    uv_loop_close(&loop);
    return report_error(name, server.status(), 1);
  }
  return serve(name, &loop, std::move(*server), urls,
               std::function<void(Server&)>([name, config_path, load](Server& s) {
                 Result<Config> next = load(config_path);
                 if (!next.ok()) return log_reload_refused(name, next.status());
                 auto report = s.reload(*next);
                 if (!report.ok()) return log_reload_refused(name, report.status());
                 apply_log_level(next->log.level);
                 log_reload(name, report->applied, report->needs_restart);
               }));
}

}  // namespace hut::daemon

#endif  // HUTOPIA_DAEMONS_COMMON_SERVE_H_
