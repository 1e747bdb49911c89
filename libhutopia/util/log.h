// Logging to stderr, one line per record: "2026-11-23T10:00:00.123Z info space: text".
// Thread safety: any thread; each record is written with one write(2).
#ifndef HUTOPIA_UTIL_LOG_H_
#define HUTOPIA_UTIL_LOG_H_

#include <cstdarg>
#include <string_view>

namespace hut {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Records below `level` are dropped. Default: kInfo, or HUTOPIA_LOG_LEVEL
// (debug, info, warn, error) when set.
void set_log_level(LogLevel level);
LogLevel log_level();
bool parse_log_level(std::string_view name, LogLevel* out);

// `component` names the part ("space", "bus", "plugin echo").
void log_write(LogLevel level, std::string_view component, std::string_view message);
void log_printf(LogLevel level, std::string_view component, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

}  // namespace hut

#endif  // HUTOPIA_UTIL_LOG_H_
