// One WebSocket connection on the public listener of the network layer
// (net/server.h): the frames it sends (encoded into one output queue that
// is written at the end of the loop turn) and its close.
//
// Thread: the loop thread. Ownership: WsConnection objects belong to the
// NetServer and live from the upgrade until NetHandler::on_ws_close returns.
#ifndef HUTOPIA_NET_WS_CONNECTION_H_
#define HUTOPIA_NET_WS_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "net/lws.h"

namespace hut::net {

class NetServer;

// One WebSocket connection of the bus.
class WsConnection {
 public:
  uint64_t id() const { return id_; }
  // The upgrade request's Authorization header ("" when absent); only during
  // NetHandler::on_ws_open, then released.
  const std::string& authorization() const { return authorization_; }

  // Appends a frame to the connection's output. The output of every
  // connection is written at the end of the loop turn, one write per
  // connection for all the frames of the turn; closes with 4008 when the
  // unwritten output exceeds the backpressure limit.
  void send_text(std::string_view text) { send_pieces({text}); }
  // One text frame made of the pieces one after the other.
  void send_pieces(std::initializer_list<std::string_view> pieces);
  // Closes with `code` after what is already queued. Later sends are dropped.
  void close(int code, std::string_view reason);
  bool closing() const { return close_code_ != 0; }
  size_t queued_bytes() const { return queued_bytes_; }

  // The handler's state for this connection; the handler owns what it points to.
  void* user = nullptr;

 private:
  friend class NetServer;
  NetServer* server_ = nullptr;
  struct lws* wsi_ = nullptr;
  uint64_t id_ = 0;
  std::string authorization_;
  // Encoded frames (header and payload) not yet handed to lws, from
  // out_head_ on. Released when written out, so an idle connection keeps no
  // buffer.
  std::string out_;
  size_t out_head_ = 0;
  size_t queued_bytes_ = 0;
  // Where the connection sits in NetServer::dirty_, or kNotDirty.
  static constexpr size_t kNotDirty = static_cast<size_t>(-1);
  size_t dirty_index_ = kNotDirty;
  std::string message_;
  bool in_message_ = false;
  int close_code_ = 0;
  bool close_sent_ = false;
  std::string close_reason_;
};

}  // namespace hut::net

#endif  // HUTOPIA_NET_WS_CONNECTION_H_
