// The command line both daemons share: `--config <file>` (or --config=<file>),
// `--log-format text|json` (set at once), `--help`, `--version`, and an
// optional command word first (relayd's `rotate-key`).
#ifndef HUTOPIA_DAEMONS_COMMON_CLI_H_
#define HUTOPIA_DAEMONS_COMMON_CLI_H_

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <hutopia/status.h>

namespace hut::daemon {

struct Args {
  std::string config_path;
  std::string command;                // one of `commands`, or empty
  std::vector<std::string> operands;  // words after the command that are not options
};

// Parses argv into *out. Returns std::nullopt when the daemon should go on;
// otherwise the exit code it should return with at once: 0 after --help or
// --version (printed to stdout), 2 after a usage error (printed to stderr
// with the usage). `name` prefixes messages; `commands` are the words allowed
// as the first argument; other words after a command are its operands (the
// caller checks their number), and without a command they are an error.
std::optional<int> parse_args(int argc, char** argv, const char* name, const char* usage,
                              std::initializer_list<std::string_view> commands, Args* out);

// The answer of `check-config`: prints "<name>: <path>: configuration is
// valid" to stdout and returns 0, or prints the loader's message (file, line
// and key) to stderr and returns 1.
int report_check(const char* name, const std::string& path, const Status& loaded);
// Prints "<name>: <message of st>" to stderr and returns `code`.
int report_error(const char* name, const Status& st, int code);

// Sets the log level from [log] level (a valid name; the loader checked it).
void apply_log_level(const std::string& level);
// The log lines of a reload: the keys applied and those waiting for a
// restart; or why the new configuration was refused.
void log_reload(const char* name, const std::vector<std::string>& applied,
                const std::vector<std::string>& needs_restart);
void log_reload_refused(const char* name, const Status& st);

struct DataDir;
// `backup OUT` and `restore IN` for a daemon whose data is `data`: checks
// that one operand was given (2 otherwise), runs it, prints what was done
// and returns 0, or the error and 1.
int run_data_command(const char* name, const Args& args, const DataDir& data);
// The same for a daemon whose database is `store_url` in the data dir `dir`:
// a sqlite:// file is backed up or restored with the folder, any other store
// refused (1; PostgreSQL has pg_dump).
int run_store_command(const char* name, const Args& args, const std::string& dir,
                      const std::string& store_url, int application_id);

}  // namespace hut::daemon

#endif  // HUTOPIA_DAEMONS_COMMON_CLI_H_
