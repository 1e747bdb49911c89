// relayd: reads relayd.toml, runs a Relay on a loop of its own and shuts it
// down cleanly on SIGINT or SIGTERM (contract section 7). `relayd rotate-key`
// makes a new signing key; a running relayd signs with it from its next
// token on and keeps publishing the old one until its tokens expired.
#include <hutopia/config.h>
#include <hutopia/relay.h>
#include <hutopia/version.h>

#include <cstdio>
#include <optional>
#include <string>

#include "common/backup.h"
#include "common/cli.h"
#include "common/serve.h"

namespace {

const char kUsage[] =
    "usage: relayd --config <file>\n"
    "       relayd rotate-key --config <file>\n"
    "       relayd check-config --config <file>\n"
    "       relayd backup --config <file> <new folder>\n"
    "       relayd restore --config <file> <backup folder>\n"
    "\n"
    "Runs a Hutopia relay: accounts, login sessions, the space directory and\n"
    "the relay tokens that let users into spaces, on [relay] listen.\n"
    "rotate-key makes a new signing key; the old one stays published until the\n"
    "tokens it signed have expired.\n"
    "check-config validates the configuration and exits: 0 valid, 1 invalid.\n"
    "backup copies relay.db (online, while the relay runs) and the signing keys\n"
    "into a new folder; restore puts such a folder back and is refused while a\n"
    "relayd runs on the data dir. Both exit 0 on success.\n"
    "Every key can be overridden by HUTOPIA_<SECTION>_<KEY> in the environment,\n"
    "or given as the file <section>_<key> in $CREDENTIALS_DIRECTORY (systemd).\n"
    "SIGHUP re-reads the file and applies the limits, the admin token and the\n"
    "log level; it logs the keys that need a restart.\n"
    "\n"
    "  --config <file>  the configuration (TOML)\n"
    "  --log-format F   text (default) or json: one JSON object per line\n"
    "  --help           this text\n"
    "  --version        the version\n";

}  // namespace

int main(int argc, char** argv) {
  hut::daemon::Args args;
  if (std::optional<int> code = hut::daemon::parse_args(
          argc, argv, "relayd", kUsage, {"rotate-key", "check-config", "backup", "restore"}, &args))
    return *code;
  const bool rotate = args.command == "rotate-key";
  hut::Result<hut::RelayConfig> config = hut::load_relay_config(args.config_path);
  if (args.command == "check-config")
    return hut::daemon::report_check("relayd", args.config_path, config.status());
  if (!config.ok()) return hut::daemon::report_error("relayd", config.status(), 2);

  if (rotate) {
    hut::Result<std::string> kid = hut::rotate_relay_signing_key(*config);
    if (!kid.ok()) return hut::daemon::report_error("relayd", kid.status(), 1);
    std::printf("new signing key %s\n", kid->c_str());
    return 0;
  }
  if (args.command == "backup" || args.command == "restore") {
    return hut::daemon::run_store_command("relayd", args, config->relay.data_dir,
                                          hut::relay_store_url(*config), 0);
  }
  const std::string data_dir = config->relay.data_dir;  // config is moved below
  return hut::daemon::run_server<hut::Relay>(
      "relayd", data_dir, std::move(*config), args.config_path,
      [](const std::string& path) { return hut::load_relay_config(path); },
      [](hut::Relay& r) {
        // The admin listener's line differs from "listening on", which
        // names the public URL alone (scripts read the first such line).
        std::printf("admin listener on %s\n", r.admin_url().c_str());
        return std::vector<std::string>{r.public_url()};
      });
}
