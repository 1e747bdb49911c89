#include "util/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

namespace hut {
namespace {

LogLevel initial_level() {
  const char* env = std::getenv("HUTOPIA_LOG_LEVEL");
  LogLevel level = LogLevel::kInfo;
  if (env != nullptr) parse_log_level(env, &level);
  return level;
}

std::atomic<int>& level_store() {
  static std::atomic<int> level{static_cast<int>(initial_level())};
  return level;
}

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

}  // namespace

void set_log_level(LogLevel level) { level_store().store(static_cast<int>(level)); }
LogLevel log_level() { return static_cast<LogLevel>(level_store().load()); }

bool parse_log_level(std::string_view name, LogLevel* out) {
  if (name == "debug")
    *out = LogLevel::kDebug;
  else if (name == "info")
    *out = LogLevel::kInfo;
  else if (name == "warn")
    *out = LogLevel::kWarn;
  else if (name == "error")
    *out = LogLevel::kError;
  else
    return false;
  return true;
}

void log_write(LogLevel level, std::string_view component, std::string_view message) {
  if (static_cast<int>(level) < level_store().load()) return;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char stamp[96];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ts.tv_nsec / 1000000));
  std::string line;
  line.reserve(64 + component.size() + message.size());
  line += stamp;
  line += ' ';
  line += level_name(level);
  line += ' ';
  line += component;
  line += ": ";
  line += message;
  line += '\n';
  ssize_t ignored = ::write(2, line.data(), line.size());
  (void)ignored;
}

void log_printf(LogLevel level, std::string_view component, const char* fmt, ...) {
  if (static_cast<int>(level) < level_store().load()) return;
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  log_write(level, component, buf);
}

}  // namespace hut
