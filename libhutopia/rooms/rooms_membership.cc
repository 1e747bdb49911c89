// Membership ops: rooms, create, join, leave, members (paged), dm; and the
// events and presence that follow members.
#include <algorithm>

#include "rooms/rooms_internal.h"
#include "util/random.h"

namespace hut::rooms {

std::string Rooms::members_json(const Room& r) {
  std::string out = "[";
  bool first = true;
  for (const auto& [uid, m] : r.members) {
    if (!first) out += ',';
    first = false;
    UserRecord u = user_record(uid);
    out += R"({"id":)" + json_string(uid) + R"(,"name":)" + json_string(u.name) + R"(,"role":)" +
           json_string(role_name(m.role)) + R"(,"online":)" + (online(uid) ? "true" : "false") +
           R"(,"muted":)" + (is_muted(r, m) ? "true" : "false") + '}';
  }
  out += ']';
  return out;
}

std::string Rooms::members_page(const Room& r, const std::string* after, size_t limit, bool* more) {
  // Online members first, then by id; `after` continues from that member's place.
  using Key = std::pair<bool, std::string_view>;  // (offline, id): sorts online first
  std::vector<Key> keys;
  keys.reserve(r.members.size());
  for (const auto& [uid, m] : r.members) keys.emplace_back(!online(uid), uid);
  std::sort(keys.begin(), keys.end());
  auto it = keys.begin();
  if (after != nullptr) it = std::upper_bound(keys.begin(), keys.end(), Key{!online(*after), *after});
  std::string out = "[";
  size_t n = 0;
  *more = false;
  for (; it != keys.end(); ++it) {
    if (n == limit || out.size() > options_.max_reply) {
      *more = true;
      break;
    }
    const MemberRecord& m = r.members.at(std::string(it->second));
    if (n != 0) out += ',';
    ++n;
    UserRecord u = user_record(m.user.id);
    out += R"({"id":)" + json_string(m.user.id) + R"(,"name":)" + json_string(u.name) + R"(,"role":)" +
           json_string(role_name(m.role)) + R"(,"online":)" + (it->first ? "false" : "true") +
           R"(,"muted":)" + (is_muted(r, m) ? "true" : "false") + '}';
  }
  out += ']';
  return out;
}

std::string Rooms::member_event(std::string_view op, std::string_view room, std::string_view uid,
                                std::string_view extra) const {
  std::string out =
      R"({"op":)" + json_string(op) + R"(,"room":)" + json_string(room) + R"(,"user":)" + user_json(uid);
  out += extra;
  out += '}';
  return out;
}

void Rooms::member_added(const std::string& room, const MemberRecord& m) {
  if (Room* r = find_room(room); r != nullptr) r->local_member_changes++;
  to_room(room, member_event("joined", room, m.user.id));
  if (plugins_ != nullptr) plugins_->member_joined(room, user_ref(m.user.id));
}

void Rooms::member_removed(const std::string& room, const std::string& uid, std::string_view kicked_by) {
  Room* r = find_room(room);
  if (r == nullptr || r->members.count(uid) == 0) return;
  r->local_member_changes++;
  to_room(room, member_event("left", room, uid));
  if (!kicked_by.empty())
    to_user(uid,
            R"({"op":"kicked","room":)" + json_string(room) + R"(,"by":)" + std::string(kicked_by) + '}');
  // The mute goes with them (the store kept it in the same transaction), so
  // that leaving and joining again does not end it.
  auto gone = r->members.find(uid);
  std::optional<int64_t> mute = gone->second.mute_until;
  r->members.erase(gone);
  auto sr = r->sanctions.find(uid);
  if (mute.has_value()) {
    if (sr == r->sanctions.end()) sr = r->sanctions.emplace(uid, SanctionRecord{room, uid, {}, false}).first;
    sr->second.mute_until = mute;
  } else if (sr != r->sanctions.end()) {
    sr->second.mute_until.reset();
    if (!sr->second.banned) r->sanctions.erase(sr);
  }
  if (plugins_ != nullptr) plugins_->member_left(room, user_ref(uid));
}

std::set<std::string> Rooms::peers(std::string_view user) const {
  std::set<std::string> out;
  for (const auto& [id, r] : rooms_) {
    if (r.members.count(std::string(user)) == 0) continue;
    for (const auto& [uid, m] : r.members)
      if (uid != user) out.insert(uid);
  }
  return out;
}

// A user's first session on this node opened or the last closed: the
// others hear it, and the space too unless the user is on another node.
void Rooms::local_presence(std::string_view user, bool is_online) {
  if (cluster_.local_changed) cluster_.local_changed(user, is_online);
  if (!(cluster_.online_elsewhere && cluster_.online_elsewhere(user))) announce_presence(user, is_online);
}

void Rooms::announce_presence(std::string_view user, bool is_online) {
  std::string frame = R"({"op":"presence","user":)" + user_json(user) + R"(,"online":)" +
                      (is_online ? "true" : "false") + '}';
  for (const std::string& p : peers(user)) to_user(p, frame);
  if (plugins_ != nullptr) {
    if (is_online)
      plugins_->user_online(user_ref(user));
    else
      plugins_->user_offline(user_ref(user));
  }
}

void Rooms::op_rooms(const Ctx& c, const cJSON* root) {
  const cJSON* after = get_field(root, "after");
  uint64_t limit = kRoomsPage;
  if ((after != nullptr && !cJSON_IsString(after)) ||
      (get_field(root, "limit") != nullptr &&
       (!get_uint(root, "limit", &limit) || limit < 1 || limit > kRoomsPage))) {
    reply_error(c, ErrorCode::kBadRequest, "rooms takes after (a room id) and limit (1-1000) when given");
    return;
  }
  // The rooms the user is in, then the public ones, each part by id; `after`
  // continues from that room's place (in the first part while the user is a
  // member of it).
  bool in_second = false;
  std::string after_id;
  if (after != nullptr) {
    after_id = after->valuestring;
    const Room* ar = find_room(after_id);
    in_second = ar == nullptr || member(*ar, c.user.id) == nullptr;
  }
  std::string list;
  size_t n = 0;
  bool more = false;
  auto add = [&](const Room& r, const MemberRecord* m) {
    if (n == limit || list.size() > options_.max_reply) {
      more = true;
      return false;
    }
    if (n != 0) list += ',';
    ++n;
    list += R"({"room":)" + json_string(r.rec.id) + R"(,"topic":)" + json_string(r.rec.topic) +
            R"(,"private":)" + (r.rec.is_private ? "true" : "false") + R"(,"role":)" +
            (m != nullptr ? json_string(role_name(m->role)) : std::string("null")) + R"(,"unread":)" +
            std::to_string(m != nullptr ? unread(r, c.user.id) : 0) + R"(,"last_seq":)" +
            std::to_string(r.rec.last_seq);
    if (r.rec.is_dm()) {
      std::string other = dm_other(r.rec.dm_key, c.user.id);
      if (!other.empty()) list += R"(,"dm":)" + user_json(other);
    }
    list += '}';
    return true;
  };
  auto start = [&](bool second) {
    if (after == nullptr || second != in_second) return rooms_.begin();
    return rooms_.upper_bound(after_id);
  };
  bool going = true;
  if (!in_second)
    for (auto it = start(false); going && it != rooms_.end(); ++it)
      if (const MemberRecord* m = member(it->second, c.user.id)) going = add(it->second, m);
  for (auto it = start(true); going && it != rooms_.end(); ++it)
    if (!it->second.rec.is_private && member(it->second, c.user.id) == nullptr)
      going = add(it->second, nullptr);
  reply_ok(c, R"("rooms":[)" + list + R"(],"more":)" + (more ? "true" : "false"));
}

void Rooms::op_create(const Ctx& c, const cJSON* root) {
  const char* id = get_string(root, "room");
  const cJSON* priv = get_field(root, "private");
  const cJSON* topic = get_field(root, "topic");
  if (id == nullptr || (priv != nullptr && !cJSON_IsBool(priv)) ||
      (topic != nullptr && !cJSON_IsString(topic))) {
    reply_error(c, ErrorCode::kBadRequest,
                "create needs a string room, and private (bool) and topic (string) when given");
    return;
  }
  if (!valid_room_id(id)) {
    reply_error(c, ErrorCode::kBadRequest, "a room id is 1 to 64 printable characters without / ? # %");
    return;
  }
  if (topic != nullptr && std::string_view(topic->valuestring).size() > kMaxTopic) {
    reply_error(c, ErrorCode::kTooLarge, "a topic holds at most " + std::to_string(kMaxTopic) + " bytes");
    return;
  }
  if (rooms_.count(id) != 0 || creating_.count(id) != 0) {
    reply_error(c, ErrorCode::kConflict, std::string("a room named ") + id + " exists");
    return;
  }
  if (options_.rooms_per_user != 0 && rooms_created_by(c.user.id) >= options_.rooms_per_user) {
    reply_error(c, ErrorCode::kRateLimited,
                "you have created " + std::to_string(options_.rooms_per_user) +
                    " rooms, the most one user may have; a room you created counts until it is removed");
    return;
  }
  RoomRecord rec;
  rec.id = id;
  rec.creator = c.user.id;
  rec.topic = topic != nullptr ? topic->valuestring : "";
  rec.is_private = priv != nullptr && cJSON_IsTrue(priv);
  rec.created_ts = wall_ms();
  MemberRecord m;
  m.room = id;
  m.user = user_record(c.user.id);
  m.role = Role::kMaster;
  m.joined_ts = rec.created_ts;
  creating_.insert(id);
  creating_by_[id] = c.user.id;
  store_->create_room(rec, {m}, [this, c, rec, m](Status st) {
    creating_.erase(rec.id);
    creating_by_.erase(rec.id);
    if (!st.ok()) {
      reply_status(c, st);
      return;
    }
    Room& r = rooms_[rec.id];
    r.rec = rec;
    r.members[m.user.id] = m;
    reply_ok(c, R"("room":)" + json_string(rec.id));
  });
}

void Rooms::op_join(const Ctx& c, const cJSON* root) {
  Room* r = room_for(c, root, false);
  if (r == nullptr) return;
  std::string id = r->rec.id;
  if (member(*r, c.user.id) != nullptr) return join_room(c, id);
  refresh_sanctions(id, [this, c, id] { join_room(c, id); });
}

void Rooms::join_room(const Ctx& c, const std::string& id) {
  Room* r = find_room(id);
  if (r == nullptr) {
    reply_error(c, ErrorCode::kNotFound, "the room was removed");
    return;
  }
  if (member(*r, c.user.id) == nullptr &&
      (is_banned(*r, c.user.id) || banning_.count({id, c.user.id}) != 0)) {
    reply_error(c, ErrorCode::kForbidden, "you are banned from this room");
    return;
  }
  auto answer = [this, c, id] {
    Room* rr = find_room(id);
    if (rr == nullptr) return;
    const MemberRecord* m = member(*rr, c.user.id);
    auto it = markers_.find({id, c.user.id});
    uint64_t read_seq = it == markers_.end() ? 0 : it->second;
    bool more = false;
    std::string page = members_page(*rr, nullptr, kMembersPage, &more);
    reply_ok(c, R"("room":)" + json_string(id) + R"(,"role":)" +
                    json_string(role_name(m != nullptr ? m->role : Role::kMember)) + R"(,"last_seq":)" +
                    std::to_string(rr->rec.last_seq) + R"(,"read_seq":)" + std::to_string(read_seq) +
                    R"(,"member_count":)" + std::to_string(rr->members.size()) + R"(,"members":)" + page +
                    R"(,"more":)" + (more ? "true" : "false"));
  };
  if (member(*r, c.user.id) != nullptr) {
    answer();
    return;
  }
  MemberRecord m;
  m.room = id;
  m.user = user_record(c.user.id);
  m.role = Role::kMember;
  m.joined_ts = wall_ms();
  restore_mute(*r, &m);
  mute_write_begin(id, m.user.id);
  store_->put_member(m, [this, c, id, m, answer](Status st) {
    mute_write_end(id, m.user.id);
    if (!st.ok()) {
      reply_status(c, st);
      return;
    }
    Room* rr = find_room(id);
    if (rr == nullptr) {
      reply_error(c, ErrorCode::kNotFound, "the room was removed");
      return;
    }
    bool is_new = rr->members.count(m.user.id) == 0;
    if (is_new) {
      rr->members[m.user.id] = m;
      watch_mute(id, m.user.id, m.mute_until);
    }
    answer();
    if (is_new) member_added(id, m);
  });
}

void Rooms::op_leave(const Ctx& c, const cJSON* root) {
  Room* r = room_for(c, root, true);
  if (r == nullptr) return;
  std::string id = r->rec.id;
  store_->remove_member(id, c.user.id, [this, c, id](Status st) {
    if (!st.ok()) {
      reply_status(c, st);
      return;
    }
    reply_ok(c);
    member_removed(id, c.user.id);
  });
}

void Rooms::op_members(const Ctx& c, const cJSON* root) {
  const cJSON* after = get_field(root, "after");
  uint64_t limit = kMembersPage;
  if (get_string(root, "room") == nullptr || (after != nullptr && !cJSON_IsString(after)) ||
      (get_field(root, "limit") != nullptr &&
       (!get_uint(root, "limit", &limit) || limit < 1 || limit > kMaxMembersPage))) {
    reply_error(c, ErrorCode::kBadRequest,
                "members needs a string room, after (a member id) and limit (1-1000) when given");
    return;
  }
  Room* r = room_for(c, root, true);
  if (r == nullptr) return;
  std::string after_id = after != nullptr ? after->valuestring : "";
  bool more = false;
  std::string page = members_page(*r, after != nullptr ? &after_id : nullptr, limit, &more);
  reply_ok(c, R"("members":)" + page + R"(,"more":)" + (more ? "true" : "false"));
}

void Rooms::op_dm(const Ctx& c, const cJSON* root) {
  const char* other = get_string(root, "user");
  if (other == nullptr || *other == '\0') {
    reply_error(c, ErrorCode::kBadRequest, "dm needs a string user");
    return;
  }
  if (c.user.id == other) {
    reply_error(c, ErrorCode::kBadRequest, "a direct-message room needs another user");
    return;
  }
  if (users_.count(other) == 0) {
    reply_error(c, ErrorCode::kNotFound, std::string("this space has never seen a user ") + other);
    return;
  }
  // Only a new room costs from the budget; the pair's room, when it exists,
  // opens for free.
  std::string key = dm_key(c.user.id, other);
  bool exists = std::any_of(rooms_.begin(), rooms_.end(),
                            [&key](const auto& kv) { return kv.second.rec.dm_key == key; });
  if (!exists) {
    Bucket& b = dm_budget_[c.user.id];
    int64_t now = wall_ms();
    double cap = std::max(options_.dms_per_hour, 1.0);
    if (b.refill_ms == 0) {
      b.tokens = cap;
    } else if (now > b.refill_ms) {
      b.tokens = std::min(cap, b.tokens + static_cast<double>(now - b.refill_ms) * cap / 3600000.0);
    }
    b.refill_ms = now;
    if (b.tokens < 1) {
      reply_error(c, ErrorCode::kRateLimited,
                  "too many new direct-message rooms; at most " + std::to_string(static_cast<int64_t>(cap)) +
                      " an hour");
      return;
    }
    b.tokens -= 1;
  }
  std::string new_id = "dm-" + random_token(12);
  store_->open_dm(user_record(c.user.id), user_record(other), new_id, wall_ms(),
                  [this, c](Result<DmResult> res) {
                    if (!res.ok()) {
                      reply_status(c, res.status());
                      return;
                    }
                    const RoomRecord& rec = res->room;
                    if (rooms_.count(rec.id) == 0) {
                      // Created now (or by another process): read its two members from the key.
                      Room& r = rooms_[rec.id];
                      r.rec = rec;
                    }
                    Room& r = rooms_[rec.id];
                    if (r.members.empty()) {
                      std::string id = rec.id;
                      store_->members(id, [this, c, id](Result<std::vector<MemberRecord>> ms) {
                        Room* rr = find_room(id);
                        if (ms.ok() && rr != nullptr)
                          for (MemberRecord& m : *ms) {
                            watch_mute(id, m.user.id, m.mute_until);
                            rr->members[m.user.id] = m;
                          }
                        reply_ok(c, R"("room":)" + json_string(id));
                      });
                      return;
                    }
                    reply_ok(c, R"("room":)" + json_string(rec.id));
                  });
}

}  // namespace hut::rooms
