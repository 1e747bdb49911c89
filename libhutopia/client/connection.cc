#include <algorithm>

#include "client/connection.h"

namespace hut {

using client::event_of;
using client::Json;
using client::print;
using client::status_of_wire;
using client::str;
using client::welcome_of;

Client::Impl::~Impl() {
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

void Client::Impl::close_timer(uv_timer_t** t) {
  if (*t == nullptr) return;
  uv_timer_stop(*t);
  (*t)->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(*t),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  *t = nullptr;
}

uint64_t Client::Impl::now() {
  uv_update_time(loop);
  return uv_now(loop);
}

void Client::Impl::set_state(ClientState s, const Status& why) {
  if (state == s) return;
  state = s;
  if (state_handler) state_handler(s, why);
}

void Client::Impl::get_token(Callback<std::string> give) {
  if (!first_token.empty()) {
    std::string t = std::move(first_token);
    first_token.clear();
    return give(t);
  }
  if (options.token_source) return options.token_source(std::move(give));
  if (!options.relay_session.empty()) return mint_token(std::move(give));
  give(Status::unauthenticated("no token: give one, a token source or a relay session"));
}

void Client::Impl::open_socket() {
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

void Client::Impl::send_hello() {
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
void Client::Impl::fail_connect(Status why) {
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

void Client::Impl::lost(int code, const std::string& reason) {
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

void Client::Impl::schedule_retry(const Status& why, int delay) {
  set_state(ClientState::kReconnecting, why);
  if (delay < 0) {
    backoff_ms =
        backoff_ms == 0 ? options.backoff_initial_ms : std::min(backoff_ms * 2, options.backoff_max_ms);
    delay = backoff_ms;
  }
  if (retry_timer == nullptr) retry_timer = new_timer();
  uv_timer_start(retry_timer, on_timer<&Impl::retry_now>, static_cast<uint64_t>(delay), 0);
}

void Client::Impl::retry_now() {
  if (socket == nullptr && !closing) open_socket();
}

uv_timer_t* Client::Impl::new_timer() {
  auto* t = new uv_timer_t;
  uv_timer_init(loop, t);
  t->data = this;
  return t;
}

void Client::Impl::fail_pending(const Status& why) {
  auto all = std::move(pending);
  pending.clear();
  for (auto& [ref, p] : all) p.reply(why, nullptr);
}

void Client::Impl::on_frame(std::string_view text) {
  Json j(cJSON_ParseWithLength(text.data(), text.size()));
  if (!cJSON_IsObject(j.get())) return;
  std::string op = str(j.get(), "op");
  const cJSON* ref = cJSON_GetObjectItemCaseSensitive(j.get(), "ref");
  if (op == "welcome") return on_welcome(j.get(), text);
  if ((op == "ok" || op == "error") && cJSON_IsNumber(ref)) {
    // num(): a ref out of int64's range reads as 0, which no request has.
    auto it = pending.find(client::num(j.get(), "ref"));
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

void Client::Impl::on_welcome(const cJSON* j, std::string_view text) {
  auth_pending = false;
  last_auth_error.clear();
  backoff_ms = 0;
  Welcome w = welcome_of(j, text);
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

void Client::Impl::deliver(const Event& e) {
  if (event_handler) event_handler(e);
}

void Client::Impl::on_event(const cJSON* j, std::string_view text) {
  Event e = event_of(j, text);
  if (e.op == "message") {
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

// Sends {op, ref, ...fields}; `reply` runs once.
void Client::Impl::send_request(const char* op, const cJSON* fields, Reply reply) {
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

void Client::Impl::ensure_tick() {
  if (tick_timer != nullptr) return;
  tick_timer = new_timer();
  uv_unref(reinterpret_cast<uv_handle_t*>(tick_timer));
  uv_timer_start(tick_timer, on_timer<&Impl::expire>, 500, 500);
}

void Client::Impl::expire() {
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

void Client::Impl::close(std::function<void()> done) {
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
void Client::Impl::finish_close() {
  if (!transport) return;
  uv_timer_t* t = new_timer();
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

void Client::Impl::shutdown_transport() {
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

}  // namespace hut
