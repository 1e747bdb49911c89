// Moderation ops: kick, mute, unmute, mute all, roles, bans; and the mutes
// that end on their own.
#include <algorithm>

#include "rooms/rooms_internal.h"
#include "util/log.h"

namespace hut::rooms {

// The room of `root` when the caller is a moderator or master of it;
// nullptr after answering the refusal.
Rooms::Room* Rooms::moderated_room(const Ctx& c, const cJSON* root) {
  Room* r = room_for(c, root, true);
  if (r == nullptr) return nullptr;
  const MemberRecord* me = member(*r, c.user.id);
  if (me == nullptr || me->role < Role::kModerator) {
    reply_error(c, ErrorCode::kForbidden, "only a moderator or master may do this");
    return nullptr;
  }
  return r;
}

Rooms::Room* Rooms::moderation_target(const Ctx& c, const cJSON* root, bool args_ok, std::string_view usage) {
  const char* target = get_string(root, "user");
  if (get_string(root, "room") == nullptr || target == nullptr || !args_ok) {
    reply_error(c, ErrorCode::kBadRequest, usage);
    return nullptr;
  }
  Room* r = moderated_room(c, root);
  if (r == nullptr) return nullptr;
  const MemberRecord* me = member(*r, c.user.id);
  const MemberRecord* t = member(*r, target);
  if (t == nullptr) {
    reply_error(c, ErrorCode::kNotFound, "that user is not a member of this room");
    return nullptr;
  }
  if (t->role >= me->role) {
    reply_error(c, ErrorCode::kForbidden, "you may only act on members of a lower role");
    return nullptr;
  }
  return r;
}

void Rooms::op_kick(const Ctx& c, const cJSON* root) {
  const cJSON* ban = get_field(root, "ban");
  Room* r = moderation_target(c, root, ban == nullptr || cJSON_IsBool(ban),
                              "kick needs a string room, a string user and ban (bool) when given");
  if (r == nullptr) return;
  std::string id = r->rec.id, uid = get_string(root, "user");
  if (ban != nullptr && cJSON_IsTrue(ban)) {
    write_ban(c, id, uid, true);
    return;
  }
  store_->remove_member(id, uid, [this, c, id, uid](Status st) {
    if (!st.ok()) {
      reply_status(c, st);
      return;
    }
    reply_ok(c);
    member_removed(id, uid, user_json(c.user.id));
  });
}

void Rooms::op_mute(const Ctx& c, const cJSON* root) {
  uint64_t seconds = 0;
  bool has_seconds = get_field(root, "seconds") != nullptr;
  bool seconds_ok = !has_seconds || (get_uint(root, "seconds", &seconds) && seconds != 0);
  Room* r = moderation_target(c, root, seconds_ok,
                              "mute needs a string room, a string user and seconds (> 0) when given");
  if (r == nullptr) return;
  int64_t until = has_seconds ? wall_ms() + static_cast<int64_t>(seconds) * 1000 : kMuteForever;
  write_mute(c, r->rec.id, get_string(root, "user"), until,
             has_seconds ? std::to_string(until) : std::string("null"));
}

void Rooms::op_unmute(const Ctx& c, const cJSON* root) {
  Room* r = moderation_target(c, root, true, "unmute needs a string room and a string user");
  if (r == nullptr) return;
  write_mute(c, r->rec.id, get_string(root, "user"), std::nullopt, "");
}

void Rooms::write_mute(const Ctx& c, const std::string& id, const std::string& uid,
                       std::optional<int64_t> until, const std::string& until_json) {
  mute_write_begin(id, uid);
  store_->set_mute(id, uid, until, [this, c, id, uid, until, until_json](Status st) {
    mute_write_end(id, uid);
    if (!st.ok()) {
      reply_status(c, st);
      return;
    }
    if (MemberRecord* m = loaded_member(id, uid)) {
      m->mute_until = until;
      watch_mute(id, uid, until);
    }
    if (!until.has_value()) {
      reply_ok(c);
      to_room(id, member_event("unmuted", id, uid));
      return;
    }
    reply_ok(c, R"("until":)" + until_json);
    to_room(id, member_event("muted", id, uid, R"(,"until":)" + until_json));
  });
}

void Rooms::op_mute_all(const Ctx& c, const cJSON* root) {
  const cJSON* on = get_field(root, "on");
  if (get_string(root, "room") == nullptr || on == nullptr || !cJSON_IsBool(on)) {
    reply_error(c, ErrorCode::kBadRequest, "mute_all needs a string room and a bool on");
    return;
  }
  Room* r = moderated_room(c, root);
  if (r == nullptr) return;
  bool value = cJSON_IsTrue(on);
  std::string id = r->rec.id;
  store_->set_mute_all(id, value, [this, c, id, value](Status st) {
    if (!st.ok()) {
      reply_status(c, st);
      return;
    }
    if (Room* rr = find_room(id)) rr->rec.mute_all = value;
    reply_ok(c);
    to_room(id, R"({"op":"muted_all","room":)" + json_string(id) + R"(,"on":)" + (value ? "true" : "false") +
                    '}');
  });
}

void Rooms::op_role(const Ctx& c, const cJSON* root) {
  const char* target = get_string(root, "user");
  const char* role_s = get_string(root, "role");
  Role role = Role::kMember;
  if (get_string(root, "room") == nullptr || target == nullptr || role_s == nullptr ||
      !parse_role(role_s, &role)) {
    reply_error(c, ErrorCode::kBadRequest,
                "role needs a string room, a string user and role member, moderator or master");
    return;
  }
  Room* r = room_for(c, root, true);
  if (r == nullptr) return;
  if (member(*r, c.user.id)->role != Role::kMaster) {
    reply_error(c, ErrorCode::kForbidden, "only a master may set roles");
    return;
  }
  if (member(*r, target) == nullptr) {
    reply_error(c, ErrorCode::kNotFound, "that user is not a member of this room");
    return;
  }
  std::string id = r->rec.id, uid = target;
  store_->set_role(id, uid, role, [this, c, id, uid, role](Status st) {
    if (!st.ok()) {
      reply_status(c, st);
      return;
    }
    if (MemberRecord* m = loaded_member(id, uid)) m->role = role;
    reply_ok(c);
    to_room(id, member_event("role", id, uid, R"(,"role":)" + json_string(role_name(role))));
  });
}

// ---- bans ----

bool Rooms::is_banned(const Room& r, std::string_view user) const {
  auto it = r.sanctions.find(std::string(user));
  return it != r.sanctions.end() && it->second.banned;
}

void Rooms::restore_mute(const Room& r, MemberRecord* m) {
  auto it = r.sanctions.find(m->user.id);
  if (it == r.sanctions.end() || !it->second.mute_until.has_value()) return;
  int64_t until = *it->second.mute_until;
  if (until == kMuteForever || until > wall_ms()) m->mute_until = until;
}

size_t Rooms::rooms_created_by(std::string_view user) const {
  size_t n = 0;
  for (const auto& [id, r] : rooms_)
    if (r.rec.creator == user) ++n;
  for (const auto& [id, creator] : creating_by_)
    if (creator == user) ++n;
  return n;
}

void Rooms::op_ban(const Ctx& c, const cJSON* root) {
  const char* target = get_string(root, "user");
  if (get_string(root, "room") == nullptr || target == nullptr || *target == '\0') {
    reply_error(c, ErrorCode::kBadRequest, "ban needs a string room and a string user");
    return;
  }
  Room* r = moderated_room(c, root);
  if (r == nullptr) return;
  const MemberRecord* me = member(*r, c.user.id);
  // A member must have a lower role; anyone else may be banned before they join.
  if (const MemberRecord* t = member(*r, target); t != nullptr && t->role >= me->role) {
    reply_error(c, ErrorCode::kForbidden, "you may only act on members of a lower role");
    return;
  }
  if (target == c.user.id) {
    reply_error(c, ErrorCode::kBadRequest, "you cannot ban yourself");
    return;
  }
  write_ban(c, r->rec.id, target, true);
}

void Rooms::op_unban(const Ctx& c, const cJSON* root) {
  const char* target = get_string(root, "user");
  if (get_string(root, "room") == nullptr || target == nullptr) {
    reply_error(c, ErrorCode::kBadRequest, "unban needs a string room and a string user");
    return;
  }
  Room* r = moderated_room(c, root);
  if (r == nullptr) return;
  // A ban another node wrote is read first.
  refresh_sanctions(r->rec.id, [this, c, room = r->rec.id, user = std::string(target)] {
    Room* rr = find_room(room);
    if (rr == nullptr || !is_banned(*rr, user)) {
      reply_error(c, ErrorCode::kNotFound, "that user is not banned from this room");
      return;
    }
    write_ban(c, room, user, false);
  });
}

void Rooms::write_ban(const Ctx& c, const std::string& room, const std::string& user, bool banned) {
  if (banned) banning_.insert({room, user});
  mute_write_begin(room, user);
  store_->set_ban(room, user, banned, [this, c, room, user, banned](Status st) {
    mute_write_end(room, user);
    if (banned) banning_.erase({room, user});
    if (!st.ok()) {
      reply_status(c, st);
      return;
    }
    reply_ok(c);
    ban_committed(room, user, banned, user_json(c.user.id));
  });
}

void Rooms::ban_committed(const std::string& room, const std::string& user, bool banned,
                          std::string_view by) {
  Room* r = find_room(room);
  if (r == nullptr) return;
  if (banned) {
    member_removed(room, user, by);
    auto it = r->sanctions.find(user);
    if (it == r->sanctions.end())
      it = r->sanctions.emplace(user, SanctionRecord{room, user, {}, false}).first;
    it->second.banned = true;
  } else if (auto it = r->sanctions.find(user); it != r->sanctions.end()) {
    it->second.banned = false;
    if (!it->second.mute_until.has_value()) r->sanctions.erase(it);
  }
}

// ---- mutes that end ----

void Rooms::watch_mute(const std::string& room, const std::string& user, std::optional<int64_t> until) {
  if (!until.has_value() || *until == kMuteForever) return;
  expiries_.emplace(*until, *until, room, user);
  arm_mute_timer();
}

void Rooms::mute_write_begin(const std::string& room, const std::string& user) {
  ++mute_writes_[{room, user}];
}

void Rooms::mute_write_end(const std::string& room, const std::string& user) {
  auto it = mute_writes_.find({room, user});
  if (it != mute_writes_.end() && --it->second <= 0) mute_writes_.erase(it);
}

void Rooms::arm_mute_timer() {
  if (mute_timer_ == nullptr) {
    mute_timer_ = new uv_timer_t;
    uv_timer_init(loop_, mute_timer_);
    uv_unref(reinterpret_cast<uv_handle_t*>(mute_timer_));
    mute_timer_->data = this;
  }
  if (expiries_.empty()) {
    uv_timer_stop(mute_timer_);
    return;
  }
  // At most an hour ahead, so that a change of the wall clock is caught up.
  constexpr int64_t kMaxWaitMs = 3600 * 1000;
  int64_t wait = std::clamp<int64_t>(std::get<0>(*expiries_.begin()) - wall_ms(), 0, kMaxWaitMs);
  uv_timer_start(
      mute_timer_,
      [](uv_timer_t* h) {
        if (h->data != nullptr) static_cast<Rooms*>(h->data)->expire_mutes();
      },
      static_cast<uint64_t>(wait), 0);
}

void Rooms::expire_mutes() {
  int64_t now = wall_ms();
  std::vector<Expiry> retry;
  while (!expiries_.empty() && std::get<0>(*expiries_.begin()) <= now) {
    auto [due, until, room, user] = *expiries_.begin();
    expiries_.erase(expiries_.begin());
    Room* r = find_room(room);
    if (r == nullptr) continue;
    auto m = r->members.find(user);
    // A member who left, or whose mute was changed since: nothing ends here.
    if (m == r->members.end() || m->second.mute_until != until) continue;
    if (mute_writes_.count({room, user}) != 0) {
      retry.emplace_back(now + kMuteRetryMs, until, room, user);
      continue;
    }
    clear_expired_mute(room, user, until);
  }
  for (Expiry& e : retry) expiries_.insert(std::move(e));
  arm_mute_timer();
}

void Rooms::clear_expired_mute(const std::string& room, const std::string& user, int64_t until) {
  mute_write_begin(room, user);
  store_->set_mute(room, user, std::nullopt, [this, room, user, until](Status st) {
    mute_write_end(room, user);
    if (!st.ok()) {
      // kNotFound: the member or the room is gone; kFailedPrecondition: the
      // store is closing. Anything else is tried again a little later.
      if (st.code() == Status::Code::kNotFound || st.code() == Status::Code::kFailedPrecondition) return;
      log_write(LogLevel::kWarn, "rooms",
                "cannot end the mute of " + user + " in " + room + ": " + std::string(st.message()));
      expiries_.emplace(wall_ms() + kMuteRetryMs, until, room, user);
      arm_mute_timer();
      return;
    }
    Room* r = find_room(room);
    if (r == nullptr) return;
    auto m = r->members.find(user);
    if (m == r->members.end() || m->second.mute_until != until) return;
    m->second.mute_until.reset();
    to_room(room, member_event("unmuted", room, user));
  });
}

}  // namespace hut::rooms
