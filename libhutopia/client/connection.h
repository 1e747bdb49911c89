// The state of a hut::Client (Client::Impl): its options, the bus
// connection with its hello, welcome and reconnects (connection.cc), the
// catch-up of rooms after a reconnect (catch_up.cc), the requests waiting
// for an answer with their deadlines, and the HTTP calls to the space and
// the relay (client.cc). The ops of the public API are in ops.cc.
// Thread: the client's loop only. Ownership: the Client owns its Impl; the
// Impl owns the transport, its timers and the pending replies.
#ifndef HUTOPIA_CLIENT_CONNECTION_H_
#define HUTOPIA_CLIENT_CONNECTION_H_

#include <hutopia/client.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "client/transport.h"
#include "client/wire.h"

namespace hut {

struct Client::Impl {
  using Transport = client::Transport;
  using HttpReply = client::HttpReply;
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

  ~Impl();

  static void close_timer(uv_timer_t** t);

  uint64_t now();

  void set_state(ClientState s, const Status& why);

  // ---- HTTP ----

  void http_json(const std::string& method, const std::string& url_text, const std::string& bearer,
                 std::string body, std::function<void(Status, const cJSON*, const HttpReply&)> done);

  std::string space_http_base() const;

  void discover(Callback<SpaceInfo> done);

  void mint_token(Callback<std::string> done);

  // ---- the bus ----

  void get_token(Callback<std::string> give);

  void open_socket();

  void send_hello();

  // A first connection that cannot be made: no retry.
  void fail_connect(Status why);

  void lost(int code, const std::string& reason);
  std::string last_auth_error;

  void schedule_retry(const Status& why, int delay = -1);

  void fail_pending(const Status& why);

  void on_frame(std::string_view text);

  void on_welcome(const cJSON* j, std::string_view text);

  void deliver(const Event& e);

  void on_event(const cJSON* j, std::string_view text);

  // After a reconnect: the messages of `room` after the last one seen.
  void catch_up(const std::string& room);

  void catch_up_after(const std::string& room, int64_t after, int pages);

  // For a space without `history after`: pages back from the newest until
  // the last seen message.
  void catch_up_before(const std::string& room, int64_t before, std::vector<Message> got, int pages);

  void replay(const std::string& room, std::vector<Message> msgs);

  void end_catch_up(const std::string& room, std::vector<Message> msgs);

  // Sends {op, ref, ...fields}; `reply` runs once.
  void send_request(const char* op, const cJSON* fields, Reply reply);

  void ensure_tick();

  void expire();

  void close(std::function<void()> done);

  // On a later loop turn: the lws context must not go from inside one of
  // its own callbacks.
  void finish_close();
  std::vector<uv_timer_t*> alive_timers;

  void shutdown_transport();

  // The loop-thread callback of a timer whose data is the Impl (null once
  // the Impl let go of it): runs `fn`.
  template <void (Impl::*fn)()>
  static void on_timer(uv_timer_t* t) {
    if (auto* impl = static_cast<Impl*>(t->data)) (impl->*fn)();
  }
  // A new timer on the client's loop, its data the Impl.
  uv_timer_t* new_timer();
  void retry_now();
};

}  // namespace hut

#endif  // HUTOPIA_CLIENT_CONNECTION_H_
