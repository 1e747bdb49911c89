#include "token/json.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace hut::token_json {

namespace {

bool has_nul_escape(std::string_view text) {
  for (size_t i = text.find('\\'); i != std::string_view::npos; i = text.find('\\', i + 2)) {
    if (i + 1 >= text.size()) break;
    if (text[i + 1] != 'u' || i + 6 > text.size()) continue;
    if (text.substr(i + 2, 4) == "0000") return true;
  }
  return false;
}

bool has_duplicate_members(const cJSON* object) {
  std::vector<std::string_view> names;
  for (const cJSON* item = object->child; item != nullptr; item = item->next) {
    names.emplace_back(item->string != nullptr ? item->string : "");
  }
  std::sort(names.begin(), names.end());
  return std::adjacent_find(names.begin(), names.end()) != names.end();
}

}  // namespace

JsonPtr parse_strict(std::string_view text) {
  if (text.find('\0') != std::string_view::npos || has_nul_escape(text)) return nullptr;
  const char* end = nullptr;
  JsonPtr json(cJSON_ParseWithLengthOpts(text.data(), text.size(), &end, false));
  if (json == nullptr || end == nullptr) return nullptr;
  for (const char* p = end; p < text.data() + text.size(); ++p) {
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') return nullptr;
  }
  if (cJSON_IsObject(json.get()) && has_duplicate_members(json.get())) return nullptr;
  return json;
}

std::string print(const cJSON* json) {
  char* text = cJSON_PrintUnformatted(json);
  if (text == nullptr) return {};
  std::string out(text);
  cJSON_free(text);
  return out;
}

}  // namespace hut::token_json
