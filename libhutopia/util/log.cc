#include "util/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "util/table.h"

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

std::atomic<int>& format_store() {
  static std::atomic<int> format{static_cast<int>(LogFormat::kText)};
  return format;
}

// A JSON string literal of `text` (control characters escaped; bytes that
// are not UTF-8 are left to the reader).
void append_json(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

// A text field value: bare when it has no space, quote or control character.
void append_text_value(std::string& out, std::string_view value) {
  bool bare = !value.empty();
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || c == '"' || c == '=' || u == 0x7f) bare = false;
  }
  if (bare) {
    out += value;
  } else {
    append_json(out, value);
  }
}

// The request the current thread works on, if any (LogRequestScope).
thread_local const std::string* current_request = nullptr;

}  // namespace

constexpr std::pair<LogLevel, const char*> kLevelNames[] = {{LogLevel::kDebug, "debug"},
                                                            {LogLevel::kInfo, "info"},
                                                            {LogLevel::kWarn, "warn"},
                                                            {LogLevel::kError, "error"}};

const char* log_level_name(LogLevel level) { return util::second_of(kLevelNames, level).value_or("?"); }

void set_log_level(LogLevel level) { level_store().store(static_cast<int>(level)); }
LogLevel log_level() { return static_cast<LogLevel>(level_store().load()); }

void set_log_format(LogFormat format) { format_store().store(static_cast<int>(format)); }
LogFormat log_format() { return static_cast<LogFormat>(format_store().load()); }

bool parse_log_format(std::string_view name, LogFormat* out) {
  if (name == "text")
    *out = LogFormat::kText;
  else if (name == "json")
    *out = LogFormat::kJson;
  else
    return false;
  return true;
}

bool parse_log_level(std::string_view name, LogLevel* out) {
  for (const auto& [level, level_name] : kLevelNames) {
    if (name == level_name) {
      *out = level;
      return true;
    }
  }
  return false;
}

LogRequestScope::LogRequestScope(const std::string& request_id) : previous_(current_request) {
  current_request = &request_id;
}

LogRequestScope::~LogRequestScope() { current_request = previous_; }

void log_fields(LogLevel level, std::string_view component, std::string_view message,
                std::initializer_list<LogField> given) {
  if (static_cast<int>(level) < level_store().load()) return;
  // The current request's id leads the fields unless the line names one.
  const std::string* request_id = current_request;
  if (request_id != nullptr && request_id->empty()) request_id = nullptr;
  for (const auto& f : given)
    if (f.first == "request_id") request_id = nullptr;
  auto each_field = [&](auto&& fn) {
    if (request_id != nullptr) fn(std::string_view("request_id"), std::string_view(*request_id));
    for (const auto& [k, v] : given) fn(k, v);
  };
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char stamp[96];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ts.tv_nsec / 1000000));
  std::string line;
  line.reserve(96 + component.size() + message.size());
  if (log_format() == LogFormat::kJson) {
    line += "{\"time\":";
    append_json(line, stamp);
    line += ",\"level\":";
    append_json(line, log_level_name(level));
    line += ",\"component\":";
    append_json(line, component);
    line += ",\"msg\":";
    append_json(line, message);
    line += ",\"fields\":{";
    bool first = true;
    each_field([&](std::string_view k, std::string_view v) {
      if (!first) line += ',';
      first = false;
      append_json(line, k);
      line += ':';
      append_json(line, v);
    });
    line += "}}";
  } else {
    line += stamp;
    line += ' ';
    line += log_level_name(level);
    line += ' ';
    line += component;
    line += ": ";
    // One line per record: a message's own line breaks become spaces.
    for (char c : message) line += (c == '\n' || c == '\r') ? ' ' : c;
    each_field([&](std::string_view k, std::string_view v) {
      line += ' ';
      line += k;
      line += '=';
      append_text_value(line, v);
    });
  }
  line += '\n';
  ssize_t ignored = ::write(2, line.data(), line.size());
  (void)ignored;
}

void log_write(LogLevel level, std::string_view component, std::string_view message) {
  log_fields(level, component, message, {});
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
