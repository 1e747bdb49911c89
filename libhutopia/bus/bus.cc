#include "bus/bus.h"

#include <hutopia/plugin.h>

#include <openssl/sha.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <utility>

#include "util/clock.h"
#include "util/log.h"
#include "util/random.h"

namespace hut::bus {
namespace {

std::string user_json(const UserRef& u) {
  std::string out = R"({"id":)" + json_string(u.id) + R"(,"name":)" + json_string(u.name);
  if (!u.avatar.empty()) out += R"(,"avatar":)" + json_string(u.avatar);
  out += '}';
  return out;
}

// "Bearer <token>" -> token; the scheme is case-insensitive (RFC 7235).
bool bearer_token(std::string_view header, std::string_view* token) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = header[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return false;
  }
  std::string_view t = header.substr(kScheme.size());
  while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  *token = t;
  return !t.empty();
}

std::optional<ErrorCode> error_code_from_name(std::string_view name) {
  static constexpr ErrorCode kAll[] = {
      ErrorCode::kBadRequest,  ErrorCode::kUnauthenticated, ErrorCode::kForbidden,   ErrorCode::kNotFound,
      ErrorCode::kConflict,    ErrorCode::kMuted,           ErrorCode::kRateLimited, ErrorCode::kTooLarge,
      ErrorCode::kUnavailable, ErrorCode::kInternal};
  for (ErrorCode c : kAll)
    if (error_code_name(c) == name) return c;
  return std::nullopt;
}

// The stored form of a resume credential: SHA-256, hex.
std::string credential_hash(std::string_view credential) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(credential.data()), credential.size(), d);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof d);
  for (unsigned char b : d) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Bus::Bus(Options options, uv_loop_t* loop, const TokenVerifier* verifier, ReplayCache* replay)
    : options_(std::move(options)), loop_(loop), verifier_(verifier), replay_(replay) {}

// The network layer goes first (the Space destroys it before the Bus), so the
// connections the sessions point to may be gone: they are not touched here.
Bus::~Bus() {
  if (hello_timer_ != nullptr) {
    hello_timer_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(hello_timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
}

uint64_t Bus::now_ms() const { return loop_now_ms(loop_); }

size_t Bus::welcomed_count() const {
  size_t n = 0;
  for (const auto& [id, s] : sessions_)
    if (s->welcomed) ++n;
  return n;
}

void Bus::on_open(net::WsConnection* conn) {
  auto session = std::make_unique<Session>();
  // 11 random bytes make 15 base64url characters, short enough for
  // std::string's inline buffer: the id and its copies (map key, requests)
  // cost no allocation.
  session->id = random_token(11);
  session->id.shrink_to_fit();
  session->conn = conn;
  Session& s = *session;
  conn->user = session.get();
  sessions_[s.id] = std::move(session);
  counters_[Count::kSessionsOpened]++;
  const std::string& auth = conn->authorization();
  if (!auth.empty()) {
    std::string_view token;
    if (!bearer_token(auth, &token)) {
      refuse(s, {}, "the Authorization header is not a Bearer token");
      return;
    }
    authenticate(s, token, {});
    return;
  }
  hello_waits_.push_back(
      {now_ms() + static_cast<uint64_t>(std::max<int64_t>(options_.hello_timeout_ms, 0)), s.id});
  if (hello_timer_ == nullptr) {
    hello_timer_ = new uv_timer_t;
    uv_timer_init(loop_, hello_timer_);
    uv_unref(reinterpret_cast<uv_handle_t*>(hello_timer_));  // the connections keep the loop alive
    hello_timer_->data = this;
  }
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(hello_timer_))) arm_hello_timer();
}

// One timer for every session waiting for its hello: the deadlines are in
// the order the sessions opened, so the timer waits for the first one only
// and opening a session costs O(1) (a timer per connection would cost a
// sorted insert into lws's or libuv's timer list). After a reload that
// shortened the timeout, a later session may wait until the earlier ones'
// deadlines passed.
void Bus::arm_hello_timer() {
  if (hello_waits_.empty()) return;
  uint64_t now = now_ms();
  uint64_t due = hello_waits_.front().deadline_ms;
  uv_timer_start(
      hello_timer_,
      [](uv_timer_t* t) {
        if (t->data != nullptr) static_cast<Bus*>(t->data)->hello_sweep();
      },
      due > now ? due - now : 0, 0);
}

void Bus::hello_sweep() {
  uint64_t now = now_ms();
  while (!hello_waits_.empty() && hello_waits_.front().deadline_ms <= now) {
    std::string id = std::move(hello_waits_.front().session_id);
    hello_waits_.pop_front();
    auto it = sessions_.find(id);
    if (it == sessions_.end()) continue;
    Session& s = *it->second;
    if (s.welcomed || s.conn == nullptr || s.conn->closing()) continue;
    refuse(s, {}, "no hello within " + std::to_string(options_.hello_timeout_ms / 1000) + " s");
  }
  arm_hello_timer();
}

void Bus::on_close(net::WsConnection* conn) {
  auto* s = static_cast<Session*>(conn->user);
  if (s == nullptr) return;
  conn->user = nullptr;
  std::string id = s->id;
  // Its widget requests end unanswered in session_closed below (only a
  // welcomed session has any).
  if (s->welcomed) {
    auto u = by_user_.find(s->user.id);
    if (u != by_user_.end()) {
      auto& v = u->second;
      v.erase(std::remove(v.begin(), v.end(), s), v.end());
      if (v.empty()) by_user_.erase(u);
    }
    if (rooms_ != nullptr) rooms_->session_closed(*s);
    if (plugins_ != nullptr) plugins_->session_closed(id, s->user);
  }
  s->conn = nullptr;
  sessions_.erase(id);
}

void Bus::send_error(Session& s, std::string_view ref_json, ErrorCode code, std::string_view message) {
  counters_[Count::kErrorsSent]++;
  if (s.conn != nullptr) s.conn->send_text(make_error(ref_json, code, message));
}

void Bus::refuse(Session& s, std::string_view ref_json, std::string_view why) {
  counters_[Count::kAuthFailures]++;
  send_error(s, ref_json, ErrorCode::kUnauthenticated, why);
  if (s.conn != nullptr) {
    s.conn->close(static_cast<int>(CloseCode::kUnauthenticated),
                  close_code_name(CloseCode::kUnauthenticated));
  }
}

Session* Bus::resume_waiting(const std::string& session_id) {
  auto it = sessions_.find(session_id);
  if (it == sessions_.end() || it->second->welcomed || it->second->conn == nullptr ||
      it->second->conn->closing())
    return nullptr;
  it->second->authenticating = false;
  return it->second.get();
}

void Bus::authenticate(Session& s, std::string_view token, std::string_view ref_json, bool retried) {
  if (verifier_ == nullptr) {
    refuse(s, ref_json, "this space accepts no tokens");
    return;
  }
  int64_t now_s = static_cast<int64_t>(std::time(nullptr));
  Result<Claims> claims = verifier_->verify(token, now_s);
  if (!claims.ok() && claims.status().is_not_found() && !retried && unknown_key_) {
    // Perhaps the relay rotated its keys: look again, then check once more.
    std::string sid = s.id;
    std::string tok(token);
    std::string ref(ref_json);
    s.authenticating = true;
    unknown_key_([this, sid, tok, ref] {
      if (Session* waiting = resume_waiting(sid)) authenticate(*waiting, tok, ref, true);
    });
    return;
  }
  if (!claims.ok()) {
    Status st = claims.status();
    refuse(s, ref_json, st.is_not_found() ? std::string("unknown signing key") : std::string(st.message()));
    return;
  }
  if (single_use_) {
    // Kept as long as the token could pass, with the longest leeway.
    constexpr int64_t kMaxLeewayS = 30;
    int64_t ttl_ms = (claims->exp - now_s + kMaxLeewayS) * 1000;
    std::string sid = s.id;
    std::string ref(ref_json);
    s.authenticating = true;
    single_use_(claims->iss, claims->jti, ttl_ms, [this, sid, ref, c = *claims](Status used) {
      if (Session* waiting = resume_waiting(sid)) admit(*waiting, c, ref, used);
    });
    return;
  }
  admit(s, *claims, ref_json,
        replay_ != nullptr ? replay_->use(claims->iss, claims->jti, claims->exp, now_s) : Status());
}

void Bus::admit(Session& s, const Claims& claims, std::string_view ref_json, const Status& used) {
  if (used.code() == Status::Code::kUnavailable) {
    counters_[Count::kAuthFailures]++;
    send_error(s, ref_json, ErrorCode::kUnavailable, used.message());
    if (s.conn != nullptr)
      s.conn->close(static_cast<int>(CloseCode::kTryAgainLater), close_code_name(CloseCode::kTryAgainLater));
    return;
  }
  if (!used.ok()) {
    refuse(s, ref_json,
           used.code() == Status::Code::kAlreadyExists ? "token already used" : std::string(used.message()));
    return;
  }
  s.user.id = claims.sub;
  s.user.name =
      !claims.name.empty() ? claims.name : (!claims.username.empty() ? claims.username : claims.sub);
  s.user.avatar = claims.avatar;
  welcome(s, ref_json);
}

void Bus::resume(Session& s, std::string_view credential, std::string_view ref_json) {
  if (store_ == nullptr || credential.empty() || credential.size() > 256) {
    refuse(s, ref_json, "bad resume credential");
    return;
  }
  std::string next = random_token(32);
  std::string sid = s.id;
  std::string ref(ref_json);
  s.authenticating = true;
  store_->redeem_resume(credential_hash(credential), wall_ms(), credential_hash(next),
                        wall_ms() + options_.resume_ttl_ms, [this, sid, ref, next](Result<UserRecord> user) {
                          auto it = sessions_.find(sid);
                          if (it == sessions_.end() || it->second->welcomed || it->second->conn == nullptr ||
                              it->second->conn->closing())
                            return;
                          Session& ss = *it->second;
                          ss.authenticating = false;
                          if (!user.ok()) {
                            refuse(ss, ref,
                                   user.status().is_not_found()
                                       ? std::string("bad, used or expired resume credential")
                                       : std::string(user.status().message()));
                            return;
                          }
                          ss.user = UserRef{user->id, user->name, user->avatar};
                          welcome(ss, ref, next);
                        });
}

void Bus::welcome(Session& s, std::string_view ref_json, std::string resume) {
  s.user.name = clean_display_name(s.user.name);
  if (store_ != nullptr && resume.empty()) {
    // Stored before anything else this session asks of the store: a resume
    // on this node (one writer, in order) always finds it.
    resume = random_token(32);
    store_->put_resume(credential_hash(resume), UserRecord{s.user.id, s.user.name, s.user.avatar},
                       wall_ms() + options_.resume_ttl_ms, [](Status st) {
                         if (!st.ok())
                           log_write(LogLevel::kWarn, "bus",
                                     "cannot store a resume credential: " + std::string(st.message()));
                       });
  }
  s.welcomed = true;
  counters_[Count::kWelcomed]++;
  by_user_[s.user.id].push_back(&s);
  std::string out = R"({"op":"welcome")";
  if (!ref_json.empty()) out += R"(,"ref":)" + std::string(ref_json);
  out += R"(,"session":)" + json_string(s.id);
  out += R"(,"user":)" + user_json(s.user);
  out += R"(,"space":{"id":)" + json_string(options_.space_id) + R"(,"name":)" +
         json_string(options_.space_name) + "}";
  out += R"(,"widgets":[)";
  if (plugins_ != nullptr) {
    bool first = true;
    for (const WidgetInfo& w : plugins_->widgets()) {
      if (!first) out += ',';
      first = false;
      out += R"({"plugin":)" + json_string(w.plugin) + R"(,"tag":)" + json_string(w.tag) + R"(,"script":)" +
             json_string(w.script) + "}";
    }
  }
  out += "]";
  out += R"(,"rooms":)";
  out += rooms_ != nullptr ? rooms_->welcome_rooms(s) : std::string("[]");
  if (!resume.empty()) out += R"(,"resume":)" + json_string(resume);
  out += '}';
  if (s.conn != nullptr) s.conn->send_text(out);
  if (rooms_ != nullptr) rooms_->session_welcomed(s);
}

void Bus::bad_frame(Session& s, std::string_view ref_json, std::string_view message) {
  counters_[Count::kBadFrames]++;
  send_error(s, ref_json, ErrorCode::kBadRequest, message);
  uint64_t now = now_ms();
  auto& times = s.bad_frame_times_ms;
  times.push_back(now);
  uint64_t window = static_cast<uint64_t>(std::max<int64_t>(options_.bad_frame_window_ms, 0));
  auto first_kept = std::find_if(times.begin(), times.end(), [&](uint64_t t) { return now - t < window; });
  times.erase(times.begin(), first_kept);
  if (options_.bad_frames > 0 && static_cast<int64_t>(times.size()) >= options_.bad_frames &&
      s.conn != nullptr) {
    s.conn->close(static_cast<int>(CloseCode::kPolicyViolation),
                  close_code_name(CloseCode::kPolicyViolation));
  }
}

void Bus::on_message(net::WsConnection* conn, std::string_view text) {
  auto* sp = static_cast<Session*>(conn->user);
  if (sp == nullptr) return;
  Session& s = *sp;
  ParseOutcome parsed = parse_client_frame(text);
  if (!parsed.ok) {
    bad_frame(s, parsed.ref_json, parsed.message);
    return;
  }
  ClientFrame& frame = parsed.frame;
  if (!s.welcomed) {
    if (s.authenticating) {
      bad_frame(s, frame.ref_json, "authentication in progress");
      return;
    }
    if (frame.op != Op::kHello) {
      refuse(s, frame.ref_json, "authenticate first: send hello with a token");
      return;
    }
    const char* token = get_string(frame.root.get(), "token");
    if (token == nullptr) {
      if (const char* cred = get_string(frame.root.get(), "resume")) {
        resume(s, cred, frame.ref_json);
        return;
      }
      bad_frame(s, frame.ref_json, "hello needs a string token or a string resume");
      return;
    }
    authenticate(s, token, frame.ref_json);
    return;
  }
  switch (frame.op) {
    case Op::kHello:
      bad_frame(s, frame.ref_json, "already authenticated");
      return;
    case Op::kPing:
      s.conn->send_text(make_ok(frame.ref_json));
      return;
    case Op::kWidget:
      handle_widget(s, frame);
      return;
    default:
      if (rooms_ == nullptr) {
        send_error(s, frame.ref_json, ErrorCode::kUnavailable, "rooms are not available in this space");
        return;
      }
      rooms_->handle_op(s, frame);
      return;
  }
}

void Bus::handle_widget(Session& s, const ClientFrame& frame) {
  const char* plugin = get_string(frame.root.get(), "plugin");
  if (plugin == nullptr) {
    bad_frame(s, frame.ref_json, "widget needs a string plugin");
    return;
  }
  counters_[Count::kWidgetRequests]++;
  if (!widget_budget(s)) {
    counters_[Count::kWidgetRateLimited]++;
    send_error(s, frame.ref_json, ErrorCode::kRateLimited, "too many widget requests; slow down");
    return;
  }
  if (plugins_ != nullptr && plugins_->pending_requests(s.id) >= options_.widget_pending) {
    counters_[Count::kWidgetRateLimited]++;
    send_error(s, frame.ref_json, ErrorCode::kRateLimited,
               "too many widget requests waiting for their plugins; wait for their answers");
    return;
  }
  if (plugins_ == nullptr) {
    send_error(s, frame.ref_json, ErrorCode::kNotFound, std::string("no plugin named ") + plugin);
    return;
  }
  const cJSON* data = get_field(frame.root.get(), "data");
  WidgetRequest req;
  req.session_id = s.id;
  req.user = s.user;
  if (data == nullptr) {
    req.data_json = "null";
  } else {
    char* printed = cJSON_PrintUnformatted(data);
    req.data_json = printed ? printed : "null";
    cJSON_free(printed);
  }
  // The runtime owns the request; the answer finds the session by its id
  // (a closed session's requests end unanswered).
  auto answer = [this, life = std::weak_ptr<int>(life_), session_id = s.id,
                 ref = frame.ref_json](const PluginAnswer& a) {
    if (life.expired()) return HUT_OK;  // the Bus is gone, and its sessions
    auto si = sessions_.find(session_id);
    if (si == sessions_.end() || si->second->conn == nullptr) return HUT_OK;
    Session& session = *si->second;
    if (a.kind == PluginAnswer::Kind::kData) {
      // The plugin's data text is spliced in as it is: one copy, into the output.
      if (ref.empty())
        session.conn->send_pieces({R"({"op":"ok","data":)", a.data_json, "}"});
      else
        session.conn->send_pieces({R"({"op":"ok","ref":)", ref, R"(,"data":)", a.data_json, "}"});
      return HUT_OK;
    }
    if (a.kind == PluginAnswer::Kind::kExpired) counters_[Count::kWidgetTimeouts]++;
    ErrorCode code = a.kind == PluginAnswer::Kind::kError
                         ? error_code_from_name(a.code).value_or(ErrorCode::kInternal)
                         : ErrorCode::kUnavailable;
    send_error(session, ref, code, a.message);
    return HUT_OK;
  };
  Result<RequestId> id = plugins_->dispatch_widget(plugin, std::move(req), std::move(answer));
  if (id.ok()) return;
  const Status& st = id.status();
  if (st.is_not_found()) {
    send_error(s, frame.ref_json, ErrorCode::kNotFound, std::string("no plugin named ") + plugin);
  } else if (st.code() == Status::Code::kUnavailable) {
    send_error(s, frame.ref_json, ErrorCode::kUnavailable, st.message());
  } else {
    send_error(s, frame.ref_json, ErrorCode::kInternal, st.message());
  }
}

bool Bus::widget_budget(Session& s) {
  uint64_t now = now_ms();
  if (s.widget_tokens < 0) {
    s.widget_tokens = options_.widget_burst;
    s.widget_refill_ms = now;
  }
  double elapsed_s = static_cast<double>(now - s.widget_refill_ms) / 1000.0;
  s.widget_refill_ms = now;
  s.widget_tokens = std::min(options_.widget_burst, s.widget_tokens + elapsed_s * options_.widget_rate);
  if (s.widget_tokens < 1.0) return false;
  s.widget_tokens -= 1.0;
  return true;
}

void Bus::request_in_process(std::string_view plugin, const UserRef& user, std::string_view data_json,
                             InProcessDone done) {
  if (plugins_ == nullptr) {
    done(Status::not_found("no plugin named " + std::string(plugin)), {});
    return;
  }
  if (!is_json(data_json)) {
    done(Status::invalid_argument("data is not JSON"), {});
    return;
  }
  WidgetRequest req;
  req.session_id = "in-process";
  req.user = user;
  req.data_json = std::string(data_json);
  auto answer = [done](const PluginAnswer& a) {
    switch (a.kind) {
      case PluginAnswer::Kind::kData:
        done(Status(), std::string(a.data_json));
        break;
      case PluginAnswer::Kind::kError:
        done(Status::failed_precondition(std::string(a.code) + ": " + std::string(a.message)), {});
        break;
      default:
        done(Status::unavailable(std::string(a.message)), {});
    }
    return HUT_OK;
  };
  Result<RequestId> id = plugins_->dispatch_widget(plugin, std::move(req), std::move(answer));
  if (!id.ok()) done(id.status(), {});
}

bool Bus::send_to_session(std::string_view session_id, std::string_view frame_json) {
  auto si = sessions_.find(std::string(session_id));
  if (si == sessions_.end() || si->second->conn == nullptr) return false;
  si->second->conn->send_text(frame_json);
  return true;
}

const Session* Bus::welcomed_session(std::string_view session_id) const {
  auto si = sessions_.find(std::string(session_id));
  if (si == sessions_.end() || si->second->conn == nullptr || !si->second->welcomed) return nullptr;
  return si->second.get();
}

Session* Bus::welcomed_session(std::string_view session_id) {
  return const_cast<Session*>(std::as_const(*this).welcomed_session(session_id));
}

std::span<Session* const> Bus::user_sessions(std::string_view user_id) const {
  auto u = by_user_.find(std::string(user_id));
  if (u == by_user_.end()) return {};
  return u->second;
}

std::vector<std::string> Bus::user_ids() const {
  std::vector<std::string> out;
  out.reserve(by_user_.size());
  for (const auto& [uid, sessions] : by_user_) out.push_back(uid);
  return out;
}

size_t Bus::send_event(EventTarget target, std::string_view target_id, std::string_view frame_json) {
  counters_[Count::kEvents]++;
  uint64_t start = uv_hrtime();
  size_t n = 0;
  auto deliver = [&](Session* s) {
    if (!s->welcomed || s->conn == nullptr) return;
    s->conn->send_text(frame_json);
    ++n;
  };
  switch (target) {
    case EventTarget::kSession: {
      auto si = sessions_.find(std::string(target_id));
      if (si != sessions_.end()) deliver(si->second.get());
      break;
    }
    case EventTarget::kUser: {
      auto u = by_user_.find(std::string(target_id));
      if (u == by_user_.end()) break;
      std::vector<Session*> copy = u->second;
      for (Session* s : copy) deliver(s);
      break;
    }
    case EventTarget::kRoom: {
      if (rooms_ == nullptr) break;
      // Delivering only appends to output buffers: no session comes or goes
      // meanwhile, so the lists are walked in place.
      rooms_->for_each_member(target_id, [&](const std::string& uid) {
        auto u = by_user_.find(uid);
        if (u == by_user_.end()) return;
        for (Session* s : u->second) deliver(s);
      });
      break;
    }
    case EventTarget::kEveryone: {
      std::vector<Session*> all;
      all.reserve(sessions_.size());
      for (auto& [id, s] : sessions_) all.push_back(s.get());
      for (Session* s : all) deliver(s);
      break;
    }
  }
  counters_[Count::kDeliveries] += n;
  fanout_seconds_.observe_ns(uv_hrtime() - start);
  return n;
}

}  // namespace hut::bus
