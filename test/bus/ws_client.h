// A small blocking WebSocket client for the tests, written with the lws
// client API on a context of its own (lws's own poll loop, not libuv), so a
// test can hold several clients and service each one when it chooses: a
// client that is not serviced reads nothing, like a peer that stopped
// reading.
//
// Thread: one thread per client (the test's). Every wait is bounded.
#ifndef HUTOPIA_TEST_BUS_WS_CLIENT_H_
#define HUTOPIA_TEST_BUS_WS_CLIENT_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct lws;
struct lws_context;
struct lws_sorted_usec_list;

namespace hut::test {

struct WsEvent {
  enum Kind { kText, kBinary, kClosed, kTimeout } kind = kTimeout;
  std::string data;    // the message, or the close reason
  int close_code = 0;  // kClosed: the code the server sent; 1006 when none
};

class WsClient {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 0;
    std::string path = "/bus";
    std::string protocol = "hutopia.v1";  // empty: offer no subprotocol
    std::string authorization;            // sent as the Authorization header when set
    int receive_buffer = 0;               // SO_RCVBUF of the socket when > 0
  };

  // Connects and waits for the upgrade; nullptr (and *error) on failure.
  static std::unique_ptr<WsClient> connect(const Options& options, std::string* error = nullptr,
                                           int timeout_ms = 5000);
  ~WsClient();

  // Writes a frame; the client masks a copy, the argument stays as it is.
  bool send_text(std::string_view text, int timeout_ms = 5000);
  bool send_binary(std::string_view bytes, int timeout_ms = 5000);
  // One text message split into frames of the given parts.
  bool send_fragments(const std::vector<std::string>& parts, int timeout_ms = 5000);

  // The next message or the close; kTimeout when nothing came in time.
  WsEvent recv(int timeout_ms = 5000);
  // Skips messages until the close; its code, or -1 on timeout.
  int wait_close(int timeout_ms = 5000, std::vector<std::string>* skipped = nullptr);
  // Services the connection for about `ms` without taking messages.
  void pump(int ms);
  bool closed() const { return closed_; }

  // Sends {"op":"hello","token":...} and returns the answer.
  WsEvent hello(std::string_view token, int timeout_ms = 5000);
  // Sends `frame` and returns the next text message.
  std::string request(std::string_view frame, int timeout_ms = 5000);

 private:
  WsClient() = default;
  bool write_frame(std::string_view payload, int protocol_flags, int timeout_ms);
  void service_once(int max_ms);

  struct lws_context* context_ = nullptr;
  // Bounds each lws_service() wait: a timer of the context, not of the
  // connection, so that it never touches a connection lws has let go.
  std::unique_ptr<struct lws_sorted_usec_list> wake_;
  struct lws* wsi_ = nullptr;
  bool connected_ = false;
  bool closed_ = false;
  bool failed_ = false;
  std::string error_;
  std::string authorization_;
  int receive_buffer_ = 0;
  std::string partial_;
  bool partial_binary_ = false;
  bool in_message_ = false;
  std::deque<WsEvent> inbox_;
  int close_code_ = 1006;
  std::string close_reason_;
  bool close_reported_ = false;

  friend struct WsClientAccess;
};

}  // namespace hut::test

#endif  // HUTOPIA_TEST_BUS_WS_CLIENT_H_
