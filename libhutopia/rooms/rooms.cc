#include "rooms/rooms.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "util/clock.h"
#include "util/log.h"
#include "util/random.h"

namespace hut::rooms {
namespace {

using bus::ErrorCode;
using bus::get_field;
using bus::get_string;
using bus::json_string;

constexpr size_t kMaxRoomId = 64;
// Members in a page of `join` (and `members` without limit), and at most.
constexpr uint64_t kMembersPage = 100;
constexpr uint64_t kMaxMembersPage = 1000;
// Rooms in a page of `rooms`, by default and at most.
constexpr uint64_t kRoomsPage = 1000;
// Bytes of a room topic, so that no reply built from it nears the
// backpressure limit (a post's data: post_pipeline.cc).
constexpr size_t kMaxTopic = 1024;
// How long an ended mute waits when a write that may change it is in flight,
// or when clearing it failed.
constexpr int64_t kMuteRetryMs = 1000;

// A non-negative integer field; nullopt when absent or not one.
bool get_uint(const cJSON* root, const char* name, uint64_t* out) {
  const cJSON* f = get_field(root, name);
  if (f == nullptr || !cJSON_IsNumber(f)) return false;
  double v = f->valuedouble;
  if (!(v >= 0) || v > 9007199254740991.0 || std::floor(v) != v) return false;
  *out = static_cast<uint64_t>(v);
  return true;
}

bool valid_room_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxRoomId) return false;
  for (unsigned char c : id)
    if (c < 0x21 || c == 0x7f || c == '/' || c == '?' || c == '#' || c == '%') return false;
  return true;
}

}  // namespace

std::string dm_other(std::string_view key, std::string_view me) {
  // The key is "<length of the lower id>:<lower id><higher id>" (dm_key()).
  size_t colon = key.find(':');
  if (colon == std::string_view::npos) return {};
  size_t n = 0;
  for (char ch : key.substr(0, colon)) {
    if (ch < '0' || ch > '9' || n > key.size()) return {};
    n = n * 10 + static_cast<size_t>(ch - '0');
  }
  std::string_view ids = key.substr(colon + 1);
  if (n > ids.size()) return {};
  std::string_view lo = ids.substr(0, n), hi = ids.substr(n);
  if (lo == me) return std::string(hi);
  if (hi == me) return std::string(lo);
  return {};
}

std::string user_obj(const UserRecord& u) {
  JsonObject out;
  out.str("id", u.id).str("name", u.name);
  if (!u.avatar.empty()) out.str("avatar", u.avatar);
  return out.done();
}

std::string message_json(const MessageRecord& m, std::string_view op) {
  JsonObject out;
  if (!op.empty()) out.str("op", op);
  out.str("room", m.room).num("seq", m.seq).num("ts", m.ts).raw("from", user_obj(m.from)).str("text", m.text);
  if (!m.data_json.empty()) out.raw("data", m.data_json);
  if (m.edited_ts != 0) out.num("edited_ts", m.edited_ts);
  return out.done();
}

std::string history_fields(const HistoryPage& page) {
  std::string out = R"("messages":[)";
  for (size_t i = 0; i < page.messages.size(); ++i) {
    if (i != 0) out += ',';
    out += message_json(page.messages[i]);
  }
  out += R"(],"more":)";
  out += page.more ? "true" : "false";
  return out;
}

Rooms::Rooms(Options options, uv_loop_t* loop, Store* store, bus::Bus* bus)
    : options_(options), loop_(loop), store_(store), bus_(bus) {}

Rooms::~Rooms() {
  if (mute_timer_ != nullptr) {
    mute_timer_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(mute_timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
}

Status Rooms::load() {
  Result<StoreState> st = store_->load_state();
  if (!st.ok()) return st.status();
  for (RoomRecord& r : st->rooms) {
    std::string id = r.id;
    rooms_[id].rec = std::move(r);
  }
  for (MemberRecord& m : st->members) {
    auto it = rooms_.find(m.room);
    if (it == rooms_.end()) continue;
    users_[m.user.id] = m.user;
    std::string uid = m.user.id;
    watch_mute(m.room, uid, m.mute_until);
    it->second.members[uid] = std::move(m);
  }
  for (const ReadMarker& mk : st->read_markers) markers_[{mk.room, mk.user}] = mk.seq;
  for (SanctionRecord& sr : st->sanctions) {
    auto it = rooms_.find(sr.room);
    if (it == rooms_.end()) continue;
    std::string uid = sr.user;
    it->second.sanctions[uid] = std::move(sr);
  }
  for (UserRecord& u : st->users) {
    if (u.name.empty()) u.name = u.id;  // as user_record() names a user it does not know
    std::string uid = u.id;
    users_.try_emplace(uid, std::move(u));
  }
  // Sorted by room, then seq: each room's list comes out ascending.
  for (const MessageRef& d : st->deleted) {
    auto it = rooms_.find(d.room);
    if (it != rooms_.end()) it->second.deleted.push_back(d.seq);
  }
  return Status();
}

// ---- helpers ----

uint64_t Rooms::now_ms() { return loop_now_ms(loop_); }

int64_t Rooms::wall_ms() const { return hut::wall_ms(); }

void Rooms::reply_ok(const Ctx& c, std::string_view fields) {
  bus_->send_to_session(c.session, bus::make_ok(c.ref, fields));
}

void Rooms::reply_error(const Ctx& c, ErrorCode code, std::string_view message) {
  bus_->send_to_session(c.session, bus::make_error(c.ref, code, message));
}

void Rooms::reply_status(const Ctx& c, const Status& st) { reply_error(c, wire_error_of(st), st.message()); }

void Rooms::to_room(std::string_view room, const std::string& frame) {
  bus_->send_event(EventTarget::kRoom, room, frame);
}

void Rooms::to_user(std::string_view user, const std::string& frame, std::string_view except_session) {
  auto it = by_user_.find(std::string(user));
  if (it == by_user_.end()) return;
  std::vector<std::string> ids = it->second;
  for (const std::string& sid : ids)
    if (sid != except_session) bus_->send_to_session(sid, frame);
}

Rooms::Room* Rooms::find_room(std::string_view id) {
  auto it = rooms_.find(std::string(id));
  return it == rooms_.end() ? nullptr : &it->second;
}

const MemberRecord* Rooms::member(const Room& r, std::string_view user) const {
  auto it = r.members.find(std::string(user));
  return it == r.members.end() ? nullptr : &it->second;
}

bool Rooms::is_muted(const Room& r, const MemberRecord& m) {
  if (r.rec.mute_all && m.role == Role::kMember) return true;
  return m.mute_until.has_value() && *m.mute_until > wall_ms();
}

bool Rooms::online(std::string_view user) const { return by_user_.count(std::string(user)) != 0; }

uint64_t Rooms::unread(const Room& r, std::string_view user) const {
  auto it = markers_.find({r.rec.id, std::string(user)});
  uint64_t marker = it == markers_.end() ? 0 : it->second;
  if (r.rec.last_seq <= marker) return 0;
  auto after = std::upper_bound(r.deleted.begin(), r.deleted.end(), marker);
  uint64_t deleted = static_cast<uint64_t>(r.deleted.end() - after);
  uint64_t total = r.rec.last_seq - marker;
  return total > deleted ? total - deleted : 0;
}

UserRecord Rooms::user_record(std::string_view id) const {
  auto it = users_.find(std::string(id));
  if (it != users_.end()) return it->second;
  UserRecord u;
  u.id = std::string(id);
  u.name = u.id;
  return u;
}

UserRef Rooms::user_ref(std::string_view id) const {
  UserRecord u = user_record(id);
  return UserRef{u.id, u.name, u.avatar};
}

std::string Rooms::user_json(std::string_view id) const { return user_obj(user_record(id)); }

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
  to_room(room, member_event("joined", room, m.user.id));
  if (plugins_ != nullptr) plugins_->member_joined(room, user_ref(m.user.id));
}

void Rooms::member_removed(const std::string& room, const std::string& uid, std::string_view kicked_by) {
  Room* r = find_room(room);
  if (r == nullptr || r->members.count(uid) == 0) return;
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

// ---- RoomHooks ----

std::string Rooms::welcome_rooms(const bus::Session& session) {
  std::string out = "[";
  bool first = true;
  for (const auto& [id, r] : rooms_) {
    if (r.members.count(session.user.id) == 0) continue;
    if (!first) out += ',';
    first = false;
    out +=
        R"({"room":)" + json_string(id) + R"(,"unread":)" + std::to_string(unread(r, session.user.id)) + '}';
  }
  out += ']';
  return out;
}

void Rooms::for_each_member(std::string_view room, const std::function<void(const std::string&)>& fn) {
  Room* r = find_room(room);
  if (r == nullptr) return;
  for (const auto& [uid, m] : r->members) fn(uid);
}

void Rooms::session_welcomed(bus::Session& session) {
  const std::string& uid = session.user.id;
  UserRecord& u = users_[uid];
  bool changed = u.id != uid || u.name != session.user.name || u.avatar != session.user.avatar;
  u.id = uid;
  u.name = session.user.name;
  u.avatar = session.user.avatar;
  // The space remembers who it has seen (a `dm` names only known users).
  if (changed && !u.name.empty() && users_saving_.insert(uid).second)
    store_->put_user(u, [this, uid](Status st) {
      users_saving_.erase(uid);
      if (!st.ok() && st.code() != Status::Code::kFailedPrecondition)
        log_write(LogLevel::kWarn, "rooms", "cannot store user " + uid + ": " + std::string(st.message()));
    });
  SessionState& s = sessions_[session.id];
  s.user = uid;
  s.tokens = options_.post_burst;
  s.refill_ms = now_ms();
  auto& list = by_user_[uid];
  list.push_back(session.id);
  if (list.size() == 1) announce_presence(uid, true);
}

void Rooms::session_closed(bus::Session& session) {
  auto it = sessions_.find(session.id);
  if (it == sessions_.end()) return;
  std::string uid = it->second.user;
  sessions_.erase(it);
  auto u = by_user_.find(uid);
  if (u == by_user_.end()) return;
  auto& v = u->second;
  v.erase(std::remove(v.begin(), v.end(), session.id), v.end());
  if (v.empty()) {
    by_user_.erase(u);
    announce_presence(uid, false);
  }
}

void Rooms::handle_op(bus::Session& session, const bus::ClientFrame& frame) {
  Ctx c{session.id, frame.ref_json, session.user};
  const cJSON* root = frame.root.get();
  switch (frame.op) {
    case bus::Op::kRooms:
      op_rooms(c, root);
      return;
    case bus::Op::kCreate:
      op_create(c, root);
      return;
    case bus::Op::kJoin:
      op_join(c, root);
      return;
    case bus::Op::kLeave:
      op_leave(c, root);
      return;
    case bus::Op::kPost:
      op_post(c, root);
      return;
    case bus::Op::kEdit:
      op_edit(c, root);
      return;
    case bus::Op::kDelete:
      op_delete(c, root);
      return;
    case bus::Op::kHistory:
      op_history(c, root);
      return;
    case bus::Op::kRead:
      op_read(c, root);
      return;
    case bus::Op::kTyping:
      op_typing(c, root);
      return;
    case bus::Op::kMembers:
      op_members(c, root);
      return;
    case bus::Op::kDm:
      op_dm(c, root);
      return;
    case bus::Op::kKick:
      op_kick(c, root);
      return;
    case bus::Op::kMute:
      op_mute(c, root);
      return;
    case bus::Op::kUnmute:
      op_unmute(c, root);
      return;
    case bus::Op::kMuteAll:
      op_mute_all(c, root);
      return;
    case bus::Op::kRole:
      op_role(c, root);
      return;
    case bus::Op::kBan:
      op_ban(c, root);
      return;
    case bus::Op::kUnban:
      op_unban(c, root);
      return;
    default:
      reply_error(c, ErrorCode::kBadRequest, "not a room op");
      return;
  }
}

Rooms::Room* Rooms::room_for(const Ctx& c, const cJSON* root, bool members_only) {
  const char* id = get_string(root, "room");
  if (id == nullptr) {
    reply_error(c, ErrorCode::kBadRequest, "room must be a string");
    return nullptr;
  }
  Room* r = find_room(id);
  if (r == nullptr) {
    reply_error(c, ErrorCode::kNotFound, std::string("no room named ") + id);
    return nullptr;
  }
  if ((members_only || r->rec.is_private) && member(*r, c.user.id) == nullptr) {
    reply_error(c, ErrorCode::kForbidden, "you are not a member of this room");
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
  Room* r = room_for(c, root, true);
  if (r == nullptr) return nullptr;
  const MemberRecord* me = member(*r, c.user.id);
  if (me == nullptr || me->role < Role::kModerator) {
    reply_error(c, ErrorCode::kForbidden, "only a moderator or master may do this");
    return nullptr;
  }
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

// ---- ops ----

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

void Rooms::op_post(const Ctx& c, const cJSON* root) {
  const uint64_t arrived_ns = uv_hrtime();
  const char* room = get_string(root, "room");
  const char* text = get_string(root, "text");
  if (room == nullptr || text == nullptr) {
    reply_error(c, ErrorCode::kBadRequest, "post needs a string room and a string text");
    return;
  }
  Submission s;
  s.room = room;
  s.from = user_record(c.user.id);
  s.text = text;
  if (const cJSON* data = get_field(root, "data")) {
    char* printed = cJSON_PrintUnformatted(data);
    if (printed != nullptr) s.data_json = printed;
    cJSON_free(printed);
  }
  s.members_only = true;
  s.session = c.session;
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
  Submission s;
  s.edit = true;
  s.room = room;
  s.from = user_record(c.user.id);
  s.seq = seq;
  s.text = text;
  s.members_only = true;
  s.session = c.session;
  submit(std::move(s), [this, c](const Outcome& o) {
    if (!o.ok) return reply_error(c, o.code, o.message);
    reply_ok(c);
  });
}

void Rooms::op_delete(const Ctx& c, const cJSON* root) {
  uint64_t seq = 0;
  if (get_string(root, "room") == nullptr || !get_uint(root, "seq", &seq)) {
    reply_error(c, ErrorCode::kBadRequest, "delete needs a string room and a seq");
    return;
  }
  Room* r = room_for(c, root, true);
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
  if (get_string(root, "room") == nullptr || !get_uint(root, "seq", &seq)) {
    reply_error(c, ErrorCode::kBadRequest, "read needs a string room and a seq");
    return;
  }
  Room* r = room_for(c, root, true);
  if (r == nullptr) return;
  std::string id = r->rec.id;
  store_->mark_read(id, c.user.id, seq, [this, c, id, seq](Result<uint64_t> res) {
    if (!res.ok()) {
      reply_status(c, res.status());
      return;
    }
    Room* rr = find_room(id);
    uint64_t capped = rr != nullptr ? std::min(seq, rr->rec.last_seq) : seq;
    uint64_t& mk = markers_[{id, c.user.id}];
    mk = std::max(mk, capped);
    reply_ok(c, R"("unread":)" + std::to_string(*res));
    to_user(c.user.id, R"({"op":"read","room":)" + json_string(id) + R"(,"seq":)" + std::to_string(mk) + '}',
            c.session);
  });
}

void Rooms::op_typing(const Ctx& c, const cJSON* root) {
  Room* r = room_for(c, root, true);
  if (r == nullptr) return;
  auto si = sessions_.find(c.session);
  if (si != sessions_.end()) {
    uint64_t now = now_ms();
    auto [it, fresh] = si->second.last_typing_ms.try_emplace(r->rec.id, now);
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
  for (const auto& [uid, m] : r->members)
    if (uid != c.user.id) to_user(uid, ev);
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
  std::string id = r->rec.id, uid = get_string(root, "user");
  mute_write_begin(id, uid);
  store_->set_mute(id, uid, until, [this, c, id, uid, until, has_seconds](Status st) {
    mute_write_end(id, uid);
    if (!st.ok()) {
      reply_status(c, st);
      return;
    }
    Room* rr = find_room(id);
    if (rr != nullptr) {
      auto it = rr->members.find(uid);
      if (it != rr->members.end()) {
        it->second.mute_until = until;
        watch_mute(id, uid, until);
      }
    }
    std::string until_json = has_seconds ? std::to_string(until) : std::string("null");
    reply_ok(c, R"("until":)" + until_json);
    to_room(id, member_event("muted", id, uid, R"(,"until":)" + until_json));
  });
}

void Rooms::op_unmute(const Ctx& c, const cJSON* root) {
  Room* r = moderation_target(c, root, true, "unmute needs a string room and a string user");
  if (r == nullptr) return;
  std::string id = r->rec.id, uid = get_string(root, "user");
  mute_write_begin(id, uid);
  store_->set_mute(id, uid, std::nullopt, [this, c, id, uid](Status st) {
    mute_write_end(id, uid);
    if (!st.ok()) {
      reply_status(c, st);
      return;
    }
    Room* rr = find_room(id);
    if (rr != nullptr) {
      auto it = rr->members.find(uid);
      if (it != rr->members.end()) it->second.mute_until.reset();
    }
    reply_ok(c);
    to_room(id, member_event("unmuted", id, uid));
  });
}

void Rooms::op_mute_all(const Ctx& c, const cJSON* root) {
  const cJSON* on = get_field(root, "on");
  if (get_string(root, "room") == nullptr || on == nullptr || !cJSON_IsBool(on)) {
    reply_error(c, ErrorCode::kBadRequest, "mute_all needs a string room and a bool on");
    return;
  }
  Room* r = room_for(c, root, true);
  if (r == nullptr) return;
  if (member(*r, c.user.id)->role < Role::kModerator) {
    reply_error(c, ErrorCode::kForbidden, "only a moderator or master may do this");
    return;
  }
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
    Room* rr = find_room(id);
    if (rr != nullptr) {
      auto it = rr->members.find(uid);
      if (it != rr->members.end()) it->second.role = role;
    }
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
  Room* r = room_for(c, root, true);
  if (r == nullptr) return;
  const MemberRecord* me = member(*r, c.user.id);
  if (me->role < Role::kModerator) {
    reply_error(c, ErrorCode::kForbidden, "only a moderator or master may do this");
    return;
  }
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
  Room* r = room_for(c, root, true);
  if (r == nullptr) return;
  if (member(*r, c.user.id)->role < Role::kModerator) {
    reply_error(c, ErrorCode::kForbidden, "only a moderator or master may do this");
    return;
  }
  if (!is_banned(*r, target)) {
    reply_error(c, ErrorCode::kNotFound, "that user is not banned from this room");
    return;
  }
  write_ban(c, r->rec.id, target, false);
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
