#include "plugins/toml_json.h"

#include <cJSON.h>

#include <toml++/toml.h>
#include <cmath>
#include <filesystem>
#include <sstream>

namespace hut {
namespace {

// Integers beyond 2^53 do not survive a double, so they go out as their
// decimal text.
cJSON* integer_to_json(int64_t v) {
  constexpr int64_t kExact = int64_t{1} << 53;
  if (v > -kExact && v < kExact) return cJSON_CreateNumber(static_cast<double>(v));
  return cJSON_CreateRaw(std::to_string(v).c_str());
}

template <typename T>
cJSON* text_of(const T& v) {
  std::ostringstream ss;
  ss << v;
  return cJSON_CreateString(ss.str().c_str());
}

cJSON* node_to_json(const toml::node& node);

cJSON* table_to_json(const toml::table& table) {
  cJSON* obj = cJSON_CreateObject();
  for (const auto& [key, value] : table) {
    std::string k(key.str());
    cJSON_AddItemToObject(obj, k.c_str(), node_to_json(value));
  }
  return obj;
}

cJSON* node_to_json(const toml::node& node) {
  if (const auto* t = node.as_table()) return table_to_json(*t);
  if (const auto* a = node.as_array()) {
    cJSON* arr = cJSON_CreateArray();
    for (const auto& item : *a) cJSON_AddItemToArray(arr, node_to_json(item));
    return arr;
  }
  if (const auto* s = node.as_string()) return cJSON_CreateString(s->get().c_str());
  if (const auto* i = node.as_integer()) return integer_to_json(i->get());
  if (const auto* f = node.as_floating_point()) {
    double d = f->get();
    return std::isfinite(d) ? cJSON_CreateNumber(d) : cJSON_CreateNull();
  }
  if (const auto* b = node.as_boolean()) return cJSON_CreateBool(b->get());
  if (const auto* d = node.as_date()) return text_of(d->get());
  if (const auto* t = node.as_time()) return text_of(t->get());
  if (const auto* dt = node.as_date_time()) return text_of(dt->get());
  return cJSON_CreateNull();
}

}  // namespace

Result<std::string> toml_file_to_json(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::string("{}");
  toml::table table;
#if TOML_EXCEPTIONS
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream ss;
    ss << path << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    return Status::invalid_argument(ss.str());
  }
#else
  toml::parse_result parsed = toml::parse_file(path);
  if (!parsed) {
    std::ostringstream ss;
    ss << path << ":" << parsed.error().source().begin.line << ":" << parsed.error().source().begin.column
       << ": " << parsed.error().description();
    return Status::invalid_argument(ss.str());
  }
  table = std::move(parsed).table();
#endif
  cJSON* json = table_to_json(table);
  char* text = cJSON_PrintUnformatted(json);
  cJSON_Delete(json);
  if (text == nullptr) return Status::resource_exhausted("out of memory");
  std::string out(text);
  cJSON_free(text);
  return out;
}

}  // namespace hut
