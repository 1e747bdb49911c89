// JSON for every part: one owner type for cJSON trees (cJSON parses), and one
// writer for the JSON the space sends, which splices JSON text it already has
// (a plugin's data, a frame's ref, a member list) without parsing it again.
//
// Thread: pure functions and values; any thread.
#ifndef HUTOPIA_UTIL_JSON_H_
#define HUTOPIA_UTIL_JSON_H_

#include <cjson/cJSON.h>

#include <concepts>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace hut {

struct JsonDeleter {
  void operator()(cJSON* json) const { cJSON_Delete(json); }
};
// One owner for a cJSON tree.
using JsonPtr = std::unique_ptr<cJSON, JsonDeleter>;

// JSON text of a string (quoted and escaped).
std::string json_string(std::string_view text);
// True when `text` is one complete JSON value (whitespace around it allowed).
bool is_json(std::string_view text);

// Field readers: nullptr when absent or of another type.
const cJSON* get_field(const cJSON* obj, const char* name);
const char* get_string(const cJSON* obj, const char* name);

// Writes one JSON object, member by member, in the order given:
//   JsonObject().str("op", "widget").str("plugin", name).raw("data", data_json).done()
// Names are written as given: they must be plain ASCII without quotes or
// backslashes (the space's own names, never input).
class JsonObject {
 public:
  JsonObject() : out_("{") {}

  JsonObject& str(std::string_view name, std::string_view value);
  template <std::integral T>
  JsonObject& num(std::string_view name, T value) {
    key(name);
    if constexpr (std::same_as<T, bool>)
      out_ += value ? "true" : "false";
    else
      out_ += std::to_string(value);
    return *this;
  }
  JsonObject& boolean(std::string_view name, bool value) { return num(name, value); }
  JsonObject& null(std::string_view name);
  // A member whose value is JSON text already, spliced as it is: the caller
  // vouches that `json` is one JSON value (checked on arrival, or written by
  // this class). Empty `json` writes null.
  JsonObject& raw(std::string_view name, std::string_view json);
  // The members of an object's text ("{...}"), or of a member list ("\"a\":1,..."),
  // spliced after the ones written so far; nothing for "{}" or "".
  JsonObject& members(std::string_view object_json);

  // The object's text; the writer is empty afterwards.
  std::string done();

 private:
  void key(std::string_view name);
  std::string out_;
};

// Writes one JSON array, value by value: JsonArray().str("a").raw(obj).done().
class JsonArray {
 public:
  JsonArray() : out_("[") {}

  JsonArray& str(std::string_view value);
  // A value that is JSON text already, spliced as it is (see JsonObject::raw).
  JsonArray& raw(std::string_view json);

  // The array's text; the writer is empty afterwards.
  std::string done();

 private:
  void next();
  std::string out_;
};

}  // namespace hut

#endif  // HUTOPIA_UTIL_JSON_H_
