// The rooms calls of plugins (ABI 1.1): a post as the plugin's bot user
// through the one post pipeline, a history page, the members JSON; results
// are HUT_* codes.
#include <memory>
#include <utility>

#include "rooms/rooms_internal.h"

namespace hut::rooms {
namespace {

// The HUT_* result of a post the pipeline refused.
int plugin_result(ErrorCode code) {
  static constexpr std::pair<ErrorCode, int> kResult[] = {
      {ErrorCode::kBadRequest, HUT_EINVAL},  {ErrorCode::kNotFound, HUT_ENOENT},
      {ErrorCode::kTooLarge, HUT_ETOOBIG},   {ErrorCode::kForbidden, HUT_EPERM},
      {ErrorCode::kMuted, HUT_EPERM},        {ErrorCode::kRateLimited, HUT_EPERM},
      {ErrorCode::kUnavailable, HUT_ESTATE},
  };
  for (const auto& [c, rc] : kResult)
    if (c == code) return rc;
  return HUT_EINTERNAL;
}

}  // namespace

int Rooms::plugin_post(std::string_view plugin, std::string_view room, std::string_view text,
                       std::string_view data_json, PluginServices::RoomDone done) {
  Submission s;
  s.room = std::string(room);
  s.from.id = "plugin:" + std::string(plugin);
  s.from.name = std::string(plugin);
  s.text = std::string(text);
  s.data_json = std::string(data_json);
  s.plugin = std::string(plugin);
  // A refusal comes back before submit returns and is the return value; a
  // stored post (or a failed store) goes to `done`.
  auto inside = std::make_shared<bool>(true);
  int rc = HUT_OK;
  submit(std::move(s), [inside, &rc, done](const Outcome& o) {
    if (*inside && !o.ok) {
      rc = plugin_result(o.code);
      return;
    }
    if (!done) return;
    if (!o.ok) return done(o.code == bus::ErrorCode::kNotFound ? HUT_ENOENT : HUT_EIO, std::string());
    done(HUT_OK, R"({"seq":)" + std::to_string(o.seq) + R"(,"ts":)" + std::to_string(o.ts) + '}');
  });
  *inside = false;
  return rc;
}

int Rooms::plugin_history(std::string_view room, uint64_t before, int limit, PluginServices::RoomDone done) {
  if (find_room(room) == nullptr) return HUT_ENOENT;
  store_->history(std::string(room), before, limit, [done](Result<HistoryPage> res) {
    if (!done) return;
    if (!res.ok()) {
      done(res.status().is_not_found() ? HUT_ENOENT : HUT_EIO, std::string());
      return;
    }
    done(HUT_OK, '{' + history_fields(*res) + '}');
  });
  return HUT_OK;
}

int Rooms::plugin_members(std::string_view room, std::string* json) {
  Room* r = find_room(room);
  if (r == nullptr) return HUT_ENOENT;
  *json = members_json(*r);
  return HUT_OK;
}

}  // namespace hut::rooms
