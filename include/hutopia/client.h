// hut::Client: the other side of the widget bus. A bot, a bridge, a test or
// a terminal client connects to a space's /bus with it, calls the ops of the
// contract's section 2 and receives the events, on a libuv loop.
//
//   uv_loop_t* loop = uv_default_loop();
//   hut::ClientOptions opt;
//   opt.space_url = "https://chat.example.org";
//   opt.token = "<relay or app token>";          // or relay_url + relay_session
//   auto client = hut::Client::create(opt, loop); // Result<unique_ptr<Client>>
//   (*client)->on_event([](const hut::Event& e) { ... });
//   (*client)->connect([&](hut::Result<hut::Welcome> w) {
//     (*client)->post("lobby", "hello", {}, [](hut::Result<hut::PostResult> r) { ... });
//   });
//   uv_run(loop, UV_RUN_DEFAULT);
//
// Connection: a WebSocket to <space>/bus (TLS for https:// and wss://, the
// server's certificate checked against the system's trust store or
// ClientOptions::ca_file), then a `hello` with a token, or with the resume
// credential of the last `welcome` when reconnecting. When the connection
// drops, the client reconnects with exponential backoff (resume credential
// first; a fresh token from the token source or the relay session when the
// credential is refused or absent), joins nothing again (membership is
// stored by the space), and fetches for every room it has seen the messages
// after the last seq it saw there, delivering them as `message` events in
// order: no message is lost or delivered twice across a reconnect.
//
// Replies: every call takes a callback that runs once, on the loop, with the
// result, or with an error Status: the space's error codes map to
// kInvalidArgument (bad_request, too_large), kUnauthenticated,
// kPermissionDenied (forbidden, muted), kNotFound, kAlreadyExists (conflict),
// kResourceExhausted (rate_limited), kUnavailable (unavailable, and calls
// made or pending while the connection is down) and kInternal; the message
// is "<code>: <text>" with the space's own code (see wire_code()). Calls
// made while disconnected fail at once with kUnavailable; nothing is queued.
//
// Thread: every method runs on the loop thread (or, before the loop runs,
// on the thread that will run it). Callbacks run on the loop thread.
// Ownership: the program owns the Client; a borrowed loop must outlive it.
// Destroying the Client drops pending callbacks without calling them; the
// network layer lets go of the loop on later loop turns, so run the loop
// until it returns before closing it (close() does it in order and calls
// back when done). A callback may destroy the Client only through close().
#ifndef HUTOPIA_CLIENT_H_
#define HUTOPIA_CLIENT_H_

#include <hutopia/export.h>
#include <hutopia/status.h>

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hut {

// {"id","name","avatar"?}
struct User {
  std::string id;
  std::string name;
  std::string avatar;  // empty when absent
};

// A chat message, as `history` and `message` events carry it.
struct Message {
  std::string room;
  int64_t seq = 0;
  int64_t ts = 0;  // Unix ms
  User from;
  std::string text;
  std::string data_json;  // the `data` field as JSON text; empty when absent
  int64_t edited_ts = 0;  // 0 when never edited
};

struct RoomInfo {
  std::string room;
  std::string topic;
  bool is_private = false;
  std::string role;  // empty when not a member
  int64_t unread = 0;
  int64_t last_seq = 0;
  std::string dm;  // the other user of a direct-message room
};

struct MemberInfo {
  std::string id;
  std::string name;
  std::string role;
  bool online = false;
  bool muted = false;
};

struct JoinResult {
  std::string room;
  std::string role;
  int64_t last_seq = 0;
  int64_t read_seq = 0;
  int64_t member_count = 0;
  std::vector<MemberInfo> members;  // a first page, online first
  bool more = false;
};

struct HistoryPage {
  std::vector<Message> messages;  // oldest first
  bool more = false;
};

struct MembersPage {
  std::vector<MemberInfo> members;
  bool more = false;
};

struct PostResult {
  int64_t seq = 0;
  int64_t ts = 0;
};

struct Welcome {
  std::string session;
  User user;
  std::string space_id;
  std::string space_name;
  std::vector<std::pair<std::string, int64_t>> rooms;  // room, unread
  std::string json;                                    // the whole frame
};

// What GET /.well-known/hutopia tells about a space.
struct SpaceInfo {
  std::string id;
  std::string name;
  std::string relay;  // the relay's issuer URL; empty when the space trusts none
};

struct RelaySession {
  std::string session;  // the bearer credential of the relay's session calls
  User user;
};

// An event from the space. `op` names it (contract section 2); the fields
// that event carries are set, the others stay empty or zero. `json` is the
// frame as the space sent it.
struct Event {
  std::string op;
  std::string room;
  int64_t seq = 0;
  Message message;   // op "message"
  User user;         // joined, left, presence, typing, muted, unmuted, role
  User by;           // kicked
  std::string text;  // edited
  int64_t edited_ts = 0;
  bool online = false;  // presence
  bool on = false;      // muted_all
  std::string role;     // role
  int64_t until = 0;    // muted: Unix ms, 0 for no end
  std::string plugin;   // widget, notify
  std::string data_json;
  std::string title, body, url;  // notify
  bool replayed = false;         // a message fetched after a reconnect
  std::string json;
};

enum class ClientState { kIdle, kConnecting, kConnected, kReconnecting, kClosed };

struct ClientOptions {
  // The space: http(s)://host[:port][/prefix], or the bus URL itself
  // (ws(s)://host[:port]/bus).
  std::string space_url;
  // A relay token or an app token for the first hello. Tokens are single
  // use: later connections use the resume credential, the token source or
  // the relay session.
  std::string token;
  // Called when a token is needed and none is left; answers through `give`.
  std::function<void(std::function<void(Result<std::string>)> give)> token_source;
  // A relay session: tokens for this space are minted from it
  // (POST <relay_url>/api/v1/spaces/<id>/tokens). relay_url and the space
  // id default to what /.well-known/hutopia says.
  std::string relay_url;
  std::string relay_session;
  std::string space_id;
  // PEM file of trust anchors for TLS; empty: the system's.
  std::string ca_file;
  bool reconnect = true;
  int backoff_initial_ms = 200;
  int backoff_max_ms = 10000;
  int request_timeout_ms = 30000;
};

// The space's own error code of a Status from a Client call ("forbidden",
// "muted", ...), or "" when it carries none.
HUT_EXPORT std::string wire_code(const Status& status);

class HUT_EXPORT Client {
 public:
  template <typename T>
  using Callback = std::function<void(Result<T>)>;
  using StatusCallback = std::function<void(Status)>;

  // `loop` is borrowed; nullptr: the client owns a loop of its own (run()).
  static Result<std::unique_ptr<Client>> create(ClientOptions options, uv_loop_t* loop = nullptr);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Opens the connection and authenticates; `done` runs with the welcome,
  // or with the reason it failed (no reconnecting before a first welcome).
  void connect(Callback<Welcome> done);
  // Closes the connection (1000) and lets go of the loop; `done` runs on the
  // loop when nothing of the client is left on it but the object itself.
  void close(std::function<void()> done = {});
  // Only for a client that owns its loop: runs it until close() finished.
  int run();
  uv_loop_t* loop() const;

  // Every event from the space, in the order received.
  void on_event(std::function<void(const Event&)> handler);
  // Connection state changes; `why` says why a connection was lost.
  void on_state(std::function<void(ClientState state, const Status& why)> handler);
  ClientState state() const;
  // What the last welcome said (empty before the first).
  const Welcome& welcome() const;
  // The highest seq seen in each room (messages and history pages).
  const std::map<std::string, int64_t>& last_seen() const;

  // ---- HTTP: discovery and the relay ----
  // GET <space_url>/.well-known/hutopia.
  void discover(Callback<SpaceInfo> done);
  // POST <relay>/api/v1/sessions; the session is kept for minting tokens.
  void relay_login(const std::string& relay_url, const std::string& username, const std::string& password,
                   Callback<RelaySession> done);
  // DELETE <relay>/api/v1/sessions.
  void relay_logout(StatusCallback done);
  // POST <relay>/api/v1/spaces/<space id>/tokens with the relay session.
  void mint_token(Callback<std::string> done);
  // GET <relay>/api/v1/spaces: the directory as JSON text.
  void relay_spaces(Callback<std::string> done);

  // ---- ops of the bus (contract section 2) ----
  void ping(StatusCallback done);
  // `data_json` must be JSON; the answer is the plugin's `data` as JSON.
  void widget(const std::string& plugin, const std::string& data_json, Callback<std::string> done);
  void rooms(Callback<std::vector<RoomInfo>> done);
  void create_room(const std::string& room, bool is_private, const std::string& topic,
                   Callback<std::string> done);
  void join(const std::string& room, Callback<JoinResult> done);
  void leave(const std::string& room, StatusCallback done);
  // `data_json` empty, or JSON for the message's `data`.
  void post(const std::string& room, const std::string& text, const std::string& data_json,
            Callback<PostResult> done);
  void edit(const std::string& room, int64_t seq, const std::string& text, StatusCallback done);
  void delete_message(const std::string& room, int64_t seq, StatusCallback done);
  // before / after: 0 for none; limit: 0 for the default.
  void history(const std::string& room, int64_t before, int64_t after, int limit, Callback<HistoryPage> done);
  // Moves the read marker; answers the room's unread count.
  void read(const std::string& room, int64_t seq, Callback<int64_t> done);
  void typing(const std::string& room, StatusCallback done);
  void members(const std::string& room, const std::string& after, int limit, Callback<MembersPage> done);
  // The direct-message room with `user_id`.
  void dm(const std::string& user_id, Callback<std::string> done);
  void kick(const std::string& room, const std::string& user_id, StatusCallback done);
  // seconds: 0 for no end. Answers `until` (Unix ms, 0 for no end).
  void mute(const std::string& room, const std::string& user_id, int64_t seconds, Callback<int64_t> done);
  void unmute(const std::string& room, const std::string& user_id, StatusCallback done);
  void mute_all(const std::string& room, bool on, StatusCallback done);
  void set_role(const std::string& room, const std::string& user_id, const std::string& role,
                StatusCallback done);
  // Any op: `fields_json` is a JSON object of the request's fields (without
  // op and ref); the answer is the whole `ok` frame as JSON.
  void request(const std::string& op, const std::string& fields_json, Callback<std::string> done);

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hut

#endif  // HUTOPIA_CLIENT_H_
