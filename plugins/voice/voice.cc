// voice: WebRTC audio among the members of a room, with the space as the
// signaling server (wire contract section 8, docs/voice.md).
//
// Each room has at most one voice channel, a list of participants. A
// participant is a user with the one bus session that joined; events go to
// that session. The plugin keeps no state on disk: channels live in memory and
// end with the plugin (a reload empties them; clients rejoin on the `welcome`
// of their next connection, or by hand).
//
// Requests are `widget` ops with data {"action": ...}; everything runs on the
// loop thread. Its widget, <hut-voice>, is dist/widget.js, embedded in the
// library.
#include <cJSON.h>
#include <hutopia/plugin.h>
#include <hutopia/plugin_assets.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <vector>

// Made by scripts/embed_assets.py from dist/.
HUT_DECLARE_ASSETS(voice_assets)

namespace {

const hut_widget_desc kWidgets[] = {{"hut-voice", "widget.js"}};

hut_plugin_descriptor descriptor = {
    HUT_PLUGIN_ABI_MAJOR,
    HUT_PLUGIN_ABI_MINOR,
    "voice",
    "1.0.0",
    nullptr,
    kWidgets,
    1,
    0,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    0,
};

constexpr size_t kMaxSignal = 16 * 1024;  // bytes of a signal's JSON (contract section 8)
constexpr size_t kMaxRoomName = 256;

// JSON values this file builds; cJSON_Delete on scope exit.
struct JsonDeleter {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};
using Json = std::unique_ptr<cJSON, JsonDeleter>;

std::string print(const cJSON* j) {
  char* s = cJSON_PrintUnformatted(j);
  if (s == nullptr) return "null";
  std::string out(s);
  cJSON_free(s);
  return out;
}

struct User {
  std::string id, name, avatar;
};

cJSON* user_json(const User& u) {
  cJSON* o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "id", u.id.c_str());
  cJSON_AddStringToObject(o, "name", u.name.c_str());
  if (!u.avatar.empty()) cJSON_AddStringToObject(o, "avatar", u.avatar.c_str());
  return o;
}

int role_rank(const std::string& role) {
  if (role == "master") return 2;
  if (role == "moderator") return 1;
  return 0;
}

struct Participant {
  User user;
  std::string session;  // the bus session that joined; events go there
  bool self_muted = false;
  bool mod_muted = false;  // muted by a moderator: only a moderator unmutes
  bool deaf = false;
  bool gone = false;  // its session went away; removed when the grace timer fires
  uint64_t grace_timer = 0;
  // Signals: a token bucket, so that one participant cannot flood another.
  double tokens = 0;
  uint64_t refilled_ms = 0;

  bool muted() const { return self_muted || mod_muted; }
};

struct Channel {
  std::vector<std::unique_ptr<Participant>> participants;  // in the order they joined
  bool muted_all = false;

  Participant* find(const std::string& user_id) {
    for (auto& p : participants)
      if (p->user.id == user_id) return p.get();
    return nullptr;
  }
};

struct Config {
  std::vector<std::string> stun, turn;
  std::string turn_secret;
  int64_t credential_ttl = 3600;
  int64_t max_participants = 8;
  int64_t grace_ms = 15000;
  double signal_rate = 50;    // signals per second per participant
  double signal_burst = 200;  // signals a participant may send at once
};

uint64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1000000u;
}

class Voice;
struct GraceArg {
  Voice* voice;
  std::string room, user;
};

class Voice {
 public:
  Voice(const hut_host* host, hut_plugin* self) : host_(host), self_(self) {}
  ~Voice() {
    for (auto& [room, ch] : channels_)
      for (auto& p : ch.participants)
        if (p->grace_timer != 0) host_->timer_stop(self_, p->grace_timer);
    for (GraceArg* a : grace_args_) delete a;
  }

  int configure(const char* config_json, std::string* error);
  int on_widget(const hut_widget_request* req);
  void on_member_left(const char* room, const hut_user* user) { remove(room, user->id, true); }
  void on_user_offline(const hut_user* user);
  void grace_expired(GraceArg* arg);

 private:
  int refuse(uint64_t id, const char* code, const std::string& message) {
    host_->reply_error(self_, id, code, message.c_str());
    return HUT_OK;
  }
  int reply(uint64_t id, const cJSON* data) {
    std::string s = print(data);
    return host_->reply(self_, id, s.data(), s.size());
  }
  int reply_empty(uint64_t id) { return host_->reply(self_, id, "{}", 2); }

  // Sends an event to one participant's session. A session the space no
  // longer knows means that connection is gone: the grace period starts.
  void send_to(const std::string& room, Participant* p, const std::string& event) {
    if (p->gone) return;
    int rc =
        host_->send_widget_event(self_, HUT_TARGET_SESSION, p->session.c_str(), event.data(), event.size());
    if (rc == HUT_ENOENT) start_grace(room, p);
  }
  void broadcast(const std::string& room, const cJSON* event, const std::string& except_user) {
    std::string s = print(event);
    auto it = channels_.find(room);
    if (it == channels_.end()) return;
    // send_to may start a grace timer but never removes anyone, so the list
    // stays as it is during the loop.
    for (auto& p : it->second.participants)
      if (p->user.id != except_user) send_to(room, p.get(), s);
  }

  // The room's members as the rooms part keeps them, or an error code.
  int members(const std::string& room, Json* out);
  // The role of `user_id` in `room`: "" when not a member; rc for no room.
  int role_of(const std::string& room, const std::string& user_id, std::string* role);

  cJSON* participant_json(const Participant& p) const {
    cJSON* o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "user", user_json(p.user));
    cJSON_AddBoolToObject(o, "muted", p.muted());
    cJSON_AddBoolToObject(o, "deaf", p.deaf);
    // An extension: true while the mute can only be lifted by a moderator.
    cJSON_AddBoolToObject(o, "muted_by_moderator", p.mod_muted);
    return o;
  }
  void send_muted(const std::string& room, const Participant& p, const User* by) {
    Json ev(cJSON_CreateObject());
    cJSON_AddStringToObject(ev.get(), "event", "muted");
    cJSON_AddStringToObject(ev.get(), "room", room.c_str());
    cJSON_AddItemToObject(ev.get(), "user", user_json(p.user));
    cJSON_AddBoolToObject(ev.get(), "on", p.muted());
    cJSON_AddBoolToObject(ev.get(), "muted_by_moderator", p.mod_muted);
    if (by != nullptr) cJSON_AddItemToObject(ev.get(), "by", user_json(*by));
    broadcast(room, ev.get(), "");
  }

  void start_grace(const std::string& room, Participant* p);
  void cancel_grace(const std::string& room, Participant* p) {
    if (p->grace_timer == 0) return;
    host_->timer_stop(self_, p->grace_timer);
    p->grace_timer = 0;
    for (auto it = grace_args_.begin(); it != grace_args_.end(); ++it)
      if ((*it)->room == room && (*it)->user == p->user.id) {
        delete *it;
        grace_args_.erase(it);
        break;
      }
  }
  void remove(const std::string& room, const std::string& user_id, bool tell_others);

  int act_ice(const hut_widget_request* req);
  int act_join(const hut_widget_request* req, const User& me, const std::string& room);
  int act_signal(const hut_widget_request* req, const User& me, const std::string& room, const cJSON* data);
  int act_mute(const hut_widget_request* req, const User& me, const std::string& room, const cJSON* data);
  int act_mute_all(const hut_widget_request* req, const User& me, const std::string& room, bool on);

  const hut_host* host_;
  hut_plugin* self_;
  Config config_;
  std::map<std::string, Channel> channels_;
  std::vector<GraceArg*> grace_args_;  // owned; freed when their timer fires or at the end
};

// ---- configuration ------------------------------------------------------

bool read_urls(const cJSON* config, const char* key, std::vector<std::string>* out, std::string* error) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(config, key);
  if (v == nullptr) return true;
  if (cJSON_IsString(v)) {
    if (v->valuestring[0] != '\0') out->push_back(v->valuestring);
    return true;
  }
  if (!cJSON_IsArray(v)) {
    *error = std::string("voice.toml: `") + key + "` must be a URL or a list of URLs";
    return false;
  }
  const cJSON* item = nullptr;
  cJSON_ArrayForEach(item, v) {
    if (!cJSON_IsString(item) || item->valuestring[0] == '\0') {
      *error = std::string("voice.toml: every entry of `") + key + "` must be a URL";
      return false;
    }
    out->push_back(item->valuestring);
  }
  return true;
}

bool read_int(const cJSON* config, const char* key, int64_t lo, int64_t hi, int64_t* out,
              std::string* error) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(config, key);
  if (v == nullptr) return true;
  if (!cJSON_IsNumber(v) || v->valuedouble != static_cast<double>(static_cast<int64_t>(v->valuedouble)) ||
      v->valuedouble < static_cast<double>(lo) || v->valuedouble > static_cast<double>(hi)) {
    *error = std::string("voice.toml: `") + key + "` must be an integer from " + std::to_string(lo) + " to " +
             std::to_string(hi);
    return false;
  }
  *out = static_cast<int64_t>(v->valuedouble);
  return true;
}

int Voice::configure(const char* config_json, std::string* error) {
  Json config(cJSON_Parse(config_json != nullptr ? config_json : "{}"));
  if (!cJSON_IsObject(config.get())) {
    *error = "voice.toml: not a table";
    return HUT_EINVAL;
  }
  const cJSON* c = config.get();
  int64_t grace_seconds = config_.grace_ms / 1000, rate = 50, burst = 200;
  if (!read_urls(c, "stun", &config_.stun, error) || !read_urls(c, "turn", &config_.turn, error) ||
      !read_int(c, "credential_ttl", 60, 7 * 86400, &config_.credential_ttl, error) ||
      !read_int(c, "max_participants", 1, 64, &config_.max_participants, error) ||
      !read_int(c, "grace_seconds", 0, 3600, &grace_seconds, error) ||
      !read_int(c, "signal_rate", 1, 10000, &rate, error) ||
      !read_int(c, "signal_burst", 1, 100000, &burst, error))
    return HUT_EINVAL;
  config_.grace_ms = grace_seconds * 1000;
  config_.signal_rate = static_cast<double>(rate);
  config_.signal_burst = static_cast<double>(burst);
  const cJSON* secret = cJSON_GetObjectItemCaseSensitive(c, "turn_secret");
  const cJSON* secret_env = cJSON_GetObjectItemCaseSensitive(c, "turn_secret_env");
  if (secret != nullptr && !cJSON_IsString(secret)) {
    *error = "voice.toml: `turn_secret` must be a string";
    return HUT_EINVAL;
  }
  if (secret_env != nullptr && !cJSON_IsString(secret_env)) {
    *error = "voice.toml: `turn_secret_env` must be the name of an environment variable";
    return HUT_EINVAL;
  }
  if (secret != nullptr) config_.turn_secret = secret->valuestring;
  if (secret_env != nullptr) {
    const char* v = std::getenv(secret_env->valuestring);
    if (v != nullptr && v[0] != '\0') config_.turn_secret = v;
  }
  if (!config_.turn.empty() && config_.turn_secret.empty()) {
    *error =
        "voice.toml: `turn` needs `turn_secret` (or `turn_secret_env`), the static-auth-secret of the TURN "
        "server";
    return HUT_EINVAL;
  }
  return HUT_OK;
}

// ---- rooms ----------------------------------------------------------------

int Voice::members(const std::string& room, Json* out) {
  if (!HUT_HOST_HAS(host_, room_members)) return HUT_ENOTSUP;
  std::string buf(4096, '\0');
  size_t len = 0;
  int rc = host_->room_members(self_, room.c_str(), buf.data(), buf.size(), &len);
  if (rc == HUT_ERANGE) {
    buf.resize(len + 1);
    rc = host_->room_members(self_, room.c_str(), buf.data(), buf.size(), &len);
  }
  if (rc != HUT_OK) return rc;
  out->reset(cJSON_ParseWithLength(buf.data(), len));
  return cJSON_IsArray(out->get()) ? HUT_OK : HUT_EINTERNAL;
}

int Voice::role_of(const std::string& room, const std::string& user_id, std::string* role) {
  Json list;
  int rc = members(room, &list);
  role->clear();
  if (rc != HUT_OK) return rc;
  const cJSON* m = nullptr;
  cJSON_ArrayForEach(m, list.get()) {
    const cJSON* id = cJSON_GetObjectItemCaseSensitive(m, "id");
    const cJSON* r = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (cJSON_IsString(id) && user_id == id->valuestring) {
      *role = cJSON_IsString(r) ? r->valuestring : "member";
      return HUT_OK;
    }
  }
  return HUT_OK;
}

// ---- presence -----------------------------------------------------------------

void grace_cb(hut_plugin*, void* arg) {
  auto* a = static_cast<GraceArg*>(arg);
  a->voice->grace_expired(a);
}

void Voice::start_grace(const std::string& room, Participant* p) {
  if (p->gone) return;
  p->gone = true;
  auto* arg = new GraceArg{this, room, p->user.id};
  uint64_t id = 0;
  if (host_->timer_start(self_, static_cast<uint64_t>(config_.grace_ms), 0, grace_cb, arg, &id) != HUT_OK) {
    delete arg;
    return;  // stays until it rejoins or leaves; better than a crash
  }
  grace_args_.push_back(arg);
  p->grace_timer = id;
}

void Voice::grace_expired(GraceArg* arg) {
  std::string room = arg->room, user = arg->user;
  for (auto it = grace_args_.begin(); it != grace_args_.end(); ++it)
    if (*it == arg) {
      grace_args_.erase(it);
      break;
    }
  delete arg;
  auto ch = channels_.find(room);
  if (ch == channels_.end()) return;
  Participant* p = ch->second.find(user);
  if (p == nullptr || !p->gone) return;
  p->grace_timer = 0;
  remove(room, user, true);
}

void Voice::on_user_offline(const hut_user* user) {
  for (auto& [room, ch] : channels_) {
    Participant* p = ch.find(user->id);
    if (p != nullptr) start_grace(room, p);
  }
}

void Voice::remove(const std::string& room, const std::string& user_id, bool tell_others) {
  auto ch = channels_.find(room);
  if (ch == channels_.end()) return;
  auto& list = ch->second.participants;
  for (auto it = list.begin(); it != list.end(); ++it) {
    if ((*it)->user.id != user_id) continue;
    std::unique_ptr<Participant> p = std::move(*it);
    list.erase(it);
    cancel_grace(room, p.get());
    if (tell_others) {
      Json ev(cJSON_CreateObject());
      cJSON_AddStringToObject(ev.get(), "event", "left");
      cJSON_AddStringToObject(ev.get(), "room", room.c_str());
      cJSON_AddItemToObject(ev.get(), "user", user_json(p->user));
      broadcast(room, ev.get(), user_id);
    }
    break;
  }
  if (list.empty()) channels_.erase(ch);
}

// ---- requests -------------------------------------------------------------------

int Voice::on_widget(const hut_widget_request* req) {
  Json data(cJSON_ParseWithLength(req->data_json, req->data_len));
  const cJSON* action = cJSON_GetObjectItemCaseSensitive(data.get(), "action");
  if (!cJSON_IsString(action))
    return refuse(req->request_id, "bad_request",
                  "data.action must be one of ice, join, leave, signal, mute, deaf, mute_all");
  std::string act = action->valuestring;
  User me{req->user->id, req->user->name ? req->user->name : req->user->id,
          req->user->avatar ? req->user->avatar : ""};
  if (act == "ice") return act_ice(req);

  const cJSON* room_item = cJSON_GetObjectItemCaseSensitive(data.get(), "room");
  if (!cJSON_IsString(room_item) || room_item->valuestring[0] == '\0' ||
      std::strlen(room_item->valuestring) > kMaxRoomName)
    return refuse(req->request_id, "bad_request", "`room` must be a room name");
  std::string room = room_item->valuestring;

  if (act == "join") return act_join(req, me, room);
  if (act == "leave") {
    auto ch = channels_.find(room);
    Participant* p = ch == channels_.end() ? nullptr : ch->second.find(me.id);
    // Only the session in the channel leaves it; another tab's leave is a no-op.
    if (p != nullptr && (p->session == req->session_id || p->gone)) remove(room, me.id, true);
    return reply_empty(req->request_id);
  }
  if (act == "signal") return act_signal(req, me, room, data.get());
  if (act == "mute") return act_mute(req, me, room, data.get());
  if (act == "deaf" || act == "mute_all") {
    const cJSON* on = cJSON_GetObjectItemCaseSensitive(data.get(), "on");
    if (!cJSON_IsBool(on)) return refuse(req->request_id, "bad_request", "`on` must be true or false");
    if (act == "mute_all") return act_mute_all(req, me, room, cJSON_IsTrue(on));
    auto ch = channels_.find(room);
    Participant* p = ch == channels_.end() ? nullptr : ch->second.find(me.id);
    if (p == nullptr) return refuse(req->request_id, "forbidden", "you are not in this voice channel");
    p->deaf = cJSON_IsTrue(on);
    Json ev(cJSON_CreateObject());
    cJSON_AddStringToObject(ev.get(), "event", "deaf");
    cJSON_AddStringToObject(ev.get(), "room", room.c_str());
    cJSON_AddItemToObject(ev.get(), "user", user_json(p->user));
    cJSON_AddBoolToObject(ev.get(), "on", p->deaf);
    broadcast(room, ev.get(), "");
    return reply_empty(req->request_id);
  }
  return refuse(req->request_id, "bad_request",
                "data.action must be one of ice, join, leave, signal, mute, deaf, mute_all");
}

std::string base64(const unsigned char* data, size_t len) {
  std::string out(4 * ((len + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(len));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

int Voice::act_ice(const hut_widget_request* req) {
  Json out(cJSON_CreateObject());
  cJSON* servers = cJSON_AddArrayToObject(out.get(), "ice_servers");
  if (!config_.stun.empty()) {
    cJSON* s = cJSON_CreateObject();
    cJSON* urls = cJSON_AddArrayToObject(s, "urls");
    for (const auto& u : config_.stun) cJSON_AddItemToArray(urls, cJSON_CreateString(u.c_str()));
    cJSON_AddItemToArray(servers, s);
  }
  if (!config_.turn.empty()) {
    // TURN REST API credentials, as coturn's use-auth-secret checks them.
    std::string username = std::to_string(static_cast<int64_t>(std::time(nullptr)) + config_.credential_ttl) +
                           ":" + req->user->id;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha1(), config_.turn_secret.data(), static_cast<int>(config_.turn_secret.size()),
             reinterpret_cast<const unsigned char*>(username.data()), username.size(), mac,
             &mac_len) == nullptr)
      return refuse(req->request_id, "internal", "cannot compute the TURN credential");
    cJSON* s = cJSON_CreateObject();
    cJSON* urls = cJSON_AddArrayToObject(s, "urls");
    for (const auto& u : config_.turn) cJSON_AddItemToArray(urls, cJSON_CreateString(u.c_str()));
    cJSON_AddStringToObject(s, "username", username.c_str());
    cJSON_AddStringToObject(s, "credential", base64(mac, mac_len).c_str());
    cJSON_AddItemToArray(servers, s);
  }
  cJSON_AddNumberToObject(out.get(), "ttl", static_cast<double>(config_.credential_ttl));
  return reply(req->request_id, out.get());
}

int Voice::act_join(const hut_widget_request* req, const User& me, const std::string& room) {
  std::string role;
  int rc = role_of(room, me.id, &role);
  if (rc == HUT_ENOENT) return refuse(req->request_id, "not_found", "no room \"" + room + "\"");
  if (rc != HUT_OK)
    return refuse(req->request_id, "unavailable", std::string("rooms: ") + host_->strerror(rc));
  if (role.empty())
    return refuse(req->request_id, "forbidden",
                  "only members of \"" + room + "\" may join its voice channel");

  Channel& ch = channels_[room];
  Participant* p = ch.find(me.id);
  bool fresh = p == nullptr;
  if (fresh) {
    if (static_cast<int64_t>(ch.participants.size()) >= config_.max_participants) {
      if (ch.participants.empty()) channels_.erase(room);
      return refuse(req->request_id, "conflict",
                    "the voice channel of \"" + room + "\" is full (" +
                        std::to_string(config_.max_participants) + " participants at most)");
    }
    auto np = std::make_unique<Participant>();
    np->user = me;
    np->mod_muted = ch.muted_all && role_rank(role) < 1;
    np->tokens = config_.signal_burst;
    np->refilled_ms = now_ms();
    p = np.get();
    ch.participants.push_back(std::move(np));
  } else {
    // A rejoin (a reconnect within the grace period, or another tab taking
    // over): the others see nothing. A session that is replaced hears it.
    cancel_grace(room, p);
    if (!p->gone && p->session != req->session_id) {
      Json ev(cJSON_CreateObject());
      cJSON_AddStringToObject(ev.get(), "event", "left");
      cJSON_AddStringToObject(ev.get(), "room", room.c_str());
      cJSON_AddItemToObject(ev.get(), "user", user_json(me));
      cJSON_AddBoolToObject(ev.get(), "replaced", true);
      std::string s = print(ev.get());
      host_->send_widget_event(self_, HUT_TARGET_SESSION, p->session.c_str(), s.data(), s.size());
    }
    p->gone = false;
    p->user = me;
  }
  p->session = req->session_id;

  Json out(cJSON_CreateObject());
  cJSON_AddStringToObject(out.get(), "room", room.c_str());
  cJSON* list = cJSON_AddArrayToObject(out.get(), "participants");
  for (auto& other : ch.participants)
    if (other.get() != p) cJSON_AddItemToArray(list, participant_json(*other));
  // Extensions: the joiner's own state and the channel's.
  cJSON_AddItemToObject(out.get(), "me", participant_json(*p));
  cJSON_AddBoolToObject(out.get(), "muted_all", ch.muted_all);
  cJSON_AddStringToObject(out.get(), "role", role.c_str());
  reply(req->request_id, out.get());

  if (fresh) {
    Json ev(participant_json(*p));
    cJSON_AddStringToObject(ev.get(), "event", "joined");
    cJSON_AddStringToObject(ev.get(), "room", room.c_str());
    broadcast(room, ev.get(), me.id);
  }
  return HUT_OK;
}

int Voice::act_signal(const hut_widget_request* req, const User& me, const std::string& room,
                      const cJSON* data) {
  const cJSON* to = cJSON_GetObjectItemCaseSensitive(data, "to");
  const cJSON* signal = cJSON_GetObjectItemCaseSensitive(data, "signal");
  if (!cJSON_IsString(to) || !cJSON_IsObject(signal))
    return refuse(req->request_id, "bad_request", "signal needs `to` (a user id) and `signal` (an object)");
  std::string payload = print(signal);
  if (payload.size() > kMaxSignal)
    return refuse(req->request_id, "too_large",
                  "a signal is at most " + std::to_string(kMaxSignal) + " bytes of JSON, this one " +
                      std::to_string(payload.size()));
  auto ch = channels_.find(room);
  Participant* from = ch == channels_.end() ? nullptr : ch->second.find(me.id);
  if (from == nullptr || from->gone || from->session != req->session_id)
    return refuse(req->request_id, "forbidden",
                  "this session is not in the voice channel of \"" + room + "\"");
  Participant* target = ch->second.find(to->valuestring);
  if (target == nullptr || target == from)
    return refuse(req->request_id, "forbidden",
                  std::string("\"") + to->valuestring + "\" is not in this voice channel");
  uint64_t t = now_ms();
  from->tokens += static_cast<double>(t - from->refilled_ms) * config_.signal_rate / 1000.0;
  if (from->tokens > config_.signal_burst) from->tokens = config_.signal_burst;
  from->refilled_ms = t;
  if (from->tokens < 1) return refuse(req->request_id, "rate_limited", "too many signals; slow down");
  from->tokens -= 1;

  Json ev(cJSON_CreateObject());
  cJSON_AddStringToObject(ev.get(), "event", "signal");
  cJSON_AddStringToObject(ev.get(), "room", room.c_str());
  cJSON_AddItemToObject(ev.get(), "from", user_json(from->user));
  cJSON_AddItemReferenceToObject(ev.get(), "signal", const_cast<cJSON*>(signal));
  send_to(room, target, print(ev.get()));
  return reply_empty(req->request_id);
}

int Voice::act_mute(const hut_widget_request* req, const User& me, const std::string& room,
                    const cJSON* data) {
  const cJSON* on_item = cJSON_GetObjectItemCaseSensitive(data, "on");
  const cJSON* user_item = cJSON_GetObjectItemCaseSensitive(data, "user");
  if (!cJSON_IsBool(on_item)) return refuse(req->request_id, "bad_request", "`on` must be true or false");
  if (user_item != nullptr && !cJSON_IsNull(user_item) && !cJSON_IsString(user_item))
    return refuse(req->request_id, "bad_request", "`user` must be a user id");
  bool on = cJSON_IsTrue(on_item);
  std::string target_id = cJSON_IsString(user_item) ? user_item->valuestring : me.id;
  auto ch = channels_.find(room);

  if (target_id == me.id) {
    Participant* p = ch == channels_.end() ? nullptr : ch->second.find(me.id);
    if (p == nullptr) return refuse(req->request_id, "forbidden", "you are not in this voice channel");
    if (!on && p->mod_muted)
      return refuse(req->request_id, "forbidden", "a moderator muted you: only a moderator can unmute you");
    p->self_muted = on;
    send_muted(room, *p, nullptr);
    return reply_empty(req->request_id);
  }

  std::string my_role, their_role;
  int rc = role_of(room, me.id, &my_role);
  if (rc == HUT_ENOENT) return refuse(req->request_id, "not_found", "no room \"" + room + "\"");
  if (rc != HUT_OK)
    return refuse(req->request_id, "unavailable", std::string("rooms: ") + host_->strerror(rc));
  role_of(room, target_id, &their_role);
  if (my_role.empty() || role_rank(my_role) < 1)
    return refuse(req->request_id, "forbidden", "only a moderator of \"" + room + "\" mutes others");
  if (role_rank(their_role) >= role_rank(my_role))
    return refuse(req->request_id, "forbidden", "you cannot mute someone of an equal or higher role");
  Participant* p = ch == channels_.end() ? nullptr : ch->second.find(target_id);
  if (p == nullptr)
    return refuse(req->request_id, "not_found", "\"" + target_id + "\" is not in this voice channel");
  p->mod_muted = on;
  if (!on) p->self_muted = false;  // a moderator's unmute lifts the mute entirely
  send_muted(room, *p, &me);
  return reply_empty(req->request_id);
}

int Voice::act_mute_all(const hut_widget_request* req, const User& me, const std::string& room, bool on) {
  std::string my_role;
  int rc = role_of(room, me.id, &my_role);
  if (rc == HUT_ENOENT) return refuse(req->request_id, "not_found", "no room \"" + room + "\"");
  if (rc != HUT_OK)
    return refuse(req->request_id, "unavailable", std::string("rooms: ") + host_->strerror(rc));
  if (role_rank(my_role) < 1)
    return refuse(req->request_id, "forbidden", "only a moderator of \"" + room + "\" mutes everyone");
  auto ch = channels_.find(room);
  if (ch == channels_.end()) return reply_empty(req->request_id);
  ch->second.muted_all = on;
  Json list;
  members(room, &list);
  Json ev(cJSON_CreateObject());
  cJSON_AddStringToObject(ev.get(), "event", "muted_all");
  cJSON_AddStringToObject(ev.get(), "room", room.c_str());
  cJSON_AddBoolToObject(ev.get(), "on", on);
  cJSON_AddItemToObject(ev.get(), "by", user_json(me));
  broadcast(room, ev.get(), "");
  // Then each participant whose state changed, so that clients need not know roles.
  for (auto& p : ch->second.participants) {
    std::string role = "member";
    const cJSON* m = nullptr;
    cJSON_ArrayForEach(m, list.get()) {
      const cJSON* id = cJSON_GetObjectItemCaseSensitive(m, "id");
      const cJSON* r = cJSON_GetObjectItemCaseSensitive(m, "role");
      if (cJSON_IsString(id) && p->user.id == id->valuestring && cJSON_IsString(r)) role = r->valuestring;
    }
    if (role_rank(role) >= 1) continue;
    bool was = p->muted(), was_mod = p->mod_muted;
    p->mod_muted = on;
    if (!on) p->self_muted = false;
    if (was != p->muted() || was_mod != p->mod_muted) send_muted(room, *p, &me);
  }
  return reply_empty(req->request_id);
}

// ---- entry points -------------------------------------------------------------

// One Voice per space that loaded the plugin (several spaces may share a
// process), found again by the plugin handle at fini.
std::map<hut_plugin*, std::unique_ptr<Voice>> instances;

int hook_widget(hut_plugin*, void* user, const hut_widget_request* req) {
  try {
    return static_cast<Voice*>(user)->on_widget(req);
  } catch (...) {
    return HUT_EINTERNAL;
  }
}
void hook_member_left(hut_plugin*, void* user, const char* room, const hut_user* who) {
  try {
    static_cast<Voice*>(user)->on_member_left(room, who);
  } catch (...) {
  }
}
void hook_user_offline(hut_plugin*, void* user, const hut_user* who) {
  try {
    static_cast<Voice*>(user)->on_user_offline(who);
  } catch (...) {
  }
}

}  // namespace

extern "C" HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) {
  HUT_SET_DESCRIPTOR_ASSETS(descriptor, voice_assets);
  return &descriptor;
}

extern "C" HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* host, hut_plugin* self,
                                                 const char* config_json, char* err, size_t errlen) {
  auto fail = [&](int rc, const std::string& msg) {
    std::snprintf(err, errlen, "%s", msg.c_str());
    return rc;
  };
  try {
    if (!HUT_HOST_HAS(host, room_members))
      return fail(HUT_ENOTSUP, "voice needs a space with rooms (ABI 1.1)");
    auto v = std::make_unique<Voice>(host, self);
    std::string error;
    int rc = v->configure(config_json, &error);
    if (rc != HUT_OK) return fail(rc, error);
    hut_hooks hooks{};
    hooks.user_data = v.get();
    hooks.on_widget = hook_widget;
    hooks.on_member_left = hook_member_left;
    hooks.on_user_offline = hook_user_offline;
    rc = host->register_hooks(self, &hooks, sizeof hooks);
    if (rc != HUT_OK) return fail(rc, "register_hooks failed");
    instances[self] = std::move(v);
    return HUT_OK;
  } catch (...) {
    return fail(HUT_EINTERNAL, "voice: init failed");
  }
}

extern "C" HUT_PLUGIN_EXPORT void hut_plugin_fini(hut_plugin* self) { instances.erase(self); }
