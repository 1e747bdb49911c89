#include "bus/ws_client.h"

#include <sys/socket.h>

#include <chrono>
#include <cstring>

// clang-format off
#include <uv.h>
#include <libwebsockets.h>
// clang-format on

namespace hut::test {

struct WsClientAccess {
  static int callback(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in, size_t len);
};

namespace {

using Clock = std::chrono::steady_clock;

int64_t ms_left(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
}

int client_cb(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in, size_t len) {
  return WsClientAccess::callback(wsi, reason, user, in, len);
}

const struct lws_protocols kProtocols[] = {
    {"hutopia-test-client", client_cb, 0, 1 << 17, 0, nullptr, 1 << 17},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

}  // namespace

int WsClientAccess::callback(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in,
                             size_t len) {
  (void)user;
  auto* self = static_cast<WsClient*>(lws_get_opaque_user_data(wsi));
  if (self == nullptr) return lws_callback_http_dummy(wsi, reason, user, in, len);
  switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
      if (self->authorization_.empty()) return 0;
      auto** p = static_cast<unsigned char**>(in);
      unsigned char* end = *p + len;
      if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                       reinterpret_cast<const unsigned char*>(self->authorization_.data()),
                                       static_cast<int>(self->authorization_.size()), p, end))
        return -1;
      return 0;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      self->connected_ = true;
      if (self->receive_buffer_ > 0) {
        int fd = static_cast<int>(lws_get_socket_fd(wsi));
        int size = self->receive_buffer_;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
      }
      return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
      self->failed_ = true;
      self->closed_ = true;
      self->wsi_ = nullptr;
      self->error_ = in ? std::string(static_cast<const char*>(in), len) : "connection error";
      return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
      if (!self->in_message_) {
        self->in_message_ = true;
        self->partial_.clear();
        self->partial_binary_ = lws_frame_is_binary(wsi) != 0;
      }
      self->partial_.append(static_cast<const char*>(in), len);
      if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        WsEvent ev;
        ev.kind = self->partial_binary_ ? WsEvent::kBinary : WsEvent::kText;
        ev.data.swap(self->partial_);
        self->in_message_ = false;
        self->inbox_.push_back(std::move(ev));
      }
      return 0;
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
      const auto* p = static_cast<const unsigned char*>(in);
      if (len >= 2) {
        self->close_code_ = (p[0] << 8) | p[1];
        self->close_reason_.assign(reinterpret_cast<const char*>(p + 2), len - 2);
      } else {
        self->close_code_ = 1005;
      }
      return 0;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
      self->closed_ = true;
      self->wsi_ = nullptr;
      return 0;
    case LWS_CALLBACK_TIMER:
      return 0;
    default:
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

std::unique_ptr<WsClient> WsClient::connect(const Options& options, std::string* error, int timeout_ms) {
  static bool log_set = false;
  if (!log_set) {
    lws_set_log_level(LLL_ERR, nullptr);
    log_set = true;
  }
  std::unique_ptr<WsClient> c(new WsClient());
  c->authorization_ = options.authorization;
  c->receive_buffer_ = options.receive_buffer;
  struct lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = kProtocols;
  info.pt_serv_buf_size = 1 << 17;
  c->wake_ = std::make_unique<lws_sorted_usec_list_t>();
  c->context_ = lws_create_context(&info);
  if (c->context_ == nullptr) {
    if (error) *error = "lws_create_context failed";
    return nullptr;
  }
  struct lws_client_connect_info ci;
  std::memset(&ci, 0, sizeof ci);
  ci.context = c->context_;
  ci.address = options.host.c_str();
  ci.port = options.port;
  ci.path = options.path.c_str();
  ci.host = options.host.c_str();
  ci.origin = options.host.c_str();
  ci.protocol = options.protocol.empty() ? nullptr : options.protocol.c_str();
  ci.local_protocol_name = kProtocols[0].name;
  ci.opaque_user_data = c.get();
  ci.pwsi = &c->wsi_;
  if (lws_client_connect_via_info(&ci) == nullptr && c->wsi_ == nullptr) {
    if (error) *error = "lws_client_connect_via_info failed";
    return nullptr;
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!c->connected_ && !c->failed_ && ms_left(deadline) > 0) c->service_once(20);
  if (!c->connected_) {
    if (error) *error = c->failed_ ? c->error_ : "timed out connecting";
    return nullptr;
  }
  return c;
}

WsClient::~WsClient() {
  if (context_ == nullptr) return;
  lws_sul_cancel(wake_.get());
  lws_context_destroy(context_);
}

void WsClient::service_once(int max_ms) {
  if (context_ == nullptr) return;
  if (wsi_ == nullptr && (connected_ || failed_)) return;
  // lws_service() sleeps until the next event; a timer of the context bounds
  // the wait. (A timer on the connection did before: arming it crashed once
  // inside lws's timer list, in a connect that the space refused, under
  // load; a timer of the context does not depend on the connection's state.)
  lws_sul_schedule(
      context_, 0, wake_.get(), [](lws_sorted_usec_list_t*) {}, static_cast<lws_usec_t>(max_ms) * 1000);
  lws_service(context_, 0);
}

void WsClient::pump(int ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  while (!closed_ && ms_left(deadline) > 0)
    service_once(static_cast<int>(std::min<int64_t>(ms_left(deadline), 20)));
}

bool WsClient::write_frame(std::string_view payload, int flags, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (wsi_ != nullptr && lws_send_pipe_choked(wsi_) && ms_left(deadline) > 0) service_once(10);
  if (wsi_ == nullptr) return false;
  // lws masks the payload in place: write from a copy.
  std::vector<unsigned char> buf(LWS_PRE + payload.size());
  if (!payload.empty()) std::memcpy(buf.data() + LWS_PRE, payload.data(), payload.size());
  int n = lws_write(wsi_, buf.data() + LWS_PRE, payload.size(), static_cast<enum lws_write_protocol>(flags));
  return n >= static_cast<int>(payload.size());
}

bool WsClient::send_text(std::string_view text, int timeout_ms) {
  return write_frame(text, LWS_WRITE_TEXT, timeout_ms);
}

bool WsClient::send_binary(std::string_view bytes, int timeout_ms) {
  return write_frame(bytes, LWS_WRITE_BINARY, timeout_ms);
}

bool WsClient::send_fragments(const std::vector<std::string>& parts, int timeout_ms) {
  for (size_t i = 0; i < parts.size(); ++i) {
    int flags = i == 0 ? LWS_WRITE_TEXT : LWS_WRITE_CONTINUATION;
    if (i + 1 < parts.size()) flags |= LWS_WRITE_NO_FIN;
    if (!write_frame(parts[i], flags, timeout_ms)) return false;
  }
  return true;
}

WsEvent WsClient::recv(int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (inbox_.empty() && !closed_ && ms_left(deadline) > 0)
    service_once(static_cast<int>(std::min<int64_t>(ms_left(deadline), 20)));
  if (!inbox_.empty()) {
    WsEvent ev = std::move(inbox_.front());
    inbox_.pop_front();
    return ev;
  }
  WsEvent ev;
  if (closed_) {
    ev.kind = WsEvent::kClosed;
    ev.close_code = close_code_;
    ev.data = close_reason_;
  }
  return ev;
}

int WsClient::wait_close(int timeout_ms, std::vector<std::string>* skipped) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (ms_left(deadline) > 0) {
    WsEvent ev = recv(static_cast<int>(ms_left(deadline)));
    if (ev.kind == WsEvent::kClosed) return ev.close_code;
    if (ev.kind == WsEvent::kTimeout) return -1;
    if (skipped) skipped->push_back(std::move(ev.data));
  }
  return -1;
}

WsEvent WsClient::hello(std::string_view token, int timeout_ms) {
  std::string frame = R"({"op":"hello","token":")" + std::string(token) + "\"}";
  if (!send_text(frame, timeout_ms)) return WsEvent{};
  return recv(timeout_ms);
}

std::string WsClient::request(std::string_view frame, int timeout_ms) {
  if (!send_text(frame, timeout_ms)) return {};
  WsEvent ev = recv(timeout_ms);
  return ev.kind == WsEvent::kText ? ev.data : std::string();
}

}  // namespace hut::test
