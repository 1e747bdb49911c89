// The management API's rooms routes (contract section 4).
#include <cstdlib>
#include <utility>

#include "rooms/rooms.h"
#include "util/json.h"
#include "util/log.h"
#include "util/wire_error.h"

namespace hut::rooms {
namespace {

// The user the management API acts as when a body names nobody.
UserRecord admin_user() {
  UserRecord u;
  u.id = "admin";
  u.name = "Admin";
  return u;
}

net::HttpResponse error_response(int status, std::string_view code, std::string_view message) {
  return {status, "application/json", {}, http_error_body(code, message)};
}

net::HttpResponse json_response(int status, std::string body) {
  return {status, "application/json", {}, std::move(body)};
}

net::HttpResponse status_response(const Status& st) {
  WireError code = wire_error_of(st);
  return error_response(wire_error_http_status(code), wire_error_name(code), st.message());
}

net::HttpResponse no_content() {
  net::HttpResponse r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

// A query parameter's raw value; false when absent.
bool query_param(std::string_view query, std::string_view name, std::string* out) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    size_t eq = part.find('=');
    if (part.substr(0, eq) == name) {
      *out = eq == std::string_view::npos ? std::string() : std::string(part.substr(eq + 1));
      return true;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

bool parse_uint(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 15) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  *out = std::strtoull(s.c_str(), nullptr, 10);
  return true;
}

JsonPtr parse_body(const std::string& body) {
  JsonPtr j(cJSON_ParseWithLength(body.data(), body.size()));
  if (j && !cJSON_IsObject(j.get())) j.reset();
  return j;
}

}  // namespace

void Rooms::handle_admin(const ExPtr& ex) {
  // In a cluster the routes act on the whole space: first the rooms other
  // nodes created since this one loaded its rooms.
  if (shared_store()) return load_missing_rooms(true, [this, ex] { admin_route(ex); });
  admin_route(ex);
}

void Rooms::admin_route(const ExPtr& ex) {
  constexpr std::string_view kPrefix = "/api/v1/rooms";
  std::string_view rest = std::string_view(ex->path).substr(kPrefix.size());
  const std::string& m = ex->method;
  if (rest.empty() || rest == "/") {
    if (m == "GET") return admin_list(ex);
    if (m == "POST") return admin_create(ex);
    return ex->respond(error_response(405, "bad_request", "use GET or POST"));
  }
  if (rest.front() != '/') return ex->respond(error_response(404, "not_found", "no such route"));
  rest.remove_prefix(1);
  size_t slash = rest.find('/');
  std::string room(rest.substr(0, slash));
  std::string_view tail = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (tail.empty()) {
    if (m == "GET") return admin_get(ex, room);
    if (m == "DELETE") return admin_delete(ex, room);
    return ex->respond(error_response(405, "bad_request", "use GET or DELETE"));
  }
  if (tail == "/messages") {
    if (m == "GET") return admin_history(ex, room);
    if (m == "POST") return admin_post(ex, room);
    return ex->respond(error_response(405, "bad_request", "use GET or POST"));
  }
  // "/members/<user>" and "/bans/<user>", the user without a '/'.
  size_t cut = tail.find('/', 1);
  std::string_view sub = cut == std::string_view::npos ? tail : tail.substr(0, cut + 1);
  std::string user(cut == std::string_view::npos ? std::string_view() : tail.substr(cut + 1));
  if ((sub == "/members/" || sub == "/bans/") && !user.empty() && user.find('/') == std::string::npos) {
    if (m != "PUT" && m != "DELETE")
      return ex->respond(error_response(405, "bad_request", "use PUT or DELETE"));
    // The room's bans and kept mutes as the shared store has them (another
    // node may have written them with no event reaching this one).
    return refresh_sanctions(room, [this, ex, room, user, bans = sub == "/bans/", put = m == "PUT"] {
      if (bans) return admin_ban(ex, room, user, put);
      return put ? admin_put_member(ex, room, user) : admin_kick(ex, room, user);
    });
  }
  ex->respond(error_response(404, "not_found", "no such route"));
}

void Rooms::admin_list(const ExPtr& ex) {
  std::string out = "[";
  bool first = true;
  for (const auto& [id, r] : rooms_) {
    size_t on = 0;
    for (const auto& [uid, mem] : r.members)
      if (online(uid)) ++on;
    if (!first) out += ',';
    first = false;
    out += R"({"room":)" + json_string(id) + R"(,"private":)" + (r.rec.is_private ? "true" : "false") +
           R"(,"topic":)" + json_string(r.rec.topic) + R"(,"members":)" + std::to_string(r.members.size()) +
           R"(,"online":)" + std::to_string(on) + R"(,"last_seq":)" + std::to_string(r.rec.last_seq) + '}';
  }
  out += ']';
  ex->respond(json_response(200, out));
}

void Rooms::admin_get(const ExPtr& ex, const std::string& room) {
  Room* r = find_room(room);
  if (r == nullptr) return ex->respond(error_response(404, "not_found", "no such room"));
  std::string out = R"({"room":)" + json_string(room) + R"(,"private":)" +
                    (r->rec.is_private ? "true" : "false") + R"(,"topic":)" + json_string(r->rec.topic) +
                    R"(,"last_seq":)" + std::to_string(r->rec.last_seq) + R"(,"members":[)";
  bool first = true;
  for (const auto& [uid, mem] : r->members) {
    if (!first) out += ',';
    first = false;
    out += R"({"id":)" + json_string(uid) + R"(,"role":)" + json_string(role_name(mem.role)) + '}';
  }
  out += "]}";
  ex->respond(json_response(200, out));
}

void Rooms::admin_create(const ExPtr& ex) {
  JsonPtr body = parse_body(ex->body);
  const char* id = body ? get_string(body.get(), "room") : nullptr;
  const cJSON* priv = body ? get_field(body.get(), "private") : nullptr;
  const cJSON* topic = body ? get_field(body.get(), "topic") : nullptr;
  const cJSON* master = body ? get_field(body.get(), "master") : nullptr;
  const cJSON* members = body ? get_field(body.get(), "members") : nullptr;
  bool bad = id == nullptr || (priv && !cJSON_IsBool(priv)) || (topic && !cJSON_IsString(topic)) ||
             (master && !cJSON_IsString(master)) || (members && !cJSON_IsArray(members));
  if (!bad && members) {
    const cJSON* e = nullptr;
    cJSON_ArrayForEach(e, members) bad = bad || !cJSON_IsString(e);
  }
  if (bad)
    return ex->respond(error_response(
        400, "bad_request",
        "the body is {room, private?: bool, topic?: string, master?: user id, members?: [user ids]}"));
  RoomRecord rec;
  rec.id = id;
  rec.topic = topic ? topic->valuestring : "";
  rec.is_private = priv && cJSON_IsTrue(priv);
  rec.created_ts = wall_ms();
  std::vector<MemberRecord> list;
  auto add = [&](const std::string& uid, Role role) {
    for (MemberRecord& mr : list)
      if (mr.user.id == uid) {
        if (role > mr.role) mr.role = role;
        return;
      }
    MemberRecord mr;
    mr.room = rec.id;
    mr.user = user_record(uid);
    mr.role = role;
    mr.joined_ts = rec.created_ts;
    list.push_back(mr);
  };
  if (master) add(master->valuestring, Role::kMaster);
  if (members) {
    const cJSON* e = nullptr;
    cJSON_ArrayForEach(e, members) add(e->valuestring, Role::kMember);
  }
  std::weak_ptr<net::HttpExchange> weak = ex;
  std::string room = rec.id;
  create_room(std::move(rec), std::move(list), [weak, room](Status st) {
    auto ex2 = weak.lock();
    if (!ex2) return;
    if (!st.ok()) return ex2->respond(status_response(st));
    ex2->respond(json_response(201, R"({"room":)" + json_string(room) + '}'));
  });
}

void Rooms::remove_room(const std::string& room) {
  Room* r = find_room(room);
  if (r == nullptr) return;
  to_room(room, R"({"op":"room_removed","room":)" + json_string(room) + '}');
  for (const auto& [uid, mem] : r->members) markers_.erase({room, uid});
  rooms_.erase(room);
}

void Rooms::admin_delete(const ExPtr& ex, const std::string& room) {
  if (find_room(room) == nullptr) return ex->respond(error_response(404, "not_found", "no such room"));
  std::weak_ptr<net::HttpExchange> weak = ex;
  store_->delete_room(room, [this, weak, room](Status st) {
    auto ex2 = weak.lock();
    if (!st.ok()) {
      if (ex2) ex2->respond(status_response(st));
      return;
    }
    remove_room(room);
    if (ex2) ex2->respond(no_content());
  });
}

void Rooms::admin_put_member(const ExPtr& ex, const std::string& room, const std::string& user) {
  Room* r = find_room(room);
  if (r == nullptr) return ex->respond(error_response(404, "not_found", "no such room"));
  JsonPtr body = ex->body.empty() ? JsonPtr(cJSON_CreateObject()) : parse_body(ex->body);
  const char* role_s = body ? get_string(body.get(), "role") : nullptr;
  Role role = Role::kMember;
  if (!body ||
      (get_field(body.get(), "role") != nullptr && (role_s == nullptr || !parse_role(role_s, &role))))
    return ex->respond(
        error_response(400, "bad_request", "the body is {role?: member, moderator or master}"));
  const MemberRecord* existing = member(*r, user);
  if (existing == nullptr && (is_banned(*r, user) || banning_.count({room, user}) != 0))
    return ex->respond(
        error_response(409, "conflict", "the user is banned from this room; lift the ban first"));
  MemberRecord mr = existing != nullptr ? *existing : MemberRecord{};
  bool is_new = existing == nullptr;
  mr.room = room;
  mr.user = user_record(user);
  if (is_new) restore_mute(*r, &mr);
  // A mute that ended is not written back (its clearing may be in flight).
  if (mr.mute_until.has_value() && *mr.mute_until != kMuteForever && *mr.mute_until <= wall_ms())
    mr.mute_until.reset();
  if (role_s != nullptr) mr.role = role;
  if (is_new) mr.joined_ts = wall_ms();
  bool role_changed = !is_new && role_s != nullptr && existing->role != role;
  std::weak_ptr<net::HttpExchange> weak = ex;
  // The record written carries the member's mute as it stands now.
  mute_write_begin(mr.room, mr.user.id);
  store_->put_member(mr, [this, weak, mr, is_new, role_changed](Status st) {
    mute_write_end(mr.room, mr.user.id);
    auto ex2 = weak.lock();
    if (!st.ok()) {
      if (ex2) ex2->respond(status_response(st));
      return;
    }
    Room* rr = find_room(mr.room);
    users_.try_emplace(mr.user.id, mr.user);
    if (rr != nullptr) {
      rr->members[mr.user.id] = mr;
      watch_mute(mr.room, mr.user.id, mr.mute_until);
      if (is_new) member_added(mr.room, mr);
      if (role_changed)
        to_room(mr.room,
                member_event("role", mr.room, mr.user.id, R"(,"role":)" + json_string(role_name(mr.role))));
    }
    if (ex2)
      ex2->respond(json_response(200, R"({"room":)" + json_string(mr.room) + R"(,"user":)" +
                                          json_string(mr.user.id) + R"(,"role":)" +
                                          json_string(role_name(mr.role)) + '}'));
  });
}

void Rooms::admin_kick(const ExPtr& ex, const std::string& room, const std::string& user) {
  Room* r = find_room(room);
  if (r == nullptr) return ex->respond(error_response(404, "not_found", "no such room"));
  if (member(*r, user) == nullptr) return ex->respond(error_response(404, "not_found", "not a member"));
  std::weak_ptr<net::HttpExchange> weak = ex;
  store_->remove_member(room, user, [this, weak, room, user](Status st) {
    auto ex2 = weak.lock();
    if (!st.ok()) {
      if (ex2) ex2->respond(status_response(st));
      return;
    }
    member_removed(room, user, user_obj(admin_user()));
    if (ex2) ex2->respond(no_content());
  });
}

void Rooms::admin_ban(const ExPtr& ex, const std::string& room, const std::string& user, bool banned) {
  Room* r = find_room(room);
  if (r == nullptr) return ex->respond(error_response(404, "not_found", "no such room"));
  if (!banned && !is_banned(*r, user))
    return ex->respond(error_response(404, "not_found", "the user is not banned from this room"));
  if (banned) banning_.insert({room, user});
  std::weak_ptr<net::HttpExchange> weak = ex;
  mute_write_begin(room, user);
  store_->set_ban(room, user, banned, [this, weak, room, user, banned](Status st) {
    mute_write_end(room, user);
    if (banned) banning_.erase({room, user});
    auto ex2 = weak.lock();
    if (!st.ok()) {
      if (ex2) ex2->respond(status_response(st));
      return;
    }
    ban_committed(room, user, banned, user_obj(admin_user()));
    if (ex2) ex2->respond(no_content());
  });
}

void Rooms::admin_post(const ExPtr& ex, const std::string& room) {
  if (find_room(room) == nullptr) return ex->respond(error_response(404, "not_found", "no such room"));
  JsonPtr body = parse_body(ex->body);
  const char* text = body ? get_string(body.get(), "text") : nullptr;
  const cJSON* from = body ? get_field(body.get(), "from") : nullptr;
  Submission s;
  s.room = room;
  s.from = admin_user();
  if (from != nullptr) {
    const char* fid = get_string(from, "id");
    const char* fname = get_string(from, "name");
    const char* favatar = get_string(from, "avatar");
    if (!cJSON_IsObject(from) || fid == nullptr || *fid == '\0') {
      text = nullptr;
    } else {
      s.from.id = fid;
      s.from.name = fname != nullptr ? fname : fid;
      s.from.avatar = favatar != nullptr ? favatar : "";
    }
  }
  if (text == nullptr)
    return ex->respond(
        error_response(400, "bad_request", "the body is {text, data?, from?: {id, name, avatar?}}"));
  s.text = text;
  if (const cJSON* data = get_field(body.get(), "data")) {
    char* printed = cJSON_PrintUnformatted(data);
    if (printed != nullptr) s.data_json = printed;
    cJSON_free(printed);
  }
  std::weak_ptr<net::HttpExchange> weak = ex;
  submit(std::move(s), [weak](const Outcome& o) {
    auto ex2 = weak.lock();
    if (!ex2) return;
    if (o.ok)
      return ex2->respond(json_response(
          201, R"({"seq":)" + std::to_string(o.seq) + R"(,"ts":)" + std::to_string(o.ts) + '}'));
    ex2->respond(error_response(wire_error_http_status(o.code), wire_error_name(o.code), o.message));
  });
}

void Rooms::admin_history(const ExPtr& ex, const std::string& room) {
  if (find_room(room) == nullptr) return ex->respond(error_response(404, "not_found", "no such room"));
  uint64_t before = 0, limit = 50;
  std::string v;
  if ((query_param(ex->query, "before", &v) && !v.empty() && !parse_uint(v, &before)) ||
      (query_param(ex->query, "limit", &v) && !v.empty() &&
       (!parse_uint(v, &limit) || limit < 1 || limit > 200)))
    return ex->respond(error_response(400, "bad_request", "before is a seq, limit is 1 to 200"));
  std::weak_ptr<net::HttpExchange> weak = ex;
  store_->history(room, before, static_cast<int>(limit), [weak](Result<HistoryPage> res) {
    auto ex2 = weak.lock();
    if (!ex2) return;
    if (!res.ok()) return ex2->respond(status_response(res.status()));
    ex2->respond(json_response(200, '{' + history_fields(*res) + '}'));
  });
}

}  // namespace hut::rooms
