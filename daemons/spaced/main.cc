// spaced: reads spaced.toml, runs a Space on a loop of its own, and shuts it
// down cleanly on SIGINT or SIGTERM (contract section 7).
#include <hutopia/config.h>
#include <hutopia/space.h>
#include <hutopia/version.h>

#include <sys/stat.h>
#include <uv.h>

#include <cstdio>
#include <optional>
#include <string>

#include "common/backup.h"
#include "common/cli.h"
#include "common/serve.h"

namespace {

const char kUsage[] =
    "usage: spaced --config <file>\n"
    "       spaced check-config --config <file>\n"
    "       spaced backup --config <file> <new folder>\n"
    "       spaced restore --config <file> <backup folder>\n"
    "\n"
    "Runs a Hutopia space: the widget bus and HTTP routes on [space] listen,\n"
    "the management API on [admin] listen, and the plugins of [space] plugins_dir.\n"
    "check-config validates the configuration and exits: 0 valid, 1 invalid.\n"
    "backup copies the SQLite store (online, while the space runs) and the other\n"
    "files of [space] data_dir into a new folder; restore puts such a folder back\n"
    "and is refused while a spaced runs on the data dir. Both exit 0 on success.\n"
    "Every key can be overridden by HUTOPIA_<SECTION>_<KEY> in the environment,\n"
    "or given as the file <section>_<key> in $CREDENTIALS_DIRECTORY (systemd).\n"
    "SIGHUP re-reads the file and applies the limits, the admin token and the\n"
    "log level, reloads plugins whose file was replaced and loads new ones;\n"
    "it logs the keys that need a restart.\n"
    "\n"
    "  --config <file>  the configuration (TOML)\n"
    "  --log-format F   text (default) or json: one JSON object per line\n"
    "  --help           this text\n"
    "  --version        the version\n";

// PRAGMA application_id of a space's SQLite store ("HUT1"), checked before a
// restore puts a file in place.
constexpr int kSpaceApplicationId = 0x48555431;

}  // namespace

int main(int argc, char** argv) {
  hut::daemon::Args args;
  if (std::optional<int> code =
          hut::daemon::parse_args(argc, argv, "spaced", kUsage, {"check-config", "backup", "restore"}, &args))
    return *code;

  // Whatever spaced writes (the store, caches, what plugins write) is for
  // its own user alone.
  ::umask(077);
  hut::Result<hut::SpaceConfig> config = hut::load_space_config(args.config_path);
  if (args.command == "check-config")
    return hut::daemon::report_check("spaced", args.config_path, config.status());
  if (!config.ok()) {
    std::fprintf(stderr, "spaced: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }

  if (args.command == "backup" || args.command == "restore") {
    constexpr std::string_view kSqlite = "sqlite://";
    if (!config->store.url.starts_with(kSqlite)) {
      std::fprintf(
          stderr, "spaced: %s works on SQLite stores; back up PostgreSQL with pg_dump (docs/operations.md)\n",
          args.command.c_str());
      return 1;
    }
    hut::daemon::DataDir data{config->space.data_dir, config->store.url.substr(kSqlite.size()),
                              kSpaceApplicationId};
    return hut::daemon::run_data_command("spaced", args, data);
  }
  // One spaced per data dir; `spaced restore` checks the same lock.
  if (hut::Status st = hut::daemon::lock_data_dir(config->space.data_dir); !st.ok()) {
    std::fprintf(stderr, "spaced: %s\n", std::string(st.message()).c_str());
    return 1;
  }

  hut::daemon::apply_log_level(config->log.level);
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto space = hut::Space::create(std::move(*config), &loop);
  if (!space.ok()) {
    std::fprintf(stderr, "spaced: %s\n", std::string(space.status().message()).c_str());
    uv_loop_close(&loop);
    return 1;
  }
  return hut::daemon::serve(
      "spaced", &loop, std::move(*space),
      [](hut::Space& s) {
        // No line for a management API the file turned off (admin.listen = "").
        std::vector<std::string> urls{s.public_url()};
        if (!s.admin_url().empty()) urls.push_back(s.admin_url());
        return urls;
      },
      std::function<void(hut::Space&)>([path = args.config_path](hut::Space& s) {
        hut::Result<hut::SpaceConfig> next = hut::load_space_config(path);
        if (!next.ok()) return hut::daemon::log_reload_refused("spaced", next.status());
        hut::Result<hut::Space::ReloadReport> report = s.reload(*next);
        if (!report.ok()) return hut::daemon::log_reload_refused("spaced", report.status());
        hut::daemon::apply_log_level(next->log.level);
        hut::daemon::log_reload("spaced", report->applied, report->needs_restart);
      }));
}
