#include "util/json.h"

#include <cassert>

namespace hut {

std::string json_string(std::string_view text) {
  JsonPtr s(cJSON_CreateString(std::string(text).c_str()));
  if (!s) return "\"\"";
  char* printed = cJSON_PrintUnformatted(s.get());
  if (printed == nullptr) return "null";
  std::string out(printed);
  cJSON_free(printed);
  return out;
}

bool is_json(std::string_view text) {
  const char* end = nullptr;
  JsonPtr v(cJSON_ParseWithLengthOpts(text.data(), text.size(), &end, 0));
  if (!v) return false;
  for (const char* p = end; p != nullptr && p < text.data() + text.size(); ++p)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') return false;
  return true;
}

const cJSON* get_field(const cJSON* obj, const char* name) {
  return cJSON_GetObjectItemCaseSensitive(obj, name);
}

const char* get_string(const cJSON* obj, const char* name) {
  const cJSON* item = get_field(obj, name);
  return cJSON_IsString(item) ? item->valuestring : nullptr;
}

void JsonObject::key(std::string_view name) {
  assert(name.find_first_of("\"\\") == std::string_view::npos);
  if (out_.size() > 1) out_ += ',';
  out_ += '"';
  out_ += name;
  out_ += "\":";
}

namespace {

// Ends the text being built with `close` and returns it; the builder starts
// again with `open`, empty.
std::string close_and_restart(std::string* out, char close, char open) {
  *out += close;
  std::string text;
  text.swap(*out);
  out->push_back(open);
  return text;
}

}  // namespace

JsonObject& JsonObject::str(std::string_view name, std::string_view value) {
  key(name);
  out_ += json_string(value);
  return *this;
}

JsonObject& JsonObject::null(std::string_view name) {
  key(name);
  out_ += "null";
  return *this;
}

JsonObject& JsonObject::raw(std::string_view name, std::string_view json) {
  key(name);
  out_ += json.empty() ? std::string_view("null") : json;
  return *this;
}

JsonObject& JsonObject::members(std::string_view object_json) {
  if (object_json.size() >= 2 && object_json.front() == '{' && object_json.back() == '}')
    object_json = object_json.substr(1, object_json.size() - 2);
  if (object_json.empty()) return *this;
  if (out_.size() > 1) out_ += ',';
  out_ += object_json;
  return *this;
}

std::string JsonObject::done() { return close_and_restart(&out_, '}', '{'); }

void JsonArray::next() {
  if (out_.size() > 1) out_ += ',';
}

JsonArray& JsonArray::str(std::string_view value) {
  next();
  out_ += json_string(value);
  return *this;
}

JsonArray& JsonArray::raw(std::string_view json) {
  next();
  out_ += json.empty() ? std::string_view("null") : json;
  return *this;
}

std::string JsonArray::done() { return close_and_restart(&out_, ']', '['); }

}  // namespace hut
