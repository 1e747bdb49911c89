#include "client/transport.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/ssl.h>

#include <cstring>

#include "util/log.h"

namespace hut::client {
namespace {

constexpr size_t kRxBuffer = 16384;

// What lws says of a failed connection, or a plain phrase when it says nothing.
std::string connection_error(const void* in, size_t len) {
  std::string why = in ? std::string(static_cast<const char*>(in), len) : std::string();
  return why.empty() ? "connection error" : why;
}

}  // namespace

struct Transport::Request {
  std::string method;
  Url url;
  std::string host;
  std::string target;  // the path and query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  size_t body_sent = 0;
  HttpReply reply;
  std::function<void(Result<HttpReply>)> done;
  struct lws* wsi = nullptr;
};

struct Transport::Resolve {
  uv_getaddrinfo_t req;
  Transport* owner = nullptr;
  std::function<void(std::string, std::string)> done;
};

Transport::Transport(uv_loop_t* loop, Options options) : loop_(loop), options_(std::move(options)) {}

Result<std::unique_ptr<Transport>> Transport::create(uv_loop_t* loop, Options options) {
  std::unique_ptr<Transport> t(new Transport(loop, std::move(options)));
  HUT_RETURN_IF_ERROR(t->init());
  return t;
}

Status Transport::init() {
  net::route_lws_logging(false);
  protocols_[0] = {"hut-client-http", &Transport::http_entry, 0, kRxBuffer, 0, nullptr, 0};
  lws_callback_function* ws_entry = &Transport::entry<Socket, &Transport::sockets_, &Transport::ws_callback>;
  protocols_[1] = {"hut-client-ws", ws_entry, 0, kRxBuffer, 0, nullptr, 0};
  protocols_[2] = {nullptr, nullptr, 0, 0, 0, nullptr, 0};
  net::LwsContext::Options lo;
  lo.lws_options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  Result<std::unique_ptr<net::LwsContext>> lws = net::LwsContext::create(loop_, this, lo);
  if (!lws.ok()) return lws.status();
  lws_ = std::move(*lws);
  struct lws_context_creation_info vi;
  std::memset(&vi, 0, sizeof vi);
  vi.vhost_name = "hut-client";
  vi.port = CONTEXT_PORT_NO_LISTEN;
  vi.protocols = protocols_;
  vi.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  // The client TLS context: peers verified against the CA file or the
  // system's trust store (lws checks the host name on each connection).
  SSL_CTX* client_ssl = SSL_CTX_new(TLS_client_method());
  if (client_ssl == nullptr) return Status::unavailable("cannot create a TLS context");
  lws_->keep_client_ssl(client_ssl);
  SSL_CTX_set_min_proto_version(client_ssl, TLS1_2_VERSION);
  SSL_CTX_set_verify(client_ssl, SSL_VERIFY_PEER, nullptr);
  int trust = options_.ca_file.empty()
                  ? SSL_CTX_set_default_verify_paths(client_ssl)
                  : SSL_CTX_load_verify_locations(client_ssl, options_.ca_file.c_str(), nullptr);
  if (trust != 1) {
    return Status::unavailable(options_.ca_file.empty() ? "cannot load the system's trust store"
                                                        : "cannot load the CA file " + options_.ca_file);
  }
  vi.provided_client_ssl_ctx = client_ssl;
  vhost_ = lws_create_vhost(lws_->get(), &vi);
  if (vhost_ == nullptr) {
    return Status::unavailable(options_.ca_file.empty() ? "cannot create the client vhost"
                                                        : "cannot load the CA file " + options_.ca_file);
  }
  return Status();
}

Transport::~Transport() { shutdown(nullptr); }

void Transport::shutdown(std::function<void()> done) {
  for (Resolve* r : resolving_) r->owner = nullptr;
  resolving_.clear();
  for (Request* r : requests_) {
    if (r->wsi != nullptr) lws_set_opaque_user_data(r->wsi, nullptr);
    delete r;
  }
  requests_.clear();
  for (Socket* s : sockets_) {
    if (s->wsi_ != nullptr) lws_set_opaque_user_data(s->wsi_, nullptr);
    delete s;
  }
  sockets_.clear();
  if (lws_ == nullptr) {
    if (done) done();
    return;
  }
  // lws's callbacks find no owner from here on; the context is torn down
  // on later loop turns.
  std::unique_ptr<net::LwsContext> lws = std::move(lws_);
  lws->release(std::move(done));
}

void Transport::resolve(const std::string& host, std::function<void(std::string, std::string)> done) {
  // Numeric addresses need no lookup.
  unsigned char buf[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1) {
    done(host, "");
    return;
  }
  auto* r = new Resolve;
  r->owner = this;
  r->done = std::move(done);
  r->req.data = r;
  resolving_.insert(r);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(
      loop_, &r->req,
      [](uv_getaddrinfo_t* req, int status, struct addrinfo* res) {
        auto* r = static_cast<Resolve*>(req->data);
        std::string address;
        // IPv4 first: a name that also maps to ::1 is usually served on 127.0.0.1.
        for (int family : {AF_INET, AF_INET6}) {
          for (addrinfo* a = status == 0 ? res : nullptr; a != nullptr && address.empty(); a = a->ai_next) {
            if (a->ai_family != family) continue;
            char text[INET6_ADDRSTRLEN] = {0};
            if (family == AF_INET)
              inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, text, sizeof text);
            else
              inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, text, sizeof text);
            address = text;
          }
        }
        uv_freeaddrinfo(res);
        Transport* self = r->owner;
        auto done = std::move(r->done);
        if (self != nullptr) self->resolving_.erase(r);
        delete r;
        if (self == nullptr) return;
        done(address, address.empty() ? std::string("cannot resolve the host name") : std::string());
      },
      host.c_str(), nullptr, &hints);
  if (rc != 0) {
    resolving_.erase(r);
    auto d = std::move(r->done);
    delete r;
    d("", std::string("cannot resolve: ") + uv_strerror(rc));
  }
}

// ---- HTTP ----

void Transport::http(std::string method, const Url& url,
                     std::vector<std::pair<std::string, std::string>> headers, std::string body,
                     std::function<void(Result<HttpReply>)> done) {
  if (lws_ == nullptr) {
    done(Status::unavailable("the client is closed"));
    return;
  }
  auto* req = new Request;
  req->method = std::move(method);
  req->url = url;
  req->host = url.host_header();
  req->target = url.target();
  req->headers = std::move(headers);
  req->body = std::move(body);
  req->done = std::move(done);
  requests_.insert(req);
  resolve(url.host, [this, req](std::string address, std::string error) {
    if (address.empty()) {
      finish_request(req, Status::unavailable(req->url.host + ": " + error));
      return;
    }
    start_request(req, address);
  });
}

lws_client_connect_info Transport::connect_info(const std::string& address, const Url& url,
                                                const std::string& target, const std::string& host) const {
  lws_client_connect_info ci;
  std::memset(&ci, 0, sizeof ci);
  ci.context = lws_->get();
  ci.vhost = vhost_;
  ci.address = address.c_str();
  ci.port = url.port;
  ci.path = target.c_str();
  ci.host = host.c_str();
  ci.origin = host.c_str();
  ci.ssl_connection = url.tls() ? LCCSCF_USE_SSL : 0;
  return ci;
}

void Transport::start_request(Request* req, const std::string& address) {
  if (lws_ == nullptr || lws_->get() == nullptr) {
    finish_request(req, Status::unavailable("the client is closed"));
    return;
  }
  lws_client_connect_info ci = connect_info(address, req->url, req->target, req->host);
  ci.method = req->method.c_str();
  ci.ssl_connection |= LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
  ci.protocol = protocols_[0].name;
  ci.local_protocol_name = protocols_[0].name;
  ci.opaque_user_data = req;
  ci.pwsi = &req->wsi;
  if (lws_client_connect_via_info(&ci) == nullptr && requests_.count(req) != 0)
    finish_request(req, Status::unavailable("cannot connect to " + req->host));
}

void Transport::finish_request(Request* req, Result<HttpReply> result) {
  if (requests_.erase(req) == 0) return;
  if (req->wsi != nullptr) lws_set_opaque_user_data(req->wsi, nullptr);
  auto done = std::move(req->done);
  delete req;
  if (!done) return;
  // Outside lws's callback: the answer may start the next request at once.
  struct Later {
    uv_timer_t timer;
    std::function<void(Result<HttpReply>)> done;
    Result<HttpReply> result;
  };
  auto* later = new Later{{}, std::move(done), std::move(result)};
  later->timer.data = later;
  uv_timer_init(loop_, &later->timer);
  uv_timer_start(
      &later->timer,
      [](uv_timer_t* t) {
        auto* l = static_cast<Later*>(t->data);
        auto d = std::move(l->done);
        Result<HttpReply> r = std::move(l->result);
        uv_close(reinterpret_cast<uv_handle_t*>(t),
                 [](uv_handle_t* h) { delete static_cast<Later*>(h->data); });
        d(std::move(r));
      },
      0, 0);
}

Transport* Transport::owner_of(struct lws* wsi) {
  return static_cast<Transport*>(net::LwsContext::owner_of(wsi));
}

template <class Item, std::unordered_set<Item*> Transport::*live,
          int (Transport::*handle)(Item*, struct lws*, enum lws_callback_reasons, void*, size_t)>
int Transport::entry(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in, size_t len) {
  Transport* self = owner_of(wsi);
  auto* item = static_cast<Item*>(lws_get_opaque_user_data(wsi));
  if (self == nullptr || item == nullptr || (self->*live).count(item) == 0)
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  return (self->*handle)(item, wsi, reason, in, len);
}

int Transport::http_entry(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in,
                          size_t len) {
  if (reason == LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS) {
    // Without a CA file, trust what the system trusts.
    Transport* self = owner_of(wsi);
    if (self != nullptr && self->options_.ca_file.empty() && user != nullptr)
      SSL_CTX_set_default_verify_paths(static_cast<SSL_CTX*>(user));
    return 0;
  }
  return entry<Request, &Transport::requests_, &Transport::http_callback>(wsi, reason, user, in, len);
}

int Transport::http_callback(Request* req, struct lws* wsi, enum lws_callback_reasons reason, void* in,
                             size_t len) {
  switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
      req->wsi = nullptr;
      finish_request(req, Status::unavailable(req->host + ": " + connection_error(in, len)));
      return 0;
    }
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
      auto** p = static_cast<unsigned char**>(in);
      unsigned char* end = (*p) + len;
      for (const auto& [k, v] : req->headers) {
        std::string name = k + ":";
        if (lws_add_http_header_by_name(wsi, reinterpret_cast<const unsigned char*>(name.c_str()),
                                        reinterpret_cast<const unsigned char*>(v.data()),
                                        static_cast<int>(v.size()), p, end))
          return -1;
      }
      if (req->method != "GET" && req->method != "HEAD") {
        std::string n = std::to_string(req->body.size());
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                         reinterpret_cast<const unsigned char*>(n.c_str()),
                                         static_cast<int>(n.size()), p, end))
          return -1;
        if (!req->body.empty()) {
          lws_client_http_body_pending(wsi, 1);
          lws_callback_on_writable(wsi);
        }
      }
      return 0;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
      size_t left = req->body.size() - req->body_sent;
      if (left == 0) return 0;
      size_t n = std::min<size_t>(left, 4096);
      std::vector<unsigned char> buf(LWS_PRE + n);
      std::memcpy(buf.data() + LWS_PRE, req->body.data() + req->body_sent, n);
      bool last = n == left;
      if (lws_write(wsi, buf.data() + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
          static_cast<int>(n))
        return -1;
      req->body_sent += n;
      if (last)
        lws_client_http_body_pending(wsi, 0);
      else
        lws_callback_on_writable(wsi);
      return 0;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
      req->reply.status = static_cast<int>(lws_http_client_http_response(wsi));
      return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
      if (req->reply.body.size() + len > options_.max_body) {
        req->wsi = nullptr;
        finish_request(req, Status::resource_exhausted("response body over the limit"));
        return -1;
      }
      req->reply.body.append(static_cast<const char*>(in), len);
      return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
      char buffer[4096 + LWS_PRE];
      char* p = buffer + LWS_PRE;
      int n = static_cast<int>(sizeof buffer - LWS_PRE);
      if (lws_http_client_read(wsi, &p, &n) < 0) return -1;
      return 0;
    }
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP: {
      req->wsi = nullptr;
      HttpReply reply = std::move(req->reply);
      finish_request(req, std::move(reply));
      return -1;  // one request per connection
    }
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
      req->wsi = nullptr;
      if (req->reply.status != 0) {
        HttpReply reply = std::move(req->reply);
        finish_request(req, std::move(reply));
      } else {
        finish_request(req, Status::unavailable(req->host + ": connection closed"));
      }
      return 0;
    default:
      return lws_callback_http_dummy(wsi, reason, nullptr, in, len);
  }
}

// ---- WebSocket ----

void Transport::Socket::send(std::string text) {
  if (!open_ || closing_ || wsi_ == nullptr) return;
  out_.push_back(std::move(text));
  lws_callback_on_writable(wsi_);
}

void Transport::Socket::close() {
  if (closing_ || finished_) return;
  closing_ = true;
  if (wsi_ != nullptr) lws_callback_on_writable(wsi_);
}

Transport::Socket* Transport::connect_ws(const Url& url, std::string protocol) {
  auto* s = new Socket;
  s->owner_ = this;
  s->url_ = url;
  s->host_ = url.host_header();
  s->target_ = url.target();
  s->protocol_ = std::move(protocol);
  sockets_.insert(s);
  resolve(url.host, [this, s](std::string address, std::string error) {
    if (s->closing_) {
      finish_socket(s, 1006, "closed before it opened");
      return;
    }
    if (address.empty()) {
      finish_socket(s, 1006, s->url_.host + ": " + error);
      return;
    }
    start_socket(s, address);
  });
  return s;
}

void Transport::start_socket(Socket* s, const std::string& address) {
  if (lws_ == nullptr || lws_->get() == nullptr) {
    finish_socket(s, 1006, "the client is closed");
    return;
  }
  lws_client_connect_info ci = connect_info(address, s->url_, s->target_, s->host_);
  ci.protocol = s->protocol_.empty() ? nullptr : s->protocol_.c_str();
  ci.local_protocol_name = protocols_[1].name;
  ci.opaque_user_data = s;
  ci.pwsi = &s->wsi_;
  if (lws_client_connect_via_info(&ci) == nullptr && sockets_.count(s) != 0 && !s->finished_)
    finish_socket(s, 1006, "cannot connect to " + s->host_);
}

void Transport::finish_socket(Socket* s, int code, std::string reason) {
  if (s->finished_) return;
  s->finished_ = true;
  s->open_ = false;
  if (s->wsi_ != nullptr) lws_set_opaque_user_data(s->wsi_, nullptr);
  s->wsi_ = nullptr;
  auto cb = std::move(s->on_close);
  s->on_open = nullptr;
  s->on_message = nullptr;
  reap_socket(s);
  if (cb) cb(code, std::move(reason));
}

// Frees a finished socket on a later loop turn, so that a callback running
// inside it may still touch it.
void Transport::reap_socket(Socket* s) {
  sockets_.erase(s);
  auto* idle = new uv_idle_t;
  uv_idle_init(loop_, idle);
  idle->data = s;
  uv_idle_start(idle, [](uv_idle_t* h) {
    uv_idle_stop(h);
    delete static_cast<Socket*>(h->data);
    uv_close(reinterpret_cast<uv_handle_t*>(h),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
  });
}

int Transport::ws_callback(Socket* s, struct lws* wsi, enum lws_callback_reasons reason, void* in,
                           size_t len) {
  switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
      s->wsi_ = nullptr;
      finish_socket(s, 1006, s->host_ + ": " + connection_error(in, len));
      return 0;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      s->open_ = true;
      if (s->closing_) {
        lws_callback_on_writable(wsi);
        return 0;
      }
      if (s->on_open) s->on_open();
      if (!s->out_.empty() || s->closing_) lws_callback_on_writable(wsi);
      return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
      if (lws_frame_is_binary(wsi)) return 0;
      if (s->message_.size() + len > options_.max_message) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, nullptr, 0);
        return -1;
      }
      s->message_.append(static_cast<const char*>(in), len);
      if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        std::string msg = std::move(s->message_);
        s->message_.clear();
        if (s->on_message && !s->closing_) s->on_message(msg);
      }
      return 0;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
      if (s->closing_) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, nullptr, 0);
        return -1;
      }
      if (s->out_.empty()) return 0;
      std::string& text = s->out_.front();
      // lws masks the payload in place: write from a copy.
      std::vector<unsigned char> buf(LWS_PRE + text.size());
      std::memcpy(buf.data() + LWS_PRE, text.data(), text.size());
      int n = lws_write(wsi, buf.data() + LWS_PRE, text.size(), LWS_WRITE_TEXT);
      if (n < static_cast<int>(text.size())) return -1;
      s->out_.pop_front();
      if (!s->out_.empty()) lws_callback_on_writable(wsi);
      return 0;
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
      if (in != nullptr && len >= 2) {
        const auto* b = static_cast<const unsigned char*>(in);
        s->peer_code_ = (b[0] << 8) | b[1];
        s->peer_reason_ = std::string(static_cast<const char*>(in) + 2, len - 2);
      }
      return 0;
    case LWS_CALLBACK_CLIENT_CLOSED: {
      s->wsi_ = nullptr;
      int code = s->peer_code_ != 0 ? s->peer_code_ : (s->closing_ ? 1000 : 1006);
      finish_socket(s, code, s->peer_reason_);
      return 0;
    }
    default:
      return lws_callback_http_dummy(wsi, reason, nullptr, in, len);
  }
}

}  // namespace hut::client
