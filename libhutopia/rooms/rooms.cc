// The room state: the in-memory room and member tables read from the store,
// the shapes of users and messages, the bus hooks and the op dispatch.
#include <algorithm>
#include <chrono>

#include "rooms/rooms_internal.h"
#include "util/clock.h"
#include "util/log.h"

namespace hut::rooms {

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
  if (cluster_.to_room_elsewhere) cluster_.to_room_elsewhere(room, frame);
}

void Rooms::to_user(std::string_view user, const std::string& frame, std::string_view except_session) {
  // By id, from a copy: a send may end a session, and change the bus's list,
  // when the server is shutting down.
  std::vector<std::string> ids;
  for (const bus::Session* s : bus_->user_sessions(user))
    if (s->id != except_session) ids.push_back(s->id);
  for (const std::string& sid : ids) bus_->send_to_session(sid, frame);
}

void Rooms::to_user_everywhere(std::string_view user, const std::string& frame,
                               std::string_view except_session) {
  to_user(user, frame, except_session);
  if (cluster_.to_user_elsewhere && cluster_.online_elsewhere(user)) cluster_.to_user_elsewhere(user, frame);
}

Rooms::Room* Rooms::find_room(std::string_view id) {
  auto it = rooms_.find(std::string(id));
  return it == rooms_.end() ? nullptr : &it->second;
}

const MemberRecord* Rooms::member(const Room& r, std::string_view user) const {
  auto it = r.members.find(std::string(user));
  return it == r.members.end() ? nullptr : &it->second;
}

MemberRecord* Rooms::loaded_member(std::string_view room, std::string_view user) {
  Room* r = find_room(room);
  if (r == nullptr) return nullptr;
  auto it = r->members.find(std::string(user));
  return it == r->members.end() ? nullptr : &it->second;
}

bool Rooms::is_muted(const Room& r, const MemberRecord& m) {
  if (r.rec.mute_all && m.role == Role::kMember) return true;
  return m.mute_until.has_value() && *m.mute_until > wall_ms();
}

bool Rooms::online(std::string_view user) const {
  return !bus_->user_sessions(user).empty() || (cluster_.online_elsewhere && cluster_.online_elsewhere(user));
}

std::vector<std::string> Rooms::local_users() const { return bus_->user_ids(); }

void Rooms::remote_presence(std::string_view user, bool is_online) {
  if (bus_->user_sessions(user).empty()) announce_presence(user, is_online);
}

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
  session.rooms.post_tokens = options_.post_burst;
  session.rooms.post_refill_ms = now_ms();
  // The bus has added the session to its user's list already.
  if (bus_->user_sessions(uid).size() == 1) local_presence(uid, true);
}

void Rooms::session_closed(bus::Session& session) {
  // The bus has taken the session off its user's list already.
  if (bus_->user_sessions(session.user.id).empty()) local_presence(session.user.id, false);
}

void Rooms::handle_op(bus::Session& session, const bus::ClientFrame& frame) {
  Ctx c{session.id, frame.ref_json, session.user};
  const cJSON* root = frame.root.get();
  const char* room = get_string(root, "room");
  if (shared_store() && frame.op == bus::Op::kRooms) {
    // The room list includes the rooms other nodes created since.
    std::shared_ptr<cJSON> copy(cJSON_Duplicate(root, true), cJSON_Delete);
    load_missing_rooms(false, [this, c, copy] {
      if (bus_->welcomed_session(c.session) != nullptr) dispatch_op(c, bus::Op::kRooms, copy.get());
    });
    return;
  }
  if (shared_store() && room != nullptr && frame.op != bus::Op::kCreate && find_room(room) == nullptr) {
    std::shared_ptr<cJSON> copy(cJSON_Duplicate(root, true), cJSON_Delete);
    load_room(room, [this, c, op = frame.op, copy] {
      if (bus_->welcomed_session(c.session) != nullptr)
        dispatch_op(c, op, copy.get());  // unless it closed meanwhile
    });
    return;
  }
  dispatch_op(c, frame.op, root);
}

void Rooms::dispatch_op(const Ctx& c, bus::Op op, const cJSON* root) {
  switch (op) {
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

}  // namespace hut::rooms
