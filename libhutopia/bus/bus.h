// The widget bus (contract section 2): sessions on top of the network
// layer's WebSocket connections, the auth handshake, op dispatch, replies
// to plugin requests and events fanned out to sessions, users, rooms or
// everyone.
//
// Thread: the loop thread only.
// Ownership: the Space owns the Bus, the TokenVerifier and the ReplayCache;
// the Bus borrows the verifier, the cache, the plugin runtime and the room
// hooks, which must outlive it (or be unset first). Sessions belong to the Bus
// and end when their connection closes.
#ifndef HUTOPIA_BUS_BUS_H_
#define HUTOPIA_BUS_BUS_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <hutopia/token.h>

#include "bus/protocol.h"
#include "net/server.h"
#include "store/store.h"
#include "util/vocab.h"

namespace hut::bus {

// What the rooms part keeps for a welcomed session (its post budget and
// typing times), kept in the session so that one allocation and one lookup
// by id serve both parts. RoomHooks::session_welcomed fills it.
struct RoomSessionState {
  double post_tokens = 0;
  uint64_t post_refill_ms = 0;
  // By room; made at the session's first `typing`, so an idle session keeps
  // no empty map.
  std::unique_ptr<std::unordered_map<std::string, uint64_t>> last_typing_ms;
};

struct Session {
  std::string id;                     // 15 characters: fits std::string's inline buffer
  net::WsConnection* conn = nullptr;  // valid while the session lives
  bool welcomed = false;
  bool authenticating = false;  // waiting for fresh relay keys
  UserRef user;
  std::vector<uint64_t> bad_frame_times_ms;  // oldest first; empty costs nothing
  // The widget op budget (a token bucket) and the session's requests waiting
  // for a plugin.
  double widget_tokens = -1;  // < 0: full, not yet used
  uint64_t widget_refill_ms = 0;
  RoomSessionState rooms;
};

// The seam the rooms part fills: room ops, the welcome's room list and who
// is in a room. Without it, room ops answer `unavailable` and room events
// reach nobody.
class RoomHooks {
 public:
  virtual ~RoomHooks() = default;
  // An authenticated session sent a room op; answer with Bus::send_to_session
  // using frame.ref_json, now or later.
  virtual void handle_op(Session& session, const ClientFrame& frame) = 0;
  // The welcome's "rooms" value: a JSON array text, e.g. [{"room":"x","unread":2}].
  virtual std::string welcome_rooms(const Session& session) = 0;
  // Calls `fn` with the user id of each of a room's members. `fn` must not
  // change the room's membership.
  virtual void for_each_member(std::string_view room, const std::function<void(const std::string&)>& fn) = 0;
  virtual void session_welcomed(Session& session) = 0;
  virtual void session_closed(Session& session) = 0;
};

class Bus {
 public:
  struct Options {
    std::string space_id;
    std::string space_name;
    int64_t hello_timeout_ms = 10000;
    int64_t bad_frames = 20;              // this many bad frames ...
    int64_t bad_frame_window_ms = 10000;  // ... within this window close with 1008
    double widget_rate = 20;              // widget ops per second per session ...
    double widget_burst = 100;            // ... after a burst of this many: rate_limited
    size_t widget_pending = 32;           // a session's widget ops awaiting plugins: rate_limited over it
    int64_t resume_ttl_ms = 86400000;     // lifetime of a resume credential
  };

  Bus(Options options, uv_loop_t* loop, const TokenVerifier* verifier, ReplayCache* replay);
  ~Bus();

  void set_plugins(WidgetDispatch* plugins) { plugins_ = plugins; }
  void set_rooms(RoomHooks* rooms) { rooms_ = rooms; }
  // The store that keeps resume credentials (as hashes); borrowed, must
  // outlive the Bus or be unset first. Without it, welcomes carry no
  // `resume` and `hello` with one is refused.
  void set_store(Store* store) { store_ = store; }
  // Called when a token names a key the verifier does not know; the handler
  // calls `retry` (on the loop) once the key set is as fresh as it gets, and
  // the token is checked once more.
  using UnknownKeyHandler = std::function<void(std::function<void()> retry)>;
  void set_unknown_key_handler(UnknownKeyHandler handler) { unknown_key_ = std::move(handler); }
  // The single-use check of a space on several nodes, in place of the
  // ReplayCache: marks (iss, jti) used for `ttl_ms` and answers `done` on the
  // loop: ok, kAlreadyExists for a replay, kUnavailable when it cannot tell
  // (the hello then gets `unavailable` and close code 1013).
  using SingleUse = std::function<void(std::string_view iss, std::string_view jti, int64_t ttl_ms,
                                       std::function<void(Status)> done)>;
  void set_single_use(SingleUse check) { single_use_ = std::move(check); }

  // From the network layer.
  void on_open(net::WsConnection* conn);
  void on_message(net::WsConnection* conn, std::string_view text);
  void on_close(net::WsConnection* conn);

  // Sends the frame to every welcomed session the target names;
  // returns how many sessions got it.
  size_t send_event(EventTarget target, std::string_view target_id, std::string_view frame_json);

  // A widget request from the program that embeds the space, as if a
  // session of `user` sent it; `done` gets the plugin's answer (the data
  // JSON) or its error (code and message in the Status message), or
  // kUnavailable when the plugin did not answer in time or stopped.
  using InProcessDone = std::function<void(Status status, std::string data_json)>;
  void request_in_process(std::string_view plugin, const UserRef& user, std::string_view data_json,
                          InProcessDone done);

  // A frame to one session by id; false when there is no such session.
  bool send_to_session(std::string_view session_id, std::string_view frame_json);
  // The welcomed session of that id, or nullptr.
  const Session* welcomed_session(std::string_view session_id) const;
  Session* welcomed_session(std::string_view session_id);
  // The welcomed sessions of a user on this node (empty when none).
  std::span<Session* const> user_sessions(std::string_view user_id) const;
  // The ids of the users with a welcomed session on this node.
  std::vector<std::string> user_ids() const;

  size_t session_count() const { return sessions_.size(); }
  size_t welcomed_count() const;
  const Counters& counters() const { return counters_; }
  // The time send_event takes to hand one event to all its sessions.
  const Histogram& fanout_seconds() const { return fanout_seconds_; }
  // A reload's new limits (the space's id and name are kept). Sessions keep
  // their budgets; the new rates apply from their next refill.
  void set_limits(const Options& options) {
    std::string id = options_.space_id, name = options_.space_name;
    options_ = options;
    options_.space_id = std::move(id);
    options_.space_name = std::move(name);
  }

 private:
  bool widget_budget(Session& s);

  void authenticate(Session& s, std::string_view token, std::string_view ref_json, bool retried = false);
  void refuse(Session& s, std::string_view ref_json, std::string_view why);
  // The session of that id if it still waits for its authentication to
  // finish (no longer `authenticating`), else nullptr.
  Session* resume_waiting(const std::string& session_id);
  // The single-use check's answer, then the welcome.
  void admit(Session& s, const Claims& claims, std::string_view ref_json, const Status& used);
  // `resume`: the credential for the welcome, empty to make and store one.
  void welcome(Session& s, std::string_view ref_json, std::string resume = {});
  void resume(Session& s, std::string_view credential, std::string_view ref_json);
  void bad_frame(Session& s, std::string_view ref_json, std::string_view message);
  void send_error(Session& s, std::string_view ref_json, ErrorCode code, std::string_view message);
  void handle_widget(Session& s, const ClientFrame& frame);
  uint64_t now_ms() const;
  void arm_hello_timer();
  // Refuses the sessions whose hello deadline passed without a welcome.
  void hello_sweep();

  Options options_;
  uv_loop_t* loop_;
  const TokenVerifier* verifier_;
  ReplayCache* replay_;
  WidgetDispatch* plugins_ = nullptr;
  RoomHooks* rooms_ = nullptr;
  Store* store_ = nullptr;
  UnknownKeyHandler unknown_key_;
  SingleUse single_use_;
  std::unordered_map<std::string, std::unique_ptr<Session>> sessions_;
  std::unordered_map<std::string, std::vector<Session*>> by_user_;  // welcomed sessions
  // Sessions opened without an Authorization header, oldest first, until
  // their hello deadline (welcomed or closed ones are skipped then).
  struct HelloWait {
    uint64_t deadline_ms;
    std::string session_id;
  };
  std::deque<HelloWait> hello_waits_;
  uv_timer_t* hello_timer_ = nullptr;  // created on first use; freed by its close callback
  Counters counters_;
  Histogram fanout_seconds_;
  // Expires with the Bus: an answer the plugin runtime delivers later finds
  // nobody to send it to.
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
};

}  // namespace hut::bus

#endif  // HUTOPIA_BUS_BUS_H_
