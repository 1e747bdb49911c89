// spaced: reads spaced.toml, runs a Space on a loop of its own, and shuts it
// down cleanly on SIGINT or SIGTERM (contract section 7).
#include <hutopia/config.h>
#include <hutopia/space.h>
#include <hutopia/version.h>

#include <uv.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "common/cli.h"

namespace {

const char kUsage[] =
    "usage: spaced --config <file>\n"
    "\n"
    "Runs a Hutopia space: the widget bus and HTTP routes on [space] listen,\n"
    "the management API on [admin] listen, and the plugins of [space] plugins_dir.\n"
    "Every key can be overridden by HUTOPIA_<SECTION>_<KEY> in the environment.\n"
    "\n"
    "  --config <file>  the configuration (TOML)\n"
    "  --help           this text\n"
    "  --version        the version\n";

struct Daemon {
  uv_loop_t loop;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  hut::Space* space = nullptr;
  bool stopping = false;
};

void on_signal(uv_signal_t* handle, int signum) {
  auto* d = static_cast<Daemon*>(handle->data);
  if (d->stopping) return;
  d->stopping = true;
  std::fprintf(stderr, "spaced: %s, shutting down\n", signum == SIGINT ? "SIGINT" : "SIGTERM");
  d->space->stop([d] {
    uv_close(reinterpret_cast<uv_handle_t*>(&d->sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&d->sigterm), nullptr);
  });
}

}  // namespace

int main(int argc, char** argv) {
  hut::daemon::Args args;
  if (std::optional<int> code = hut::daemon::parse_args(argc, argv, "spaced", kUsage, {}, &args))
    return *code;

  hut::Result<hut::SpaceConfig> config = hut::load_space_config(args.config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "spaced: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }

  Daemon d;
  uv_loop_init(&d.loop);
  auto space = hut::Space::create(std::move(*config), &d.loop);
  if (!space.ok()) {
    std::fprintf(stderr, "spaced: %s\n", std::string(space.status().message()).c_str());
    uv_loop_close(&d.loop);
    return 1;
  }
  d.space = space->get();
  // Signals are caught from before the "listening on" lines: whoever reads
  // them may signal at once.
  uv_signal_init(&d.loop, &d.sigint);
  uv_signal_init(&d.loop, &d.sigterm);
  d.sigint.data = &d;
  d.sigterm.data = &d;
  uv_signal_start(&d.sigint, on_signal, SIGINT);
  uv_signal_start(&d.sigterm, on_signal, SIGTERM);
  hut::Status st = d.space->start();
  if (!st.ok()) {
    std::fprintf(stderr, "spaced: cannot start: %s\n", std::string(st.message()).c_str());
    uv_close(reinterpret_cast<uv_handle_t*>(&d.sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&d.sigterm), nullptr);
    space->reset();
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_loop_close(&d.loop);
    return 1;
  }
  std::printf("listening on %s\n", d.space->public_url().c_str());
  std::printf("listening on %s\n", d.space->admin_url().c_str());
  std::fflush(stdout);

  uv_run(&d.loop, UV_RUN_DEFAULT);
  space->reset();
  // Whatever the space closed while being destroyed.
  uv_run(&d.loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&d.loop);
  if (rc != 0) std::fprintf(stderr, "spaced: the loop still had handles at exit\n");
  return 0;
}
