// Message ops: post, edit, delete, history, read markers, typing. Posts and
// edits go through the one post pipeline (post_pipeline.cc).
#include <algorithm>

#include "rooms/rooms_internal.h"

namespace hut::rooms {

Rooms::Room* Rooms::message_target(const Ctx& c, const cJSON* root, std::string_view op, uint64_t* seq) {
  if (get_string(root, "room") == nullptr || !get_uint(root, "seq", seq)) {
    reply_error(c, ErrorCode::kBadRequest, std::string(op) + " needs a string room and a seq");
    return nullptr;
  }
  return room_for(c, root, true);
}

Rooms::Submission Rooms::bus_submission(const Ctx& c, const char* room, const char* text) {
  Submission s;
  s.room = room;
  s.from = user_record(c.user.id);
  s.text = text;
  s.members_only = true;
  s.session = c.session;
  return s;
}

void Rooms::op_post(const Ctx& c, const cJSON* root) {
  const uint64_t arrived_ns = uv_hrtime();
  const char* room = get_string(root, "room");
  const char* text = get_string(root, "text");
  if (room == nullptr || text == nullptr) {
    reply_error(c, ErrorCode::kBadRequest, "post needs a string room and a string text");
    return;
  }
  Submission s = bus_submission(c, room, text);
  if (const cJSON* data = get_field(root, "data")) {
    char* printed = cJSON_PrintUnformatted(data);
    if (printed != nullptr) s.data_json = printed;
    cJSON_free(printed);
  }
  submit(std::move(s), [this, c, arrived_ns](const Outcome& o) {
    if (!o.ok) return reply_error(c, o.code, o.message);
    post_seconds_.observe_ns(uv_hrtime() - arrived_ns);
    reply_ok(c, R"("seq":)" + std::to_string(o.seq) + R"(,"ts":)" + std::to_string(o.ts));
  });
}

void Rooms::op_edit(const Ctx& c, const cJSON* root) {
  uint64_t seq = 0;
  const char* room = get_string(root, "room");
  const char* text = get_string(root, "text");
  if (room == nullptr || text == nullptr || !get_uint(root, "seq", &seq)) {
    reply_error(c, ErrorCode::kBadRequest, "edit needs a string room, a seq and a string text");
    return;
  }
  Submission s = bus_submission(c, room, text);
  s.edit = true;
  s.seq = seq;
  submit(std::move(s), [this, c](const Outcome& o) {
    if (!o.ok) return reply_error(c, o.code, o.message);
    reply_ok(c);
  });
}

void Rooms::op_delete(const Ctx& c, const cJSON* root) {
  uint64_t seq = 0;
  Room* r = message_target(c, root, "delete", &seq);
  if (r == nullptr) return;
  std::string id = r->rec.id;
  bool moderator = member(*r, c.user.id)->role >= Role::kModerator;
  store_->delete_message(id, seq, moderator ? std::string() : c.user.id, [this, c, id, seq](Status st) {
    if (!st.ok()) {
      if (st.code() == Status::Code::kPermissionDenied)
        reply_error(c, ErrorCode::kForbidden, "only the author or a moderator may delete a message");
      else
        reply_status(c, st);
      return;
    }
    if (Room* rr = find_room(id)) {
      auto at = std::lower_bound(rr->deleted.begin(), rr->deleted.end(), seq);
      if (at == rr->deleted.end() || *at != seq) rr->deleted.insert(at, seq);
    }
    reply_ok(c);
    to_room(id, R"({"op":"deleted","room":)" + json_string(id) + R"(,"seq":)" + std::to_string(seq) + '}');
  });
}

void Rooms::op_history(const Ctx& c, const cJSON* root) {
  uint64_t before = 0, after = 0, limit = 50;
  bool has_before = get_field(root, "before") != nullptr, has_after = get_field(root, "after") != nullptr;
  if (get_string(root, "room") == nullptr || (has_before && !get_uint(root, "before", &before)) ||
      (has_after && !get_uint(root, "after", &after)) || (has_before && has_after) ||
      (get_field(root, "limit") != nullptr &&
       (!get_uint(root, "limit", &limit) || limit < 1 || limit > 200))) {
    reply_error(
        c, ErrorCode::kBadRequest,
        "history needs a string room, before or after (a seq, not both) and limit (1-200) when given");
    return;
  }
  Room* r = room_for(c, root, false);
  if (r == nullptr) return;
  auto done = [this, c, has_after](Result<HistoryPage> res) {
    if (!res.ok()) {
      reply_status(c, res.status());
      return;
    }
    trim_page(&*res, has_after);
    reply_ok(c, history_fields(*res));
  };
  if (has_after)
    store_->history_after(r->rec.id, after, static_cast<int>(limit), done);
  else
    store_->history(r->rec.id, before, static_cast<int>(limit), done);
}

void Rooms::trim_page(HistoryPage* page, bool forward) const {
  // Keeps the messages nearest the cursor (the oldest going forward, the
  // newest going back) while the page stays under max_reply; at least one.
  auto& ms = page->messages;
  size_t total = 0, kept = 0;
  for (size_t i = 0; i < ms.size(); ++i) {
    const MessageRecord& m = forward ? ms[i] : ms[ms.size() - 1 - i];
    size_t size = message_json(m).size() + 1;
    if (kept != 0 && total + size > options_.max_reply) break;
    total += size;
    ++kept;
  }
  if (kept == ms.size()) return;
  if (forward)
    ms.erase(ms.begin() + static_cast<std::ptrdiff_t>(kept), ms.end());
  else
    ms.erase(ms.begin(), ms.end() - static_cast<std::ptrdiff_t>(kept));
  page->more = true;
}

void Rooms::op_read(const Ctx& c, const cJSON* root) {
  uint64_t seq = 0;
  Room* r = message_target(c, root, "read", &seq);
  if (r == nullptr) return;
  std::string id = r->rec.id;
  store_->mark_read(id, c.user.id, seq, [this, c, id, seq](Result<uint64_t> res) {
    if (!res.ok()) {
      reply_status(c, res.status());
      return;
    }
    Room* rr = find_room(id);
    uint64_t capped = rr != nullptr ? std::min(seq, rr->rec.last_seq) : seq;
    uint64_t mk = raise_marker(id, c.user.id, capped);
    reply_ok(c, R"("unread":)" + std::to_string(*res));
    std::string ev = R"({"op":"read","room":)" + json_string(id) + R"(,"seq":)" + std::to_string(mk) + '}';
    to_user_everywhere(c.user.id, ev, c.session);
  });
}

void Rooms::op_typing(const Ctx& c, const cJSON* root) {
  Room* r = room_for(c, root, true);
  if (r == nullptr) return;
  if (bus::Session* s = bus_->welcomed_session(c.session); s != nullptr) {
    uint64_t now = now_ms();
    auto& times = s->rooms.last_typing_ms;
    if (times == nullptr) times = std::make_unique<std::unordered_map<std::string, uint64_t>>();
    auto [it, fresh] = times->try_emplace(r->rec.id, now);
    if (!fresh) {
      if (now - it->second < static_cast<uint64_t>(options_.typing_interval_ms)) {
        reply_error(c, ErrorCode::kRateLimited, "typing is sent at most once a second per room");
        return;
      }
      it->second = now;
    }
  }
  reply_ok(c);
  std::string ev =
      R"({"op":"typing","room":)" + json_string(r->rec.id) + R"(,"user":)" + user_json(c.user.id) + '}';
  for (const auto& [uid, m] : r->members) {
    if (uid == c.user.id) continue;
    to_user_everywhere(uid, ev);
  }
}

}  // namespace hut::rooms
