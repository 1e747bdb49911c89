#include "client/wire.h"

namespace hut {

namespace client {

std::string print(const cJSON* j) {
  char* t = cJSON_PrintUnformatted(j);
  std::string out = t ? t : "";
  cJSON_free(t);
  return out;
}

std::string str(const cJSON* o, const char* name) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? std::string(v->valuestring) : std::string();
}

int64_t num(const cJSON* o, const char* name) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, name);
  if (!cJSON_IsNumber(v)) return 0;
  // A number out of int64_t's range (or NaN) from the network is not cast:
  // that is undefined. The bounds are the doubles nearest to them inside.
  double d = v->valuedouble;
  if (!(d > -9.2e18 && d < 9.2e18)) return 0;
  return static_cast<int64_t>(d);
}

bool boolean(const cJSON* o, const char* name) {
  return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, name));
}

std::string json_field(const cJSON* o, const char* name) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, name);
  return v ? print(v) : std::string();
}

void read_field(const cJSON* o, std::string_view name, std::string& v) {
  bool raw = name.ends_with('*');
  std::string key(raw ? name.substr(0, name.size() - 1) : name);
  v = raw ? json_field(o, key.c_str()) : str(o, key.c_str());
}

void read_field(const cJSON* o, std::string_view name, int64_t& v) { v = num(o, std::string(name).c_str()); }

void read_field(const cJSON* o, std::string_view name, bool& v) { v = boolean(o, std::string(name).c_str()); }

void read_field(const cJSON* o, std::string_view name, User& v) {
  v = user_of(cJSON_GetObjectItemCaseSensitive(o, std::string(name).c_str()));
}

User user_of(const cJSON* o) {
  User u;
  if (cJSON_IsObject(o)) read_fields(o, &u, "id name avatar", &User::id, &User::name, &User::avatar);
  return u;
}

Message message_of(const cJSON* o) {
  Message m;
  read_fields(o, &m, "room seq ts from text data* edited_ts", &Message::room, &Message::seq, &Message::ts,
              &Message::from, &Message::text, &Message::data_json, &Message::edited_ts);
  return m;
}

MemberInfo member_of(const cJSON* o) {
  MemberInfo m;
  read_fields(o, &m, "id name role online muted", &MemberInfo::id, &MemberInfo::name, &MemberInfo::role,
              &MemberInfo::online, &MemberInfo::muted);
  return m;
}

RoomInfo room_of(const cJSON* o) {
  RoomInfo r;
  read_fields(o, &r, "room topic private role unread last_seq", &RoomInfo::room, &RoomInfo::topic,
              &RoomInfo::is_private, &RoomInfo::role, &RoomInfo::unread, &RoomInfo::last_seq);
  // The other user of a direct-message room: their object, or their id.
  const cJSON* dm = cJSON_GetObjectItemCaseSensitive(o, "dm");
  r.dm = cJSON_IsObject(dm) ? str(dm, "id") : (cJSON_IsString(dm) ? std::string(dm->valuestring) : "");
  return r;
}

Event event_of(const cJSON* o, std::string_view text) {
  Event e;
  read_fields(o, &e, "op room seq user by text edited_ts online on role until plugin data* title body url",
              &Event::op, &Event::room, &Event::seq, &Event::user, &Event::by, &Event::text,
              &Event::edited_ts, &Event::online, &Event::on, &Event::role, &Event::until, &Event::plugin,
              &Event::data_json, &Event::title, &Event::body, &Event::url);
  e.json = std::string(text);
  if (e.op == "message") e.message = message_of(o);
  return e;
}

Welcome welcome_of(const cJSON* o, std::string_view text) {
  Welcome w;
  read_fields(o, &w, "session user", &Welcome::session, &Welcome::user);
  const cJSON* sp = cJSON_GetObjectItemCaseSensitive(o, "space");
  w.space_id = str(sp, "id");
  w.space_name = str(sp, "name");
  w.rooms = array_of<std::pair<std::string, int64_t>>(
      o, "rooms", [](const cJSON* it) { return std::make_pair(str(it, "room"), num(it, "unread")); });
  w.json = std::string(text);
  return w;
}

JoinResult join_result_of(const cJSON* o) {
  JoinResult r;
  read_fields(o, &r, "room role last_seq read_seq member_count more", &JoinResult::room, &JoinResult::role,
              &JoinResult::last_seq, &JoinResult::read_seq, &JoinResult::member_count, &JoinResult::more);
  r.members = array_of<MemberInfo>(o, "members", member_of);
  return r;
}

SpaceInfo space_info_of(const cJSON* o) {
  SpaceInfo info;
  read_fields(o, &info, "id name relay", &SpaceInfo::id, &SpaceInfo::name, &SpaceInfo::relay);
  return info;
}

std::string message_frame(const std::string& room, const Message& m) {
  Json j(cJSON_CreateObject());
  cJSON_AddStringToObject(j.get(), "op", "message");
  cJSON_AddStringToObject(j.get(), "room", room.c_str());
  cJSON_AddNumberToObject(j.get(), "seq", static_cast<double>(m.seq));
  cJSON_AddNumberToObject(j.get(), "ts", static_cast<double>(m.ts));
  cJSON* from = cJSON_AddObjectToObject(j.get(), "from");
  cJSON_AddStringToObject(from, "id", m.from.id.c_str());
  cJSON_AddStringToObject(from, "name", m.from.name.c_str());
  if (!m.from.avatar.empty()) cJSON_AddStringToObject(from, "avatar", m.from.avatar.c_str());
  cJSON_AddStringToObject(j.get(), "text", m.text.c_str());
  if (!m.data_json.empty()) cJSON_AddItemToObject(j.get(), "data", cJSON_Parse(m.data_json.c_str()));
  if (m.edited_ts != 0) cJSON_AddNumberToObject(j.get(), "edited_ts", static_cast<double>(m.edited_ts));
  return print(j.get());
}

Status status_of_wire(const std::string& code, const std::string& message) {
  std::string text = code + ": " + message;
  if (code == "bad_request" || code == "too_large") return Status::invalid_argument(text);
  if (code == "unauthenticated") return Status::unauthenticated(text);
  if (code == "forbidden" || code == "muted") return Status::permission_denied(text);
  if (code == "not_found") return Status::not_found(text);
  if (code == "conflict") return Status::already_exists(text);
  if (code == "rate_limited") return Status::resource_exhausted(text);
  if (code == "unavailable") return Status::unavailable(text);
  return Status::internal(text);
}

Status http_error(const HttpReply& r, const std::string& what) {
  Json j(cJSON_ParseWithLength(r.body.data(), r.body.size()));
  std::string code, message;
  if (j) {
    const cJSON* e = cJSON_GetObjectItemCaseSensitive(j.get(), "error");
    code = str(e, "code");
    message = str(e, "message");
  }
  std::string text = what + ": HTTP " + std::to_string(r.status) + (message.empty() ? "" : " " + message);
  if (!code.empty()) text = code + ": " + text;
  if (r.status == 401) return Status::unauthenticated(text);
  if (r.status == 403) return Status::permission_denied(text);
  if (r.status == 404) return Status::not_found(text);
  if (r.status == 409) return Status::already_exists(text);
  if (r.status == 400 || r.status == 413 || r.status == 415 || r.status == 422)
    return Status::invalid_argument(text);
  if (r.status == 429) return Status::resource_exhausted(text);
  return Status::unavailable(text);
}

std::string trim_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace client

std::string wire_code(const Status& status) {
  if (status.ok()) return {};
  std::string_view m = status.message();
  size_t colon = m.find(": ");
  if (colon == std::string_view::npos) return {};
  std::string_view code = m.substr(0, colon);
  for (char c : code)
    if (!(c == '_' || (c >= 'a' && c <= 'z'))) return {};
  return std::string(code);
}

}  // namespace hut
