#include "cli.h"

#include <hutopia/log.h>
#include <hutopia/version.h>

#include <cstdio>

#include "backup.h"

namespace hut::daemon {

std::optional<int> parse_args(int argc, char** argv, const char* name, const char* usage,
                              std::initializer_list<std::string_view> commands, Args* out) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (arg == "--version") {
      std::printf("%s %s\n", name, HUT_VERSION_STRING);
      return 0;
    }
    bool is_command = false;
    for (std::string_view c : commands) is_command = is_command || (i == 1 && arg == c);
    if (is_command) {
      out->command = arg;
    } else if ((arg == "--log-format" && i + 1 < argc) || arg.rfind("--log-format=", 0) == 0) {
      std::string value = arg == "--log-format" ? std::string(argv[++i]) : arg.substr(13);
      LogFormat format;
      if (!parse_log_format(value, &format)) {
        std::fprintf(stderr, "%s: --log-format takes text or json, not %s\n%s", name, value.c_str(), usage);
        return 2;
      }
      set_log_format(format);
    } else if (arg == "--config" && i + 1 < argc) {
      out->config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      out->config_path = arg.substr(9);
    } else if (!out->command.empty() && !arg.starts_with("-")) {
      out->operands.push_back(arg);
    } else {
      std::fprintf(stderr, "%s: unknown argument %s\n%s", name, arg.c_str(), usage);
      return 2;
    }
  }
  if (out->config_path.empty()) {
    std::fprintf(stderr, "%s: --config <file> is required\n%s", name, usage);
    return 2;
  }
  return std::nullopt;
}

int report_error(const char* name, const Status& st, int code) {
  std::fprintf(stderr, "%s: %s\n", name, std::string(st.message()).c_str());
  return code;
}

int report_check(const char* name, const std::string& path, const Status& loaded) {
  if (!loaded.ok()) return report_error(name, loaded, 1);
  std::printf("%s: %s: configuration is valid\n", name, path.c_str());
  return 0;
}

void apply_log_level(const std::string& level) {
  LogLevel l;
  if (parse_log_level(level, &l)) set_log_level(l);
}

void log_reload(const char* name, const std::vector<std::string>& applied,
                const std::vector<std::string>& needs_restart) {
  auto join = [](const std::vector<std::string>& keys) {
    std::string out;
    for (const std::string& k : keys) out += (out.empty() ? "" : ",") + k;
    return out;
  };
  std::string a = join(applied);
  std::string r = join(needs_restart);
  log_fields(LogLevel::kInfo, name, "configuration reloaded",
             {{"applied", a.empty() ? "none" : a}, {"needs_restart", r.empty() ? "none" : r}});
  if (!needs_restart.empty())
    log_fields(LogLevel::kWarn, name, "these keys changed but take effect only after a restart",
               {{"keys", r}});
}

void log_reload_refused(const char* name, const Status& st) {
  log_fields(LogLevel::kError, name, "reload refused; the running configuration stays",
             {{"error", st.message()}});
}

int run_store_command(const char* name, const Args& args, const std::string& dir,
                      const std::string& store_url, int application_id) {
  constexpr std::string_view kSqlite = "sqlite://";
  if (!store_url.starts_with(kSqlite)) {
    std::fprintf(stderr,
                 "%s: %s works on SQLite stores; back up PostgreSQL with pg_dump (docs/operations.md)\n",
                 name, args.command.c_str());
    return 1;
  }
  return run_data_command(name, args, DataDir{dir, store_url.substr(kSqlite.size()), application_id});
}

int run_data_command(const char* name, const Args& args, const DataDir& data) {
  if (args.operands.size() != 1) {
    std::fprintf(stderr, "%s: %s takes one folder: %s %s --config <file> <folder>\n", name,
                 args.command.c_str(), name, args.command.c_str());
    return 2;
  }
  const std::string& folder = args.operands[0];
  Status st = args.command == "backup" ? backup(data, folder) : restore(data, folder);
  if (!st.ok()) {
    std::fprintf(stderr, "%s: %s: %s\n", name, args.command.c_str(), std::string(st.message()).c_str());
    return 1;
  }
  std::printf("%s: %s %s\n", name, args.command == "backup" ? "backed up into" : "restored from",
              folder.c_str());
  return 0;
}

}  // namespace hut::daemon
