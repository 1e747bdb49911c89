// spaced: reads spaced.toml, runs a Space on a loop of its own, and shuts it
// down cleanly on SIGINT or SIGTERM (contract section 7).
#include <hutopia/config.h>
#include <hutopia/space.h>
#include <hutopia/version.h>

#include <sys/stat.h>

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
  if (!config.ok()) return hut::daemon::report_error("spaced", config.status(), 2);

  if (args.command == "backup" || args.command == "restore") {
    return hut::daemon::run_store_command("spaced", args, config->space.data_dir, config->store.url,
                                          kSpaceApplicationId);
  }
  const std::string data_dir = config->space.data_dir;  // config is moved below
  return hut::daemon::run_server<hut::Space>(
      "spaced", data_dir, std::move(*config), args.config_path,
      [](const std::string& path) { return hut::load_space_config(path); },
      [](hut::Space& s) {
        // No line for a management API the file turned off (admin.listen = "").
        std::vector<std::string> urls{s.public_url()};
        if (!s.admin_url().empty()) urls.push_back(s.admin_url());
        return urls;
      });
}
