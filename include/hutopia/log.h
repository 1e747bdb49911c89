// libhutopia's log: stderr, one line per record, for a program that embeds a
// space (and for the daemons). Two formats:
//   text: "2026-11-23T10:00:00.123Z info space: text key=value key=value"
//   json: {"time":"2026-11-23T10:00:00.123Z","level":"info","component":"space","msg":"text",
//          "fields":{"key":"value"}}
// Records never carry secrets (tokens, passwords, cookies, credentials).
// Thread safety: any thread; each record is written with one write(2).
#ifndef HUTOPIA_LOG_H_
#define HUTOPIA_LOG_H_

#include <hutopia/export.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace hut {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class LogFormat { kText = 0, kJson = 1 };

// Records below the level are dropped. Default: kInfo, or HUTOPIA_LOG_LEVEL
// (debug, info, warn, error) when set.
HUT_EXPORT void set_log_level(LogLevel level);
HUT_EXPORT LogLevel log_level();
HUT_EXPORT bool parse_log_level(std::string_view name, LogLevel* out);
HUT_EXPORT const char* log_level_name(LogLevel level);

// Default: text.
HUT_EXPORT void set_log_format(LogFormat format);
HUT_EXPORT LogFormat log_format();
HUT_EXPORT bool parse_log_format(std::string_view name, LogFormat* out);

using LogField = std::pair<std::string_view, std::string_view>;

// `component` names the part ("space", "bus", "plugin echo").
HUT_EXPORT void log_write(LogLevel level, std::string_view component, std::string_view message);
HUT_EXPORT void log_fields(LogLevel level, std::string_view component, std::string_view message,
                           std::initializer_list<LogField> fields);
HUT_EXPORT void log_printf(LogLevel level, std::string_view component, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

// While one lives, every line its thread logs carries `request_id=<id>`
// (unless the line names a request_id itself): the lines written while a
// request is handled name it, whichever part writes them. Scopes nest; the
// id must outlive the scope.
class HUT_EXPORT LogRequestScope {
 public:
  explicit LogRequestScope(const std::string& request_id);
  ~LogRequestScope();
  LogRequestScope(const LogRequestScope&) = delete;
  LogRequestScope& operator=(const LogRequestScope&) = delete;

 private:
  const std::string* previous_;
};

}  // namespace hut

#endif  // HUTOPIA_LOG_H_
