// What the files of the rooms part share inside it: the JSON helpers of the
// bus they use, the limits of room ops and the small argument checks.
// Internal to libhutopia/rooms.
#ifndef HUTOPIA_ROOMS_ROOMS_INTERNAL_H_
#define HUTOPIA_ROOMS_ROOMS_INTERNAL_H_

#include <cjson/cJSON.h>

#include <cmath>
#include <cstdint>
#include <string_view>

#include "bus/bus.h"
#include "rooms/rooms.h"

namespace hut::rooms {

using bus::ErrorCode;
using bus::get_field;
using bus::get_string;
using bus::json_string;

inline constexpr size_t kMaxRoomId = 64;
// Members in a page of `join` (and `members` without limit), and at most.
inline constexpr uint64_t kMembersPage = 100;
inline constexpr uint64_t kMaxMembersPage = 1000;
// Rooms in a page of `rooms`, by default and at most.
inline constexpr uint64_t kRoomsPage = 1000;
// Bytes of a room topic, so that no reply built from it nears the
// backpressure limit (a post's data: post_pipeline.cc).
inline constexpr size_t kMaxTopic = 1024;
// How long an ended mute waits when a write that may change it is in flight,
// or when clearing it failed.
inline constexpr int64_t kMuteRetryMs = 1000;

// A non-negative integer field; false when absent or not one.
inline bool get_uint(const cJSON* root, const char* name, uint64_t* out) {
  const cJSON* f = get_field(root, name);
  if (f == nullptr || !cJSON_IsNumber(f)) return false;
  double v = f->valuedouble;
  if (!(v >= 0) || v > 9007199254740991.0 || std::floor(v) != v) return false;
  *out = static_cast<uint64_t>(v);
  return true;
}

inline bool valid_room_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxRoomId) return false;
  for (unsigned char c : id)
    if (c < 0x21 || c == 0x7f || c == '/' || c == '?' || c == '#' || c == '%') return false;
  return true;
}

}  // namespace hut::rooms

#endif  // HUTOPIA_ROOMS_ROOMS_INTERNAL_H_
