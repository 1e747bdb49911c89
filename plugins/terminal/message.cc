#include "message.h"

#include <cJSON.h>

#include <cmath>
#include <cstring>
#include <memory>

namespace hut::terminal {

namespace {

struct JsonFree {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};

// An integer field within [lo, hi], or -1.
int bounded_int(const cJSON* obj, const char* name, int lo, int hi) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (!cJSON_IsNumber(v)) return -1;
  double d = v->valuedouble;
  if (!std::isfinite(d) || d != std::floor(d) || d < lo || d > hi) return -1;
  return static_cast<int>(d);
}

}  // namespace

std::string parse_message(const char* json, size_t len, Message* out) {
  if (json == nullptr || out == nullptr) return "no request";
  std::unique_ptr<cJSON, JsonFree> root(cJSON_ParseWithLength(json, len));
  if (!cJSON_IsObject(root.get())) return "the request must be a JSON object";
  const cJSON* op = cJSON_GetObjectItemCaseSensitive(root.get(), "op");
  if (!cJSON_IsString(op)) return "op must be a string";
  *out = Message{};
  const char* name = op->valuestring;
  if (std::strcmp(name, "open") == 0 || std::strcmp(name, "resize") == 0) {
    out->op = name[0] == 'o' ? Op::kOpen : Op::kResize;
    out->cols = bounded_int(root.get(), "cols", kMinSize, kMaxCols);
    out->rows = bounded_int(root.get(), "rows", kMinSize, kMaxRows);
    if (out->cols < 0 || out->rows < 0)
      return "cols must be an integer of 2-500 and rows an integer of 2-300";
    return {};
  }
  if (std::strcmp(name, "input") == 0) {
    const cJSON* data = cJSON_GetObjectItemCaseSensitive(root.get(), "data");
    if (!cJSON_IsString(data)) return "data must be a string";
    size_t n = std::strlen(data->valuestring);
    if (n == 0) return "data must not be empty";
    if (n > kMaxInput) return "data is over 4096 bytes";
    out->op = Op::kInput;
    out->input.assign(data->valuestring, n);
    return {};
  }
  if (std::strcmp(name, "close") == 0) {
    out->op = Op::kClose;
    return {};
  }
  return "unknown op (open, input, resize, close)";
}

}  // namespace hut::terminal
