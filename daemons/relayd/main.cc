// relayd: reads relayd.toml, runs a Relay on a loop of its own and shuts it
// down cleanly on SIGINT or SIGTERM (contract section 7). `relayd rotate-key`
// makes a new signing key; a running relayd signs with it from its next
// token on and keeps publishing the old one until its tokens expired.
#include <hutopia/config.h>
#include <hutopia/version.h>

#include <uv.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <optional>
#include <string>

#include "common/cli.h"
#include "relay.h"

namespace {

const char kUsage[] =
    "usage: relayd --config <file>\n"
    "       relayd rotate-key --config <file>\n"
    "\n"
    "Runs a Hutopia relay: accounts, login sessions, the space directory and\n"
    "the relay tokens that let users into spaces, on [relay] listen.\n"
    "rotate-key makes a new signing key; the old one stays published until the\n"
    "tokens it signed have expired.\n"
    "Every key can be overridden by HUTOPIA_<SECTION>_<KEY> in the environment.\n"
    "\n"
    "  --config <file>  the configuration (TOML)\n"
    "  --help           this text\n"
    "  --version        the version\n";

struct Daemon {
  uv_loop_t loop;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  hut::relay::Relay* relay = nullptr;
  bool stopping = false;
};

void close_signals(Daemon* d) {
  uv_close(reinterpret_cast<uv_handle_t*>(&d->sigint), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&d->sigterm), nullptr);
}

void on_signal(uv_signal_t* handle, int signum) {
  auto* d = static_cast<Daemon*>(handle->data);
  if (d->stopping) return;
  d->stopping = true;
  std::fprintf(stderr, "relayd: %s, shutting down\n", signum == SIGINT ? "SIGINT" : "SIGTERM");
  d->relay->stop([d] { close_signals(d); });
}

}  // namespace

int main(int argc, char** argv) {
  hut::daemon::Args args;
  if (std::optional<int> code = hut::daemon::parse_args(argc, argv, "relayd", kUsage, {"rotate-key"}, &args))
    return *code;
  const bool rotate = args.command == "rotate-key";
  hut::Result<hut::RelayConfig> config = hut::load_relay_config(args.config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "relayd: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }

  if (rotate) {
    hut::relay::RelayKeys keys(config->relay.data_dir + "/keys", config->relay.token_ttl);
    auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
    hut::Result<std::string> kid = keys.rotate(now.count());
    if (!kid.ok()) {
      std::fprintf(stderr, "relayd: %s\n", std::string(kid.status().message()).c_str());
      return 1;
    }
    std::printf("new signing key %s\n", kid->c_str());
    return 0;
  }

  Daemon d;
  uv_loop_init(&d.loop);
  auto relay = hut::relay::Relay::create(std::move(*config), &d.loop);
  if (!relay.ok()) {
    std::fprintf(stderr, "relayd: %s\n", std::string(relay.status().message()).c_str());
    uv_loop_close(&d.loop);
    return 1;
  }
  d.relay = relay->get();
  uv_signal_init(&d.loop, &d.sigint);
  uv_signal_init(&d.loop, &d.sigterm);
  d.sigint.data = &d;
  d.sigterm.data = &d;
  uv_signal_start(&d.sigint, on_signal, SIGINT);
  uv_signal_start(&d.sigterm, on_signal, SIGTERM);
  hut::Status st = d.relay->start();
  if (!st.ok()) {
    std::fprintf(stderr, "relayd: cannot start: %s\n", std::string(st.message()).c_str());
    close_signals(&d);
    relay->reset();
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_loop_close(&d.loop);
    return 1;
  }
  std::printf("listening on %s\n", d.relay->public_url().c_str());
  std::fflush(stdout);

  uv_run(&d.loop, UV_RUN_DEFAULT);
  relay->reset();
  uv_run(&d.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&d.loop) != 0) std::fprintf(stderr, "relayd: the loop still had handles at exit\n");
  return 0;
}
