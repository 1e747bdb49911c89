// Fuzzes the voice plugin's handling of what clients send it: the plugin's
// own source (plugins/voice/voice.cc) against a small host table that checks
// every answer and event is valid JSON and keeps timers for the input to fire.
//
// Input: lines. A line "<u>:<json>" is a widget request from user u (a digit,
// 0-4; users 0-3 are members of the rooms "r" and "s", 0 the master and 1 a
// moderator) with <json> as its data. "!" fires the pending timers, "~<u>" is
// user u going offline, "-<u>" user u leaving room "r", "#<u>" gives user u a
// new session.
#include <cJSON.h>
#include <hutopia/plugin.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

// The plugin's assets and descriptor come from its generated voice_assets.c,
// built into this program as into the plugin.
extern "C" {
const hut_plugin_descriptor* hut_plugin_describe(void);
int hut_plugin_init(const hut_host* host, hut_plugin* self, const char* config_json, char* err,
                    size_t errlen);
void hut_plugin_fini(hut_plugin* self);
}

namespace {

struct Timer {
  hut_callback cb;
  void* arg;
};

hut_hooks hooks;
std::map<uint64_t, Timer> timers;
uint64_t next_timer = 1;
std::string sessions[5];
std::vector<std::string> gone_sessions;

void must_be_json(const char* data, size_t len) {
  cJSON* j = cJSON_ParseWithLength(data, len);
  if (j == nullptr) std::abort();
  cJSON_Delete(j);
}

void h_log(hut_plugin*, int, const char*) {}
const char* h_strerror(int code) { return hut_strerror(code); }
int h_reply(hut_plugin*, uint64_t, const char* data, size_t len) {
  if (data == nullptr) return HUT_EINVAL;
  must_be_json(data, len);
  return HUT_OK;
}
int h_reply_error(hut_plugin*, uint64_t, const char* code, const char* message) {
  if (code == nullptr || message == nullptr) std::abort();
  return HUT_OK;
}
int h_send(hut_plugin*, hut_target target, const char* id, const char* data, size_t len) {
  must_be_json(data, len);
  if (target == HUT_TARGET_SESSION) {
    for (const auto& g : gone_sessions)
      if (g == id) return HUT_ENOENT;
  }
  return HUT_OK;
}
int h_register_hooks(hut_plugin*, const hut_hooks* h, size_t size) {
  if (h == nullptr || size < sizeof(hut_hooks)) return HUT_EINVAL;
  hooks = *h;
  return HUT_OK;
}
int h_timer_start(hut_plugin*, uint64_t, uint64_t, hut_callback cb, void* arg, uint64_t* id) {
  uint64_t t = next_timer++;
  timers[t] = Timer{cb, arg};
  if (id) *id = t;
  return HUT_OK;
}
int h_timer_stop(hut_plugin*, uint64_t id) { return timers.erase(id) ? HUT_OK : HUT_ENOENT; }
int h_room_members(hut_plugin*, const char* room, char* buf, size_t buflen, size_t* len) {
  static const char members[] = R"([{"id":"u0","name":"U0","role":"master","online":true,"muted":false},)"
                                R"({"id":"u1","name":"U1","role":"moderator","online":true,"muted":false},)"
                                R"({"id":"u2","name":"U2","role":"member","online":true,"muted":false},)"
                                R"({"id":"u3","name":"U3","role":"member","online":false,"muted":false}])";
  if (std::strcmp(room, "r") != 0 && std::strcmp(room, "s") != 0) return HUT_ENOENT;
  *len = sizeof members - 1;
  if (buflen < *len) return HUT_ERANGE;
  std::memcpy(buf, members, *len);
  if (buflen > *len) buf[*len] = '\0';
  return HUT_OK;
}

hut_host make_host() {
  hut_host h{};
  h.abi_version = HUT_PLUGIN_ABI_VERSION;
  h.size = sizeof(hut_host);
  h.log = h_log;
  h.strerror = h_strerror;
  h.reply = h_reply;
  h.reply_error = h_reply_error;
  h.send_widget_event = h_send;
  h.register_hooks = h_register_hooks;
  h.timer_start = h_timer_start;
  h.timer_stop = h_timer_stop;
  h.room_members = h_room_members;
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const hut_host host = make_host();
  hut_plugin* self = reinterpret_cast<hut_plugin*>(0x1);
  hooks = hut_hooks{};
  timers.clear();
  gone_sessions.clear();
  for (int i = 0; i < 5; ++i) sessions[i] = "s" + std::to_string(i);
  char err[256];
  const char* config =
      R"({"stun":["stun:a"],"turn":["turn:b"],"turn_secret":"x","max_participants":3,"grace_seconds":1,)"
      R"("signal_rate":5,"signal_burst":5})";
  if (hut_plugin_describe() == nullptr || hut_plugin_init(&host, self, config, err, sizeof err) != HUT_OK)
    std::abort();

  std::string_view in(reinterpret_cast<const char*>(data), size);
  uint64_t request = 0;
  int session_count = 5;
  while (!in.empty()) {
    size_t nl = in.find('\n');
    std::string line(in.substr(0, nl));
    in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    if (line.empty()) continue;
    int u = line.size() > 1 && line[1] >= '0' && line[1] <= '4' ? line[1] - '0' : 0;
    std::string uid = "u" + std::to_string(u), name = "U" + std::to_string(u);
    hut_user user{uid.c_str(), name.c_str(), nullptr};
    if (line[0] == '!') {
      std::map<uint64_t, Timer> due;
      due.swap(timers);
      for (auto& [id, t] : due) t.cb(self, t.arg);
    } else if (line[0] == '~' && hooks.on_user_offline) {
      gone_sessions.push_back(sessions[u]);
      hooks.on_user_offline(self, hooks.user_data, &user);
    } else if (line[0] == '-' && hooks.on_member_left) {
      hooks.on_member_left(self, hooks.user_data, "r", &user);
    } else if (line[0] == '#') {
      gone_sessions.push_back(sessions[u]);
      sessions[u] = "s" + std::to_string(session_count++);
    } else if (line[0] >= '0' && line[0] <= '4' && line.size() > 1 && line[1] == ':' && hooks.on_widget) {
      u = line[0] - '0';
      uid = "u" + std::to_string(u);
      name = "U" + std::to_string(u);
      hut_user from{uid.c_str(), name.c_str(), nullptr};
      std::string json = line.substr(2);
      hut_widget_request req{};
      req.request_id = ++request;
      req.session_id = sessions[u].c_str();
      req.user = &from;
      req.data_json = json.c_str();
      req.data_len = json.size();
      hooks.on_widget(self, hooks.user_data, &req);
    }
  }
  hut_plugin_fini(self);
  return 0;
}
