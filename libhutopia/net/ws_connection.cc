// The WebSocket connections of the network layer: message assembly and its
// limits, the per-connection output queue written once per loop turn, and
// the close handshake.
#include <algorithm>
#include <cstring>
#include <vector>

#include "net/server.h"
#include "util/log.h"

namespace hut::net {
namespace {

constexpr int kCloseWriteTimeoutS = 5;
// The close opcode; lws_write() takes it though the enum leaves it out.
constexpr int kWriteClose = 4;
constexpr int kCloseAckTimeoutS = 3;
// At most this much output goes to lws in one write; what the kernel does
// not take of it, lws copies and finishes first.
constexpr size_t kWriteChunk = 256 * 1024;
constexpr size_t kKeepDirtyCapacity = 65536;

}  // namespace

void WsConnection::send_pieces(std::initializer_list<std::string_view> pieces) {
  if (close_code_ != 0 || wsi_ == nullptr) return;
  // A server frame: FIN and the text opcode, then the length, no mask.
  unsigned char header[10];
  size_t header_len;
  size_t n = 0;
  for (std::string_view p : pieces) n += p.size();
  header[0] = 0x81;
  if (n < 126) {
    header[1] = static_cast<unsigned char>(n);
    header_len = 2;
  } else if (n < 65536) {
    header[1] = 126;
    header[2] = static_cast<unsigned char>(n >> 8);
    header[3] = static_cast<unsigned char>(n);
    header_len = 4;
  } else {
    header[1] = 127;
    for (int i = 0; i < 8; ++i)
      header[2 + i] = static_cast<unsigned char>(static_cast<uint64_t>(n) >> (56 - 8 * i));
    header_len = 10;
  }
  if (out_.empty() && out_.capacity() < header_len + n) server_->take_out_buffer(this, header_len + n);
  out_.append(reinterpret_cast<const char*>(header), header_len);
  for (std::string_view p : pieces) out_.append(p.data(), p.size());
  queued_bytes_ += header_len + n;
  server_->counters_[Count::kFramesOut]++;
  server_->counters_[Count::kBytesOut] += n;
  if (queued_bytes_ > server_->options_.backpressure) {
    // Nobody waits for this reader: drop what it did not take and close.
    std::string().swap(out_);
    out_head_ = 0;
    queued_bytes_ = 0;
    server_->counters_[Count::kClosedSlow]++;
    close(4008, "too slow: unread output over the limit");
    return;
  }
  if (dirty_index_ == kNotDirty) server_->mark_dirty(this);
}

void WsConnection::close(int code, std::string_view reason) {
  if (close_code_ != 0 || wsi_ == nullptr) return;
  close_code_ = code;
  close_reason_ = std::string(reason.substr(0, 120));
  // A peer that never reads never lets the close frame out: give up then.
  lws_set_timeout(wsi_, PENDING_TIMEOUT_USER_OK, kCloseWriteTimeoutS);
  lws_callback_on_writable(wsi_);
}

int NetServer::ws_callback(struct lws* wsi, enum lws_callback_reasons reason, void* in, size_t len) {
  switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
      if (shutting_down_ || !options_.websocket) return 1;
      if (copy_header(wsi, WSI_TOKEN_GET_URI) != options_.ws_path) return 1;
      if (conns_.size() + pending_auth_.size() >= options_.max_connections) {
        log_write(LogLevel::kWarn, "net", "refusing a bus connection: at [limits] max_connections");
        return 1;
      }
      pending_auth_[wsi] = copy_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
      return 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
      auto conn = std::make_unique<WsConnection>();
      conn->server_ = this;
      conn->wsi_ = wsi;
      conn->id_ = next_conn_id_++;
      auto pa = pending_auth_.find(wsi);
      if (pa != pending_auth_.end()) {
        conn->authorization_ = std::move(pa->second);
        pending_auth_.erase(pa);
      } else {
        conn->authorization_ = copy_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
      }
      WsConnection* raw = conn.get();
      conns_[wsi] = std::move(conn);
      // The hot callbacks find the connection here, without a hash lookup;
      // CLOSED clears it before the connection goes.
      lws_set_opaque_user_data(wsi, raw);
      counters_[Count::kConnectionsTotal]++;
      handler_->on_ws_open(raw);
      // The token has been read; a session does not keep it.
      std::string().swap(raw->authorization_);
      return finish_close_if_due(raw);
    }
    case LWS_CALLBACK_RECEIVE: {
      auto* conn = static_cast<WsConnection*>(lws_get_opaque_user_data(wsi));
      if (conn == nullptr) return -1;
      return on_ws_receive(conn, static_cast<const char*>(in), len);
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
      auto* conn = static_cast<WsConnection*>(lws_get_opaque_user_data(wsi));
      if (conn == nullptr) return 0;
      return on_ws_writeable(conn);
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
      // After our own close frame, the peer's is the answer: close now
      // without echoing. Otherwise lws echoes the peer's close.
      auto it = conns_.find(wsi);
      return it != conns_.end() && it->second->close_sent_ ? 1 : 0;
    }
    case LWS_CALLBACK_CLOSED: {
      pending_auth_.erase(wsi);
      auto it = conns_.find(wsi);
      if (it == conns_.end()) return 0;
      std::unique_ptr<WsConnection> conn = std::move(it->second);
      conns_.erase(it);
      lws_set_opaque_user_data(wsi, nullptr);
      conn->wsi_ = nullptr;
      if (conn->dirty_index_ != WsConnection::kNotDirty) {
        dirty_[conn->dirty_index_] = nullptr;
        conn->dirty_index_ = WsConnection::kNotDirty;
      }
      if (conn->close_code_ == 0) conn->close_code_ = LWS_CLOSE_STATUS_NO_STATUS;
      handler_->on_ws_close(conn.get());
      return 0;
    }
    default:
      return 0;
  }
}

int NetServer::on_ws_receive(WsConnection* conn, const char* in, size_t len) {
  if (conn->close_code_ != 0) return 0;  // closing: input no longer counts
  counters_[Count::kBytesIn] += len;
  if (!conn->in_message_) {
    conn->in_message_ = true;
    conn->message_.clear();
    if (lws_frame_is_binary(conn->wsi_)) {
      conn->close(LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "binary frames are not accepted");
      return finish_close_if_due(conn);
    }
  }
  if (conn->message_.size() + len > options_.max_message) {
    counters_[Count::kClosedTooBig]++;
    conn->message_.clear();
    conn->message_.shrink_to_fit();
    conn->close(LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message over the size limit");
    return finish_close_if_due(conn);
  }
  bool complete = lws_is_final_fragment(conn->wsi_) && lws_remaining_packet_payload(conn->wsi_) == 0;
  if (complete && conn->message_.empty()) {
    // A message that arrived in one piece is handed over from lws's buffer.
    conn->in_message_ = false;
    counters_[Count::kFramesIn]++;
    handler_->on_ws_message(conn, std::string_view(in, len));
    return finish_close_if_due(conn);
  }
  conn->message_.append(in, len);
  if (!complete) return 0;
  conn->in_message_ = false;
  counters_[Count::kFramesIn]++;
  std::string message;
  message.swap(conn->message_);
  handler_->on_ws_message(conn, message);
  return finish_close_if_due(conn);
}

int NetServer::on_ws_writeable(WsConnection* conn) {
  if (write_out(conn) < 0) return -1;
  if (conn->close_code_ != 0 && !conn->close_sent_ && conn->queued_bytes_ == 0) return send_close_frame(conn);
  return 0;
}

int NetServer::write_out(WsConnection* conn) {
  if (conn->queued_bytes_ == 0 || conn->wsi_ == nullptr) return 0;
  // lws keeps what the kernel did not take of a write and finishes it
  // before the next WRITEABLE callback; until then the output waits here,
  // so lws never holds more than one chunk.
  if (lws_partial_buffered(conn->wsi_)) {
    lws_callback_on_writable(conn->wsi_);
    return 0;
  }
  size_t n = std::min(conn->queued_bytes_, kWriteChunk);
  // The frames are encoded already: LWS_WRITE_RAW hands the bytes on as
  // they are.
  int w = lws_write(conn->wsi_, reinterpret_cast<unsigned char*>(conn->out_.data() + conn->out_head_), n,
                    LWS_WRITE_RAW);
  if (w < 0) return -1;
  conn->out_head_ += n;
  conn->queued_bytes_ -= n;
  if (conn->queued_bytes_ == 0) {
    // Not kept by the connection: a buffer kept by every connection that
    // ever got a frame would be most of an idle connection's memory.
    give_back_out_buffer(conn);
  } else {
    lws_callback_on_writable(conn->wsi_);
  }
  return 0;
}

void NetServer::take_out_buffer(WsConnection* conn, size_t need) {
  if (!spare_out_.empty() && spare_out_.back().capacity() >= need) {
    spare_bytes_ -= spare_out_.back().capacity();
    conn->out_.swap(spare_out_.back());
    spare_out_.pop_back();
    return;
  }
  conn->out_.reserve(std::max(need, kOutFirstCapacity));
}

void NetServer::give_back_out_buffer(WsConnection* conn) {
  conn->out_head_ = 0;
  size_t cap = conn->out_.capacity();
  if (cap >= kOutFirstCapacity && cap <= kSpareMaxCapacity && spare_bytes_ + cap <= kSpareBytes) {
    conn->out_.clear();
    spare_bytes_ += cap;
    spare_out_.push_back(std::move(conn->out_));
  }
  std::string().swap(conn->out_);
}

void NetServer::mark_dirty(WsConnection* conn) {
  if (flusher_ == nullptr) {
    // No loop turn to wait for (the server is going): write now.
    if (write_out(conn) < 0) conn->close_code_ = LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
    return;
  }
  if (dirty_.empty()) uv_idle_start(&flusher_->idle, [](uv_idle_t*) {});
  conn->dirty_index_ = dirty_.size();
  dirty_.push_back(conn);
}

void NetServer::flush_dirty() {
  if (flusher_ != nullptr) uv_idle_stop(&flusher_->idle);
  // Writing calls back into nothing of ours, so the list does not grow here;
  // the index loop is there for safety all the same.
  std::vector<WsConnection*> dirty;
  dirty.swap(dirty_);
  for (size_t i = 0; i < dirty.size(); ++i) {
    WsConnection* conn = dirty[i];
    if (conn == nullptr) continue;
    conn->dirty_index_ = WsConnection::kNotDirty;
    if (conn->wsi_ == nullptr) continue;
    if (write_out(conn) < 0) {
      conn->close_code_ = LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
      lws_set_timeout(conn->wsi_, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
  }
  dirty.clear();
  if (dirty_.empty() && dirty.capacity() <= kKeepDirtyCapacity) dirty_.swap(dirty);
}

void NetServer::close_flusher() {
  if (flusher_ == nullptr) return;
  for (WsConnection* conn : dirty_)
    if (conn != nullptr) conn->dirty_index_ = WsConnection::kNotDirty;
  dirty_.clear();
  Flusher* f = flusher_;
  flusher_ = nullptr;
  f->server = nullptr;
  uv_check_stop(&f->check);
  uv_idle_stop(&f->idle);
  auto on_closed = [](uv_handle_t* h) {
    auto* fl = static_cast<Flusher*>(h->data);
    if (--fl->open_handles == 0) delete fl;
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&f->check), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&f->idle), on_closed);
}

// lws 4.1 drops the connection without a close frame when WRITEABLE returns
// -1 (even after lws_close_reason()), and closing the socket while the peer's
// data is unread resets the connection, which can destroy the close frame
// before the peer reads it. So the space writes the close frame itself, then
// reads (and ignores) what the peer still sends until the peer's own close
// frame or end of stream, for at most kCloseAckTimeoutS.
int NetServer::send_close_frame(WsConnection* conn) {
  std::vector<unsigned char> buf(LWS_PRE + 2 + conn->close_reason_.size());
  unsigned char* p = buf.data() + LWS_PRE;
  p[0] = static_cast<unsigned char>((conn->close_code_ >> 8) & 0xff);
  p[1] = static_cast<unsigned char>(conn->close_code_ & 0xff);
  std::memcpy(p + 2, conn->close_reason_.data(), conn->close_reason_.size());
  conn->close_sent_ = true;
  int n = lws_write(conn->wsi_, p, buf.size() - LWS_PRE, static_cast<enum lws_write_protocol>(kWriteClose));
  if (n < 0) return -1;
  lws_set_timeout(conn->wsi_, PENDING_TIMEOUT_CLOSE_ACK, kCloseAckTimeoutS);
  return 0;
}

int NetServer::finish_close_if_due(WsConnection* conn) {
  if (conn->close_code_ == 0 || conn->close_sent_ || conn->wsi_ == nullptr) return 0;
  if (conn->queued_bytes_ != 0 || lws_send_pipe_choked(conn->wsi_)) {
    lws_callback_on_writable(conn->wsi_);
    return 0;
  }
  return send_close_frame(conn);
}

}  // namespace hut::net
