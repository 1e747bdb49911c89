// What hut::Client reads from and writes to the wire: the JSON helpers, the
// readers of the space's frames and answers (each a table of fields), the
// space's error codes and the relay's HTTP errors as Status values, and the
// frame of a message fetched again after a reconnect.
// Thread safety: pure functions; any thread.
#ifndef HUTOPIA_CLIENT_WIRE_H_
#define HUTOPIA_CLIENT_WIRE_H_

#include <cjson/cJSON.h>
#include <hutopia/client.h>

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/transport.h"

namespace hut::client {

struct JsonDeleter {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};
using Json = std::unique_ptr<cJSON, JsonDeleter>;

std::string print(const cJSON* j);
// The string, number or boolean `name` of object `o`; "", 0 or false when
// it is missing or of another type.
std::string str(const cJSON* o, const char* name);
int64_t num(const cJSON* o, const char* name);
bool boolean(const cJSON* o, const char* name);
// The JSON text of `name`; "" when missing.
std::string json_field(const cJSON* o, const char* name);

User user_of(const cJSON* o);

// Reads field `name` of `o` into `v`: a string, a number, a boolean or a
// user object; a string whose name ends in '*' keeps the field's JSON text.
void read_field(const cJSON* o, std::string_view name, std::string& v);
void read_field(const cJSON* o, std::string_view name, int64_t& v);
void read_field(const cJSON* o, std::string_view name, bool& v);
void read_field(const cJSON* o, std::string_view name, User& v);

// Fills members of `out` from the fields of `o`: `names` lists the fields,
// separated by spaces, in the order of `members`.
template <class T, class... V>
void read_fields(const cJSON* o, T* out, std::string_view names, V T::*... members) {
  size_t at = 0;
  auto next = [&] {
    size_t end = std::min(names.find(' ', at), names.size());
    std::string_view name = names.substr(at, end - at);
    at = end + 1;
    return name;
  };
  (read_field(o, next(), out->*members), ...);
}

// Each element of array `name` of `o`, read by `read`.
template <class T, class Read>
std::vector<T> array_of(const cJSON* o, const char* name, Read read) {
  std::vector<T> out;
  const cJSON* arr = cJSON_GetObjectItemCaseSensitive(o, name);
  const cJSON* it = nullptr;
  if (cJSON_IsArray(arr)) cJSON_ArrayForEach(it, arr) out.push_back(read(it));
  return out;
}

Message message_of(const cJSON* o);
MemberInfo member_of(const cJSON* o);
RoomInfo room_of(const cJSON* o);
// An event frame (any op but welcome, ok and error); `text` is the frame.
Event event_of(const cJSON* o, std::string_view text);
// The welcome frame; `text` is the frame.
Welcome welcome_of(const cJSON* o, std::string_view text);
JoinResult join_result_of(const cJSON* o);
SpaceInfo space_info_of(const cJSON* o);

// The frame of message `m` of `room` as the space sends it live.
std::string message_frame(const std::string& room, const Message& m);

// A space's error {code, message} as a Status whose message is "<code>: <message>".
Status status_of_wire(const std::string& code, const std::string& message);
// The relay's {"error":{"code","message"}} answer as a Status.
Status http_error(const HttpReply& r, const std::string& what);

std::string trim_slash(std::string s);

}  // namespace hut::client

#endif  // HUTOPIA_CLIENT_WIRE_H_
