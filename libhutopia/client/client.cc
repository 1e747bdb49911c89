#include <hutopia/client.h>

#include <cjson/cJSON.h>

#include <algorithm>
#include <unordered_map>

#include "client/transport.h"
#include "util/log.h"

namespace hut {
namespace {

using client::HttpReply;
using client::Transport;

struct JsonDeleter {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};
using Json = std::unique_ptr<cJSON, JsonDeleter>;

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
  return cJSON_IsNumber(v) ? static_cast<int64_t>(v->valuedouble) : 0;
}

bool boolean(const cJSON* o, const char* name) {
  return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, name));
}

std::string json_field(const cJSON* o, const char* name) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, name);
  return v ? print(v) : std::string();
}

User user_of(const cJSON* o) {
  User u;
  if (!cJSON_IsObject(o)) return u;
  u.id = str(o, "id");
  u.name = str(o, "name");
  u.avatar = str(o, "avatar");
  return u;
}

Message message_of(const cJSON* o) {
  Message m;
  m.room = str(o, "room");
  m.seq = num(o, "seq");
  m.ts = num(o, "ts");
  m.from = user_of(cJSON_GetObjectItemCaseSensitive(o, "from"));
  m.text = str(o, "text");
  m.data_json = json_field(o, "data");
  m.edited_ts = num(o, "edited_ts");
  return m;
}

MemberInfo member_of(const cJSON* o) {
  MemberInfo m;
  m.id = str(o, "id");
  m.name = str(o, "name");
  m.role = str(o, "role");
  m.online = boolean(o, "online");
  m.muted = boolean(o, "muted");
  return m;
}

std::vector<MemberInfo> members_of(const cJSON* arr) {
  std::vector<MemberInfo> out;
  const cJSON* it = nullptr;
  if (cJSON_IsArray(arr)) cJSON_ArrayForEach(it, arr) out.push_back(member_of(it));
  return out;
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

// The relay's {"error":{"code","message"}} as a Status.
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

}  // namespace

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

struct Client::Impl {
  using Reply = std::function<void(Status, const cJSON* frame)>;
  struct Pending {
    Reply reply;
    uint64_t deadline_ms = 0;
  };

  Client* self = nullptr;
  ClientOptions options;
  uv_loop_t* loop = nullptr;
  std::unique_ptr<uv_loop_t> own_loop;
  std::unique_ptr<Transport> transport;
  Url space;  // the space's HTTP base (path prefix without a trailing slash)
  Url bus;    // the /bus URL
  std::string base_path;
  Transport::Socket* socket = nullptr;
  ClientState state = ClientState::kIdle;
  bool welcomed_once = false;
  bool auth_pending = false;  // hello sent, no welcome yet
  bool used_resume = false;
  bool closing = false;
  std::string first_token;
  std::string resume;
  bool space_has_after = false;  // welcome carries resume: the space also answers history `after`
  Welcome welcome;
  std::map<std::string, int64_t> last_seen;
  std::unordered_map<std::string, std::vector<Event>> held;  // rooms in catch-up: their live messages
  int64_t next_ref = 1;
  std::unordered_map<int64_t, Pending> pending;
  Callback<Welcome> connect_done;
  std::function<void(const Event&)> event_handler;
  std::function<void(ClientState, const Status&)> state_handler;
  int backoff_ms = 0;
  uv_timer_t* retry_timer = nullptr;
  uv_timer_t* tick_timer = nullptr;
  std::function<void()> close_done;
  // Shared with callbacks that may outlive the Impl (HTTP answers after a
  // close): they check it before touching anything.
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  ~Impl() {
    *alive = false;
    close_timer(&retry_timer);
    close_timer(&tick_timer);
    for (uv_timer_t* t : alive_timers) close_timer(&t);
    alive_timers.clear();
    if (socket != nullptr) {
      socket->on_close = nullptr;
      socket->on_message = nullptr;
      socket->on_open = nullptr;
      socket = nullptr;
    }
    transport.reset();
  }

  static void close_timer(uv_timer_t** t) {
    if (*t == nullptr) return;
    uv_timer_stop(*t);
    (*t)->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(*t),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    *t = nullptr;
  }

  uint64_t now() {
    uv_update_time(loop);
    return uv_now(loop);
  }

  void set_state(ClientState s, const Status& why) {
    if (state == s) return;
    state = s;
    if (state_handler) state_handler(s, why);
  }

  // ---- HTTP ----

  void http_json(const std::string& method, const std::string& url_text, const std::string& bearer,
                 std::string body, std::function<void(Status, const cJSON*, const HttpReply&)> done) {
    Result<Url> url = Url::parse(url_text);
    if (!url.ok()) {
      done(url.status(), nullptr, HttpReply{});
      return;
    }
    std::vector<std::pair<std::string, std::string>> headers;
    headers.emplace_back("accept", "application/json");
    if (!bearer.empty()) headers.emplace_back("authorization", "Bearer " + bearer);
    if (method != "GET") headers.emplace_back("content-type", "application/json");
    std::weak_ptr<bool> weak = alive;
    transport->http(method, *url, std::move(headers), std::move(body),
                    [weak, done = std::move(done)](Result<HttpReply> r) {
                      auto a = weak.lock();
                      if (!a || !*a) return;
                      if (!r.ok()) {
                        done(r.status(), nullptr, HttpReply{});
                        return;
                      }
                      Json j(cJSON_ParseWithLength(r->body.data(), r->body.size()));
                      done(Status(), j.get(), *r);
                    });
  }

  std::string space_http_base() const {
    std::string s = (space.tls() ? "https://" : "http://") + space.host_header() + base_path;
    return s;
  }

  void discover(Callback<SpaceInfo> done) {
    http_json("GET", space_http_base() + "/.well-known/hutopia", "", "",
              [done](Status st, const cJSON* j, const HttpReply& r) {
                if (!st.ok()) return done(st);
                if (r.status != 200) return done(http_error(r, "/.well-known/hutopia"));
                if (!cJSON_IsObject(j) || str(j, "id").empty())
                  return done(Status::invalid_argument("/.well-known/hutopia: not a space's answer"));
                SpaceInfo info;
                info.id = str(j, "id");
                info.name = str(j, "name");
                info.relay = str(j, "relay");
                done(info);
              });
  }

  void mint_token(Callback<std::string> done) {
    if (options.relay_session.empty()) return done(Status::unauthenticated("no relay session: log in first"));
    if (options.relay_url.empty() || options.space_id.empty()) {
      discover([this, done](Result<SpaceInfo> info) {
        if (!info.ok()) return done(info.status());
        if (options.space_id.empty()) options.space_id = info->id;
        if (options.relay_url.empty()) options.relay_url = info->relay;
        if (options.relay_url.empty()) return done(Status::failed_precondition("the space trusts no relay"));
        mint_token(done);
      });
      return;
    }
    std::string url = trim_slash(options.relay_url) + "/api/v1/spaces/" + options.space_id + "/tokens";
    http_json("POST", url, options.relay_session, "{}",
              [done](Status st, const cJSON* j, const HttpReply& r) {
                if (!st.ok()) return done(st);
                if (r.status != 200 && r.status != 201) return done(http_error(r, "minting a token"));
                std::string token = str(j, "token");
                if (token.empty()) return done(Status::internal("the relay answered no token"));
                done(token);
              });
  }

  // ---- the bus ----

  void get_token(Callback<std::string> give) {
    if (!first_token.empty()) {
      std::string t = std::move(first_token);
      first_token.clear();
      return give(t);
    }
    if (options.token_source) return options.token_source(std::move(give));
    if (!options.relay_session.empty()) return mint_token(std::move(give));
    give(Status::unauthenticated("no token: give one, a token source or a relay session"));
  }

  void open_socket() {
    if (closing) return;
    set_state(welcomed_once ? ClientState::kReconnecting : ClientState::kConnecting, Status());
    socket = transport->connect_ws(bus, "hutopia.v1");
    Transport::Socket* s = socket;
    s->on_open = [this, s] {
      if (s != socket) return;
      send_hello();
    };
    s->on_message = [this, s](std::string_view text) {
      if (s != socket) return;
      on_frame(text);
    };
    s->on_close = [this, s](int code, std::string reason) {
      if (s != socket) return;
      socket = nullptr;
      lost(code, reason);
    };
  }

  void send_hello() {
    auth_pending = true;
    if (!resume.empty()) {
      used_resume = true;
      Json j(cJSON_CreateObject());
      cJSON_AddStringToObject(j.get(), "op", "hello");
      cJSON_AddStringToObject(j.get(), "resume", resume.c_str());
      socket->send(print(j.get()));
      return;
    }
    used_resume = false;
    Transport::Socket* s = socket;
    std::weak_ptr<bool> weak = alive;
    get_token([this, s, weak](Result<std::string> token) {
      auto a = weak.lock();
      if (!a || !*a || s != socket) return;
      if (!token.ok()) {
        fail_connect(token.status());
        return;
      }
      Json j(cJSON_CreateObject());
      cJSON_AddStringToObject(j.get(), "op", "hello");
      cJSON_AddStringToObject(j.get(), "token", token->c_str());
      socket->send(print(j.get()));
    });
  }

  // A first connection that cannot be made: no retry.
  void fail_connect(Status why) {
    if (!welcomed_once) {
      if (socket != nullptr) {
        Transport::Socket* s = socket;
        socket = nullptr;
        s->on_close = nullptr;
        s->close();
      }
      set_state(ClientState::kIdle, why);
      auto done = std::move(connect_done);
      connect_done = nullptr;
      if (done) done(why);
      return;
    }
    // Reconnecting: try again later.
    if (socket != nullptr) {
      Transport::Socket* s = socket;
      socket = nullptr;
      s->on_close = nullptr;
      s->close();
    }
    schedule_retry(why);
  }

  void lost(int code, const std::string& reason) {
    auth_pending = false;
    fail_pending(Status::unavailable("unavailable: the connection closed"));
    Status why = Status::unavailable("connection closed (" + std::to_string(code) +
                                     (reason.empty() ? "" : " " + reason) + ")");
    if (closing) return;
    if (code == 4001 && used_resume) {
      // The credential was refused: a token next time.
      resume.clear();
      used_resume = false;
      schedule_retry(why, 0);
      return;
    }
    if (!welcomed_once) {
      auto done = std::move(connect_done);
      connect_done = nullptr;
      set_state(ClientState::kIdle, why);
      if (done)
        done(code == 4001 ? Status::unauthenticated(last_auth_error.empty() ? why.message() : last_auth_error)
                          : why);
      return;
    }
    if (!options.reconnect) {
      set_state(ClientState::kClosed, why);
      return;
    }
    schedule_retry(why);
  }
  std::string last_auth_error;

  void schedule_retry(const Status& why, int delay = -1) {
    set_state(ClientState::kReconnecting, why);
    if (delay < 0) {
      backoff_ms =
          backoff_ms == 0 ? options.backoff_initial_ms : std::min(backoff_ms * 2, options.backoff_max_ms);
      delay = backoff_ms;
    }
    if (retry_timer == nullptr) {
      retry_timer = new uv_timer_t;
      uv_timer_init(loop, retry_timer);
    }
    retry_timer->data = this;
    uv_timer_start(
        retry_timer,
        [](uv_timer_t* t) {
          auto* impl = static_cast<Impl*>(t->data);
          if (impl != nullptr && impl->socket == nullptr && !impl->closing) impl->open_socket();
        },
        static_cast<uint64_t>(delay), 0);
  }

  void fail_pending(const Status& why) {
    auto all = std::move(pending);
    pending.clear();
    for (auto& [ref, p] : all) p.reply(why, nullptr);
  }

  void on_frame(std::string_view text) {
    Json j(cJSON_ParseWithLength(text.data(), text.size()));
    if (!cJSON_IsObject(j.get())) return;
    std::string op = str(j.get(), "op");
    const cJSON* ref = cJSON_GetObjectItemCaseSensitive(j.get(), "ref");
    if (op == "welcome") return on_welcome(j.get(), text);
    if ((op == "ok" || op == "error") && cJSON_IsNumber(ref)) {
      auto it = pending.find(static_cast<int64_t>(ref->valuedouble));
      if (it == pending.end()) return;
      Reply reply = std::move(it->second.reply);
      pending.erase(it);
      if (op == "ok")
        reply(Status(), j.get());
      else
        reply(status_of_wire(str(j.get(), "code"), str(j.get(), "message")), j.get());
      return;
    }
    if (op == "error") {
      if (auth_pending) last_auth_error = str(j.get(), "code") + ": " + str(j.get(), "message");
      return;
    }
    on_event(j.get(), text);
  }

  void on_welcome(const cJSON* j, std::string_view text) {
    auth_pending = false;
    last_auth_error.clear();
    backoff_ms = 0;
    Welcome w;
    w.session = str(j, "session");
    w.user = user_of(cJSON_GetObjectItemCaseSensitive(j, "user"));
    const cJSON* sp = cJSON_GetObjectItemCaseSensitive(j, "space");
    w.space_id = str(sp, "id");
    w.space_name = str(sp, "name");
    const cJSON* rooms = cJSON_GetObjectItemCaseSensitive(j, "rooms");
    const cJSON* it = nullptr;
    if (cJSON_IsArray(rooms))
      cJSON_ArrayForEach(it, rooms) w.rooms.emplace_back(str(it, "room"), num(it, "unread"));
    w.json = std::string(text);
    resume = str(j, "resume");
    space_has_after = !resume.empty();
    if (options.space_id.empty()) options.space_id = w.space_id;
    welcome = std::move(w);
    bool again = welcomed_once;
    welcomed_once = true;
    set_state(ClientState::kConnected, Status());
    if (again) {
      for (const auto& [room, seq] : last_seen) catch_up(room);
    } else {
      auto done = std::move(connect_done);
      connect_done = nullptr;
      if (done) done(welcome);
    }
  }

  void deliver(const Event& e) {
    if (event_handler) event_handler(e);
  }

  void on_event(const cJSON* j, std::string_view text) {
    Event e;
    e.op = str(j, "op");
    e.json = std::string(text);
    e.room = str(j, "room");
    e.seq = num(j, "seq");
    e.user = user_of(cJSON_GetObjectItemCaseSensitive(j, "user"));
    e.by = user_of(cJSON_GetObjectItemCaseSensitive(j, "by"));
    e.text = str(j, "text");
    e.edited_ts = num(j, "edited_ts");
    e.online = boolean(j, "online");
    e.on = boolean(j, "on");
    e.role = str(j, "role");
    e.until = num(j, "until");
    e.plugin = str(j, "plugin");
    e.data_json = json_field(j, "data");
    e.title = str(j, "title");
    e.body = str(j, "body");
    e.url = str(j, "url");
    if (e.op == "message") {
      e.message = message_of(j);
      auto h = held.find(e.room);
      if (h != held.end()) {
        h->second.push_back(std::move(e));
        return;
      }
      int64_t& seen = last_seen[e.room];
      if (e.seq <= seen) return;  // delivered already
      seen = e.seq;
    }
    deliver(e);
  }

  // After a reconnect: the messages of `room` after the last one seen.
  void catch_up(const std::string& room) {
    if (held.count(room) != 0) return;
    held[room];
    if (space_has_after)
      catch_up_after(room, last_seen[room], 0);
    else
      catch_up_before(room, 0, {}, 0);
  }

  void catch_up_after(const std::string& room, int64_t after, int pages) {
    Json f(cJSON_CreateObject());
    cJSON_AddStringToObject(f.get(), "room", room.c_str());
    cJSON_AddNumberToObject(f.get(), "after", static_cast<double>(after));
    cJSON_AddNumberToObject(f.get(), "limit", 200);
    send_request("history", f.get(), [this, room, pages](Status st, const cJSON* j) {
      if (!st.ok()) return end_catch_up(room, {});
      std::vector<Message> msgs;
      const cJSON* arr = cJSON_GetObjectItemCaseSensitive(j, "messages");
      const cJSON* it = nullptr;
      if (cJSON_IsArray(arr)) cJSON_ArrayForEach(it, arr) msgs.push_back(message_of(it));
      int64_t top = last_seen[room];
      for (const Message& m : msgs) top = std::max(top, m.seq);
      replay(room, msgs);
      if (boolean(j, "more") && !msgs.empty() && pages < 1000)
        catch_up_after(room, top, pages + 1);
      else
        end_catch_up(room, {});
    });
  }

  // For a space without `history after`: pages back from the newest until
  // the last seen message.
  void catch_up_before(const std::string& room, int64_t before, std::vector<Message> got, int pages) {
    Json f(cJSON_CreateObject());
    cJSON_AddStringToObject(f.get(), "room", room.c_str());
    if (before > 0) cJSON_AddNumberToObject(f.get(), "before", static_cast<double>(before));
    cJSON_AddNumberToObject(f.get(), "limit", 200);
    send_request("history", f.get(),
                 [this, room, got = std::move(got), pages](Status st, const cJSON* j) mutable {
                   if (!st.ok()) return end_catch_up(room, std::move(got));
                   const cJSON* arr = cJSON_GetObjectItemCaseSensitive(j, "messages");
                   const cJSON* it = nullptr;
                   int64_t oldest = 0;
                   if (cJSON_IsArray(arr)) {
                     cJSON_ArrayForEach(it, arr) {
                       Message m = message_of(it);
                       if (oldest == 0 || m.seq < oldest) oldest = m.seq;
                       got.push_back(std::move(m));
                     }
                   }
                   int64_t seen = last_seen[room];
                   if (boolean(j, "more") && oldest > seen + 1 && pages < 1000)
                     catch_up_before(room, oldest, std::move(got), pages + 1);
                   else
                     end_catch_up(room, std::move(got));
                 });
  }

  void replay(const std::string& room, std::vector<Message> msgs) {
    std::sort(msgs.begin(), msgs.end(), [](const Message& a, const Message& b) { return a.seq < b.seq; });
    for (Message& m : msgs) {
      int64_t& seen = last_seen[room];
      if (m.seq <= seen) continue;
      seen = m.seq;
      Event e;
      e.op = "message";
      e.room = room;
      e.seq = m.seq;
      e.text = m.text;
      e.replayed = true;
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
      e.json = print(j.get());
      e.message = std::move(m);
      deliver(e);
    }
  }

  void end_catch_up(const std::string& room, std::vector<Message> msgs) {
    replay(room, std::move(msgs));
    auto h = held.find(room);
    if (h == held.end()) return;
    std::vector<Event> live = std::move(h->second);
    held.erase(h);
    for (Event& e : live) {
      int64_t& seen = last_seen[room];
      if (e.seq <= seen) continue;
      seen = e.seq;
      deliver(e);
    }
  }

  // Sends {op, ref, ...fields}; `reply` runs once.
  void send_request(const char* op, const cJSON* fields, Reply reply) {
    if (socket == nullptr || state != ClientState::kConnected) {
      reply(Status::unavailable("unavailable: not connected"), nullptr);
      return;
    }
    int64_t ref = next_ref++;
    Json j(fields ? cJSON_Duplicate(fields, 1) : cJSON_CreateObject());
    if (!cJSON_IsObject(j.get())) {
      reply(Status::invalid_argument("the fields are not a JSON object"), nullptr);
      return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(j.get(), "op");
    cJSON_DeleteItemFromObjectCaseSensitive(j.get(), "ref");
    cJSON_AddStringToObject(j.get(), "op", op);
    cJSON_AddNumberToObject(j.get(), "ref", static_cast<double>(ref));
    pending[ref] = Pending{std::move(reply), now() + static_cast<uint64_t>(options.request_timeout_ms)};
    socket->send(print(j.get()));
    ensure_tick();
  }

  void ensure_tick() {
    if (tick_timer != nullptr) return;
    tick_timer = new uv_timer_t;
    uv_timer_init(loop, tick_timer);
    tick_timer->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(tick_timer));
    uv_timer_start(
        tick_timer,
        [](uv_timer_t* t) {
          auto* impl = static_cast<Impl*>(t->data);
          if (impl != nullptr) impl->expire();
        },
        500, 500);
  }

  void expire() {
    uint64_t t = now();
    std::vector<int64_t> late;
    for (auto& [ref, p] : pending)
      if (p.deadline_ms <= t) late.push_back(ref);
    for (int64_t ref : late) {
      auto it = pending.find(ref);
      if (it == pending.end()) continue;
      Reply r = std::move(it->second.reply);
      pending.erase(it);
      r(Status::unavailable("unavailable: no answer in time"), nullptr);
    }
  }

  void close(std::function<void()> done) {
    if (closing) {
      if (done) done();
      return;
    }
    closing = true;
    close_done = std::move(done);
    close_timer(&retry_timer);
    close_timer(&tick_timer);
    fail_pending(Status::unavailable("unavailable: the client closed"));
    auto cd = std::move(connect_done);
    connect_done = nullptr;
    if (cd) cd(Status::unavailable("unavailable: the client closed"));
    held.clear();
    set_state(ClientState::kClosed, Status());
    if (socket != nullptr) {
      Transport::Socket* s = socket;
      s->on_message = nullptr;
      s->on_open = nullptr;
      s->on_close = [this](int, std::string) { finish_close(); };
      s->close();
      socket = nullptr;
      return;
    }
    finish_close();
  }

  // On a later loop turn: the lws context must not go from inside one of
  // its own callbacks.
  void finish_close() {
    if (!transport) return;
    auto* t = new uv_timer_t;
    uv_timer_init(loop, t);
    t->data = this;
    alive_timers.push_back(t);
    uv_timer_start(
        t,
        [](uv_timer_t* h) {
          auto* impl = static_cast<Impl*>(h->data);
          impl->alive_timers.erase(std::find(impl->alive_timers.begin(), impl->alive_timers.end(), h));
          uv_close(reinterpret_cast<uv_handle_t*>(h),
                   [](uv_handle_t* x) { delete reinterpret_cast<uv_timer_t*>(x); });
          impl->shutdown_transport();
        },
        0, 0);
  }
  std::vector<uv_timer_t*> alive_timers;

  void shutdown_transport() {
    if (!transport) return;
    Transport* t = transport.get();
    std::weak_ptr<bool> weak = alive;
    t->shutdown([this, weak] {
      auto a = weak.lock();
      if (!a || !*a) return;
      auto done = std::move(close_done);
      close_done = nullptr;
      if (done) done();
    });
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) { impl_->self = this; }

Client::~Client() {
  if (!impl_) return;
  bool own = impl_->own_loop != nullptr;
  std::unique_ptr<uv_loop_t> loop = std::move(impl_->own_loop);
  impl_.reset();
  if (own) {
    // Let the network layer finish on the client's own loop.
    uv_run(loop.get(), UV_RUN_DEFAULT);
    uv_loop_close(loop.get());
  }
}

Result<std::unique_ptr<Client>> Client::create(ClientOptions options, uv_loop_t* loop) {
  auto impl = std::make_unique<Impl>();
  if (loop == nullptr) {
    impl->own_loop = std::make_unique<uv_loop_t>();
    uv_loop_init(impl->own_loop.get());
    loop = impl->own_loop.get();
  }
  impl->loop = loop;
  if (options.space_url.empty()) return Status::invalid_argument("no space URL");
  Result<Url> url = Url::parse(options.space_url);
  if (!url.ok()) return url.status();
  std::string path = url->path;
  size_t q = path.find('?');
  if (q != std::string::npos) path = path.substr(0, q);
  path = trim_slash(path);
  bool ws_scheme = options.space_url.rfind("ws", 0) == 0 || options.space_url.rfind("WS", 0) == 0;
  if (ws_scheme || (path.size() >= 4 && path.compare(path.size() - 4, 4, "/bus") == 0)) {
    impl->bus = *url;
    impl->bus.path = path.empty() ? "/bus" : path;
    impl->bus.query.clear();
    if (path.size() >= 4 && path.compare(path.size() - 4, 4, "/bus") == 0) path.resize(path.size() - 4);
  } else {
    impl->bus = *url;
    impl->bus.path = path + "/bus";
    impl->bus.query.clear();
  }
  impl->space = *url;
  impl->base_path = path;
  impl->first_token = options.token;
  impl->options = std::move(options);
  if (impl->options.backoff_initial_ms <= 0) impl->options.backoff_initial_ms = 200;
  if (impl->options.backoff_max_ms < impl->options.backoff_initial_ms)
    impl->options.backoff_max_ms = impl->options.backoff_initial_ms;
  if (impl->options.request_timeout_ms <= 0) impl->options.request_timeout_ms = 30000;
  Transport::Options topt;
  topt.ca_file = impl->options.ca_file;
  auto t = Transport::create(loop, topt);
  if (!t.ok()) {
    if (impl->own_loop) {
      uv_run(impl->own_loop.get(), UV_RUN_DEFAULT);
      uv_loop_close(impl->own_loop.get());
    }
    return t.status();
  }
  impl->transport = std::move(*t);
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

void Client::connect(Callback<Welcome> done) {
  if (impl_->closing) return done(Status::failed_precondition("the client is closed"));
  if (impl_->socket != nullptr || impl_->welcomed_once)
    return done(Status::failed_precondition("already connected or connecting"));
  impl_->connect_done = std::move(done);
  impl_->open_socket();
}

void Client::close(std::function<void()> done) { impl_->close(std::move(done)); }

int Client::run() {
  if (!impl_->own_loop) return -1;
  return uv_run(impl_->own_loop.get(), UV_RUN_DEFAULT);
}

uv_loop_t* Client::loop() const { return impl_->loop; }
void Client::on_event(std::function<void(const Event&)> handler) {
  impl_->event_handler = std::move(handler);
}
void Client::on_state(std::function<void(ClientState, const Status&)> handler) {
  impl_->state_handler = std::move(handler);
}
ClientState Client::state() const { return impl_->state; }
const Welcome& Client::welcome() const { return impl_->welcome; }
const std::map<std::string, int64_t>& Client::last_seen() const { return impl_->last_seen; }

void Client::discover(Callback<SpaceInfo> done) { impl_->discover(std::move(done)); }

void Client::relay_login(const std::string& relay_url, const std::string& username,
                         const std::string& password, Callback<RelaySession> done) {
  Json body(cJSON_CreateObject());
  cJSON_AddStringToObject(body.get(), "username", username.c_str());
  cJSON_AddStringToObject(body.get(), "password", password.c_str());
  Impl* impl = impl_.get();
  std::string relay = trim_slash(relay_url);
  impl->http_json("POST", relay + "/api/v1/sessions", "", print(body.get()),
                  [impl, relay, done](Status st, const cJSON* j, const HttpReply& r) {
                    if (!st.ok()) return done(st);
                    if (r.status != 201 && r.status != 200) return done(http_error(r, "logging in"));
                    RelaySession s;
                    s.session = str(j, "session");
                    s.user = user_of(cJSON_GetObjectItemCaseSensitive(j, "user"));
                    if (s.session.empty()) return done(Status::internal("the relay answered no session"));
                    impl->options.relay_url = relay;
                    impl->options.relay_session = s.session;
                    done(s);
                  });
}

void Client::relay_logout(StatusCallback done) {
  Impl* impl = impl_.get();
  if (impl->options.relay_session.empty() || impl->options.relay_url.empty())
    return done(Status::failed_precondition("no relay session"));
  impl->http_json("DELETE", trim_slash(impl->options.relay_url) + "/api/v1/sessions",
                  impl->options.relay_session, "", [impl, done](Status st, const cJSON*, const HttpReply& r) {
                    if (!st.ok()) return done(st);
                    if (r.status != 204 && r.status != 200 && r.status != 401)
                      return done(http_error(r, "logging out"));
                    impl->options.relay_session.clear();
                    done(Status());
                  });
}

void Client::mint_token(Callback<std::string> done) { impl_->mint_token(std::move(done)); }

void Client::relay_spaces(Callback<std::string> done) {
  Impl* impl = impl_.get();
  auto go = [impl, done] {
    impl->http_json("GET", trim_slash(impl->options.relay_url) + "/api/v1/spaces",
                    impl->options.relay_session, "", [done](Status st, const cJSON* j, const HttpReply& r) {
                      if (!st.ok()) return done(st);
                      if (r.status != 200) return done(http_error(r, "the space directory"));
                      if (!cJSON_IsArray(j))
                        return done(Status::internal("the directory is not a JSON array"));
                      done(print(j));
                    });
  };
  if (!impl->options.relay_url.empty()) return go();
  impl->discover([impl, go, done](Result<SpaceInfo> info) {
    if (!info.ok()) return done(info.status());
    if (info->relay.empty()) return done(Status::failed_precondition("the space trusts no relay"));
    impl->options.relay_url = info->relay;
    go();
  });
}

// ---- ops ----

namespace {

Json fields() { return Json(cJSON_CreateObject()); }
void add(cJSON* j, const char* k, const std::string& v) { cJSON_AddStringToObject(j, k, v.c_str()); }
void add(cJSON* j, const char* k, int64_t v) { cJSON_AddNumberToObject(j, k, static_cast<double>(v)); }

}  // namespace

#define HUT_STATUS_REPLY(done) [done](Status st, const cJSON*) { done(st); }

void Client::ping(StatusCallback done) { impl_->send_request("ping", nullptr, HUT_STATUS_REPLY(done)); }

void Client::widget(const std::string& plugin, const std::string& data_json, Callback<std::string> done) {
  Json data(cJSON_Parse(data_json.empty() ? "null" : data_json.c_str()));
  if (!data) return done(Status::invalid_argument("the widget data is not JSON"));
  Json f = fields();
  add(f.get(), "plugin", plugin);
  cJSON_AddItemToObject(f.get(), "data", data.release());
  impl_->send_request("widget", f.get(), [done](Status st, const cJSON* j) {
    if (!st.ok()) return done(st);
    std::string d = json_field(j, "data");
    done(d.empty() ? std::string("null") : d);
  });
}

void Client::rooms(Callback<std::vector<RoomInfo>> done) {
  impl_->send_request("rooms", nullptr, [done](Status st, const cJSON* j) {
    if (!st.ok()) return done(st);
    std::vector<RoomInfo> out;
    const cJSON* arr = cJSON_GetObjectItemCaseSensitive(j, "rooms");
    const cJSON* it = nullptr;
    if (cJSON_IsArray(arr)) {
      cJSON_ArrayForEach(it, arr) {
        RoomInfo r;
        r.room = str(it, "room");
        r.topic = str(it, "topic");
        r.is_private = boolean(it, "private");
        r.role = str(it, "role");
        r.unread = num(it, "unread");
        r.last_seq = num(it, "last_seq");
        const cJSON* dm = cJSON_GetObjectItemCaseSensitive(it, "dm");
        r.dm = cJSON_IsObject(dm) ? str(dm, "id") : (cJSON_IsString(dm) ? std::string(dm->valuestring) : "");
        out.push_back(std::move(r));
      }
    }
    done(std::move(out));
  });
}

void Client::create_room(const std::string& room, bool is_private, const std::string& topic,
                         Callback<std::string> done) {
  Json f = fields();
  add(f.get(), "room", room);
  cJSON_AddBoolToObject(f.get(), "private", is_private);
  if (!topic.empty()) add(f.get(), "topic", topic);
  impl_->send_request("create", f.get(), [done](Status st, const cJSON* j) {
    if (!st.ok()) return done(st);
    done(str(j, "room"));
  });
}

void Client::join(const std::string& room, Callback<JoinResult> done) {
  Json f = fields();
  add(f.get(), "room", room);
  Impl* impl = impl_.get();
  impl->send_request("join", f.get(), [impl, done](Status st, const cJSON* j) {
    if (!st.ok()) return done(st);
    JoinResult r;
    r.room = str(j, "room");
    r.role = str(j, "role");
    r.last_seq = num(j, "last_seq");
    r.read_seq = num(j, "read_seq");
    r.member_count = num(j, "member_count");
    r.members = members_of(cJSON_GetObjectItemCaseSensitive(j, "members"));
    r.more = boolean(j, "more");
    if (impl->last_seen.count(r.room) == 0) impl->last_seen[r.room] = r.last_seq;
    done(std::move(r));
  });
}

void Client::leave(const std::string& room, StatusCallback done) {
  Json f = fields();
  add(f.get(), "room", room);
  impl_->send_request("leave", f.get(), HUT_STATUS_REPLY(done));
}

void Client::post(const std::string& room, const std::string& text, const std::string& data_json,
                  Callback<PostResult> done) {
  Json f = fields();
  add(f.get(), "room", room);
  add(f.get(), "text", text);
  if (!data_json.empty()) {
    Json data(cJSON_Parse(data_json.c_str()));
    if (!data) return done(Status::invalid_argument("the message data is not JSON"));
    cJSON_AddItemToObject(f.get(), "data", data.release());
  }
  impl_->send_request("post", f.get(), [done](Status st, const cJSON* j) {
    if (!st.ok()) return done(st);
    done(PostResult{num(j, "seq"), num(j, "ts")});
  });
}

void Client::edit(const std::string& room, int64_t seq, const std::string& text, StatusCallback done) {
  Json f = fields();
  add(f.get(), "room", room);
  add(f.get(), "seq", seq);
  add(f.get(), "text", text);
  impl_->send_request("edit", f.get(), HUT_STATUS_REPLY(done));
}

void Client::delete_message(const std::string& room, int64_t seq, StatusCallback done) {
  Json f = fields();
  add(f.get(), "room", room);
  add(f.get(), "seq", seq);
  impl_->send_request("delete", f.get(), HUT_STATUS_REPLY(done));
}

void Client::history(const std::string& room, int64_t before, int64_t after, int limit,
                     Callback<HistoryPage> done) {
  Json f = fields();
  add(f.get(), "room", room);
  if (before > 0) add(f.get(), "before", before);
  if (after > 0) add(f.get(), "after", after);
  if (limit > 0) add(f.get(), "limit", static_cast<int64_t>(limit));
  Impl* impl = impl_.get();
  impl->send_request("history", f.get(), [impl, room, before, done](Status st, const cJSON* j) {
    if (!st.ok()) return done(st);
    HistoryPage page;
    const cJSON* arr = cJSON_GetObjectItemCaseSensitive(j, "messages");
    const cJSON* it = nullptr;
    if (cJSON_IsArray(arr)) cJSON_ArrayForEach(it, arr) page.messages.push_back(message_of(it));
    page.more = boolean(j, "more");
    if (before == 0 && impl->held.count(room) == 0) {
      int64_t& seen = impl->last_seen[room];
      for (const Message& m : page.messages) seen = std::max(seen, m.seq);
    }
    done(std::move(page));
  });
}

void Client::read(const std::string& room, int64_t seq, Callback<int64_t> done) {
  Json f = fields();
  add(f.get(), "room", room);
  add(f.get(), "seq", seq);
  impl_->send_request("read", f.get(), [done](Status st, const cJSON* j) {
    if (!st.ok()) return done(st);
    done(num(j, "unread"));
  });
}

void Client::typing(const std::string& room, StatusCallback done) {
  Json f = fields();
  add(f.get(), "room", room);
  impl_->send_request("typing", f.get(), HUT_STATUS_REPLY(done));
}

void Client::members(const std::string& room, const std::string& after, int limit,
                     Callback<MembersPage> done) {
  Json f = fields();
  add(f.get(), "room", room);
  if (!after.empty()) add(f.get(), "after", after);
  if (limit > 0) add(f.get(), "limit", static_cast<int64_t>(limit));
  impl_->send_request("members", f.get(), [done](Status st, const cJSON* j) {
    if (!st.ok()) return done(st);
    MembersPage p;
    p.members = members_of(cJSON_GetObjectItemCaseSensitive(j, "members"));
    p.more = boolean(j, "more");
    done(std::move(p));
  });
}

void Client::dm(const std::string& user_id, Callback<std::string> done) {
  Json f = fields();
  add(f.get(), "user", user_id);
  impl_->send_request("dm", f.get(), [done](Status st, const cJSON* j) {
    if (!st.ok()) return done(st);
    done(str(j, "room"));
  });
}

void Client::kick(const std::string& room, const std::string& user_id, StatusCallback done) {
  Json f = fields();
  add(f.get(), "room", room);
  add(f.get(), "user", user_id);
  impl_->send_request("kick", f.get(), HUT_STATUS_REPLY(done));
}

void Client::mute(const std::string& room, const std::string& user_id, int64_t seconds,
                  Callback<int64_t> done) {
  Json f = fields();
  add(f.get(), "room", room);
  add(f.get(), "user", user_id);
  if (seconds > 0) add(f.get(), "seconds", seconds);
  impl_->send_request("mute", f.get(), [done](Status st, const cJSON* j) {
    if (!st.ok()) return done(st);
    done(num(j, "until"));
  });
}

void Client::unmute(const std::string& room, const std::string& user_id, StatusCallback done) {
  Json f = fields();
  add(f.get(), "room", room);
  add(f.get(), "user", user_id);
  impl_->send_request("unmute", f.get(), HUT_STATUS_REPLY(done));
}

void Client::mute_all(const std::string& room, bool on, StatusCallback done) {
  Json f = fields();
  add(f.get(), "room", room);
  cJSON_AddBoolToObject(f.get(), "on", on);
  impl_->send_request("mute_all", f.get(), HUT_STATUS_REPLY(done));
}

void Client::set_role(const std::string& room, const std::string& user_id, const std::string& role,
                      StatusCallback done) {
  Json f = fields();
  add(f.get(), "room", room);
  add(f.get(), "user", user_id);
  add(f.get(), "role", role);
  impl_->send_request("role", f.get(), HUT_STATUS_REPLY(done));
}

void Client::request(const std::string& op, const std::string& fields_json, Callback<std::string> done) {
  Json f(cJSON_Parse(fields_json.empty() ? "{}" : fields_json.c_str()));
  if (!cJSON_IsObject(f.get())) return done(Status::invalid_argument("the fields are not a JSON object"));
  std::string op_copy = op;
  impl_->send_request(op_copy.c_str(), f.get(), [done](Status st, const cJSON* j) {
    if (!st.ok()) return done(st);
    done(print(j));
  });
}

}  // namespace hut
