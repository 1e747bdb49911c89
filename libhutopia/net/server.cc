#include "net/server.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/random.h"

namespace hut::net {
namespace {

constexpr size_t kBufferSize = 65536;
// lws allocates a receive buffer of this size for every bus connection and
// hands a message over in pieces of at most this size (on_ws_receive puts
// them together). Every buffer costs at least the memory page it starts in,
// so 64 KiB buffers made about 4 KiB of each idle connection's RSS; 1 KiB
// ones cost about 1 KiB, at the price of more callbacks for large messages.
constexpr size_t kBusRxBufferSize = 1024;
constexpr int kCloseWriteTimeoutS = 5;
// The close opcode; lws_write() takes it though the enum leaves it out.
constexpr int kWriteClose = 4;
constexpr int kCloseAckTimeoutS = 3;
// At most this much output goes to lws in one write; what the kernel does
// not take of it, lws copies and finishes first.
constexpr size_t kWriteChunk = 256 * 1024;
constexpr size_t kKeepDirtyCapacity = 65536;

// No lws validity (idle ping and hang-up) timers: lws keeps every timer of a
// context in one sorted list, so arming one per connection made accepting N
// connections cost O(N^2). The bus keeps its own timers (the hello timeout).
const lws_retry_bo_t kNoIdleChecks = {};

// The callback reasons of an HTTP exchange, on either listener.
bool is_http_reason(enum lws_callback_reasons reason) {
  switch (reason) {
    case LWS_CALLBACK_HTTP:
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    case LWS_CALLBACK_HTTP_WRITEABLE:
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
      return true;
    default:
      return false;
  }
}

uint64_t now_ms(uv_loop_t* loop) {
  uv_update_time(loop);
  return uv_now(loop);
}

void lws_log_emit(int level, const char* line) {
  std::string_view text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  log_write(level == LLL_ERR ? LogLevel::kError : LogLevel::kWarn, "lws", text);
}

void setup_lws_logging() {
  static std::once_flag once;
  std::call_once(once, [] { lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit); });
}

std::string copy_header(struct lws* wsi, enum lws_token_indexes token) {
  int n = lws_hdr_total_length(wsi, token);
  if (n <= 0) return {};
  std::string out(static_cast<size_t>(n) + 1, '\0');
  int got = lws_hdr_copy(wsi, out.data(), n + 1, token);
  if (got < 0) return {};
  out.resize(static_cast<size_t>(got));
  return out;
}

std::string copy_custom_header(struct lws* wsi, const char* name_with_colon) {
  int nlen = static_cast<int>(std::strlen(name_with_colon));
  int n = lws_hdr_custom_length(wsi, name_with_colon, nlen);
  if (n <= 0) return {};
  std::string out(static_cast<size_t>(n) + 1, '\0');
  int got = lws_hdr_custom_copy(wsi, out.data(), n + 1, name_with_colon, nlen);
  if (got < 0) return {};
  out.resize(static_cast<size_t>(got));
  return out;
}

std::string copy_query(struct lws* wsi, std::vector<std::pair<std::string, std::string>>* params) {
  std::string out;
  char buf[4096];
  for (int i = 0; i < 64; ++i) {
    int n = lws_hdr_copy_fragment(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_URI_ARGS, i);
    if (n < 0) break;
    if (!out.empty()) out += '&';
    std::string_view piece(buf, static_cast<size_t>(n));
    out.append(piece);
    size_t eq = piece.find('=');
    if (eq == std::string_view::npos)
      params->emplace_back(std::string(piece), std::string());
    else
      params->emplace_back(std::string(piece.substr(0, eq)), std::string(piece.substr(eq + 1)));
  }
  return out;
}

const char* method_name(int m) {
  switch (m) {
    case LWSHUMETH_GET:
      return "GET";
    case LWSHUMETH_POST:
      return "POST";
    case LWSHUMETH_OPTIONS:
      return "OPTIONS";
    case LWSHUMETH_PUT:
      return "PUT";
    case LWSHUMETH_PATCH:
      return "PATCH";
    case LWSHUMETH_DELETE:
      return "DELETE";
    case LWSHUMETH_CONNECT:
      return "CONNECT";
    case LWSHUMETH_HEAD:
      return "HEAD";
    default:
      return "";
  }
}

void collect_headers(struct lws* wsi, std::vector<std::pair<std::string, std::string>>* out) {
  for (int t = 0; t < static_cast<int>(WSI_TOKEN_COUNT); ++t) {
    auto token = static_cast<enum lws_token_indexes>(t);
    const unsigned char* name = lws_token_to_string(token);
    if (name == nullptr) continue;
    std::string n(reinterpret_cast<const char*>(name));
    if (n.empty() || n.back() != ':' || n.front() == ':') continue;
    if (lws_hdr_total_length(wsi, token) <= 0) continue;
    n.pop_back();
    for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out->emplace_back(std::move(n), copy_header(wsi, token));
  }
  static const char* const kCustom[] = {
      "x-request-id:", "x-forwarded-for:", "x-hutopia-plugin:", "x-file-name:"};
  for (const char* name : kCustom) {
    std::string v = copy_custom_header(wsi, name);
    if (!v.empty()) out->emplace_back(std::string(name, std::strlen(name) - 1), std::move(v));
  }
}

}  // namespace

std::string_view HttpExchange::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

Result<std::shared_ptr<FileBody>> FileBody::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::not_found("cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::not_found(path + " is not a regular file");
  }
  return std::shared_ptr<FileBody>(new FileBody(fd, static_cast<uint64_t>(st.st_size)));
}

FileBody::~FileBody() { ::close(fd_); }

void HttpExchange::drop_spool() {
  if (spool_fd_ >= 0) {
    ::close(spool_fd_);
    spool_fd_ = -1;
  }
  if (body_file.empty()) return;
  // Only the file this exchange made: once the handler renamed it away, the
  // name may belong to another upload.
  struct stat st;
  if (::stat(body_file.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_dev) == spool_dev_ &&
      static_cast<uint64_t>(st.st_ino) == spool_ino_)
    ::unlink(body_file.c_str());
  body_file.clear();
}

void HttpExchange::respond(HttpResponse response, std::shared_ptr<FileBody> file) {
  if (responded_) return;
  responded_ = true;
  bool has_id = false;
  for (const auto& [k, v] : response.headers) has_id = has_id || k == "x-request-id";
  if (!has_id && !request_id.empty()) response.headers.emplace_back("x-request-id", request_id);
  // The handler is done with a body file once it answers: gone before the
  // client reads the answer.
  drop_spool();
  // wsi_ is cleared when the connection (or the NetServer) goes: then the
  // answer has nowhere to go, and nothing is counted or logged.
  if (wsi_ == nullptr) return;
  if (server_ != nullptr) server_->http_answered(*this, response.status);
  response_ = std::move(response);
  response_file_ = std::move(file);
  lws_callback_on_writable(wsi_);
}

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
  out_.append(reinterpret_cast<const char*>(header), header_len);
  for (std::string_view p : pieces) out_.append(p.data(), p.size());
  queued_bytes_ += header_len + n;
  server_->counters_.frames_out++;
  server_->counters_.bytes_out += n;
  if (queued_bytes_ > server_->options_.backpressure) {
    // Nobody waits for this reader: drop what it did not take and close.
    std::string().swap(out_);
    out_head_ = 0;
    queued_bytes_ = 0;
    server_->counters_.closed_slow++;
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

void WsConnection::set_timer_ms(int64_t ms) {
  if (wsi_ == nullptr) return;
  lws_set_timer_usecs(wsi_, ms < 0 ? -1 : static_cast<lws_usec_t>(ms) * 1000);
}

NetServer::NetServer(uv_loop_t* loop, NetOptions options, NetHandler* handler)
    : loop_(loop), options_(std::move(options)), handler_(handler) {}

Result<std::unique_ptr<NetServer>> NetServer::create(uv_loop_t* loop, NetOptions options,
                                                     NetHandler* handler) {
  std::unique_ptr<NetServer> server(new NetServer(loop, std::move(options), handler));
  Status st = server->init();
  if (!st.ok()) return st;
  return server;
}

Status NetServer::init() {
  setup_lws_logging();
  struct lws_protocols* public_protocols = public_protocols_;
  struct lws_protocols* admin_protocols = admin_protocols_;
  // protocols[0] is the default: an upgrade that offers no subprotocol binds
  // to it, and plain HTTP requests go to its callback as well.
  public_protocols[0] = {options_.websocket ? options_.ws_protocol.c_str() : "hutopia-http",
                         &NetServer::public_callback,
                         0,
                         kBusRxBufferSize,
                         0,
                         nullptr,
                         kBufferSize};
  public_protocols[1] = {nullptr, nullptr, 0, 0, 0, nullptr, 0};
  admin_protocols[0] = {"hutopia-admin", &NetServer::admin_callback, 0, kBufferSize, 0, nullptr, kBufferSize};
  admin_protocols[1] = {nullptr, nullptr, 0, 0, 0, nullptr, 0};
  client_protocols_[0] = {"hutopia-http-client", &NetServer::client_callback, 0, kBufferSize, 0, nullptr, 0};
  client_protocols_[1] = {nullptr, nullptr, 0, 0, 0, nullptr, 0};

  struct lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  void* loops[1] = {loop_};
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
                 LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_VALIDATE_UTF8;
  info.foreign_loops = loops;
  anchor_ = new Anchor;
  anchor_->server = this;
  info.pcontext = &anchor_->context;
  info.user = anchor_;
  info.pt_serv_buf_size = kBufferSize;
  info.count_threads = 1;
  info.port = CONTEXT_PORT_NO_LISTEN;
  bool public_tls = !options_.public_tls_cert.empty() && !options_.public_tls_key.empty();
  if (public_tls) info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  anchor_->context = lws_create_context(&info);
  if (anchor_->context == nullptr)
    return Status::unavailable(
        "cannot create the libwebsockets context (is libwebsockets-evlib-uv installed?)");

  auto make_vhost = [&](const char* name, const std::string& host, int port,
                        const struct lws_protocols* protocols, struct lws_vhost** out) -> Status {
    struct lws_context_creation_info vi;
    std::memset(&vi, 0, sizeof vi);
    vi.vhost_name = name;
    vi.port = port;
    bool any = host.empty() || host == "0.0.0.0" || host == "*" || host == "::";
    vi.iface = any ? nullptr : host.c_str();
    vi.protocols = protocols;
    vi.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (host.find(':') == std::string::npos && !any) vi.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    vi.keepalive_timeout = 30;
    vi.timeout_secs = 30;
    vi.user = this;
    vi.retry_and_idle_policy = &kNoIdleChecks;
    if (protocols == public_protocols && public_tls) {
      vi.ssl_cert_filepath = options_.public_tls_cert.c_str();
      vi.ssl_private_key_filepath = options_.public_tls_key.c_str();
      vi.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;  // lws reads it per vhost as well
    }
    *out = lws_create_vhost(context(), &vi);
    if (*out == nullptr) {
      return Status::unavailable("cannot listen on " + host + ":" + std::to_string(port) +
                                 " (address in use or not available)");
    }
    return Status();
  };
  HUT_RETURN_IF_ERROR(
      make_vhost("public", options_.public_host, options_.public_port, public_protocols, &public_vhost_));
  public_port_ = lws_get_vhost_listen_port(public_vhost_);
  if (options_.admin_enabled) {
    HUT_RETURN_IF_ERROR(
        make_vhost("admin", options_.admin_host, options_.admin_port, admin_protocols, &admin_vhost_));
    admin_port_ = lws_get_vhost_listen_port(admin_vhost_);
  }
  // A vhost without a listener for the space's own outgoing HTTP requests.
  struct lws_context_creation_info ci;
  std::memset(&ci, 0, sizeof ci);
  ci.vhost_name = "client";
  ci.port = CONTEXT_PORT_NO_LISTEN;
  ci.protocols = client_protocols_;
  ci.user = this;
  client_vhost_ = lws_create_vhost(context(), &ci);
  if (client_vhost_ == nullptr) return Status::unavailable("cannot create the client vhost");

  flusher_ = new Flusher;
  flusher_->server = this;
  uv_check_init(loop_, &flusher_->check);
  uv_idle_init(loop_, &flusher_->idle);
  flusher_->check.data = flusher_;
  flusher_->idle.data = flusher_;
  flusher_->open_handles = 2;
  // Neither handle keeps the loop alive on its own.
  uv_unref(reinterpret_cast<uv_handle_t*>(&flusher_->check));
  uv_unref(reinterpret_cast<uv_handle_t*>(&flusher_->idle));
  uv_check_start(&flusher_->check, [](uv_check_t* h) {
    auto* f = static_cast<Flusher*>(h->data);
    if (f->server != nullptr) f->server->flush_dirty();
  });
  return Status();
}

void NetServer::http_get(const std::string& address, int port, const std::string& path,
                         const std::string& host_header, std::function<void(HttpGetResult)> done) {
  auto get = std::make_unique<ClientGet>();
  get->done = std::move(done);
  get->host = host_header;
  ClientGet* raw = get.get();
  if (context() == nullptr || shutting_down_ || client_vhost_ == nullptr) {
    raw->result.error = "the space is shutting down";
    auto d = std::move(raw->done);
    d(raw->result);
    return;
  }
  gets_[raw] = std::move(get);
  struct lws_client_connect_info ci;
  std::memset(&ci, 0, sizeof ci);
  ci.context = context();
  ci.vhost = client_vhost_;
  ci.address = address.c_str();
  ci.port = port;
  ci.path = path.c_str();
  ci.host = raw->host.c_str();
  ci.origin = raw->host.c_str();
  ci.method = "GET";
  ci.protocol = client_protocols_[0].name;
  ci.local_protocol_name = client_protocols_[0].name;
  ci.opaque_user_data = raw;
  if (lws_client_connect_via_info(&ci) == nullptr) {
    // lws reports most failures through CLIENT_CONNECTION_ERROR already.
    if (gets_.count(raw) != 0) {
      raw->result.error = "cannot connect to " + address + ":" + std::to_string(port);
      finish_get(raw);
    }
  }
}

void NetServer::finish_get(ClientGet* get) {
  auto it = gets_.find(get);
  if (it == gets_.end()) return;
  std::unique_ptr<ClientGet> owned = std::move(it->second);
  gets_.erase(it);
  if (owned->done) owned->done(std::move(owned->result));
}

int NetServer::client_callback(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in,
                               size_t len) {
  NetServer* self = from_wsi(wsi);
  auto* get = static_cast<ClientGet*>(lws_get_opaque_user_data(wsi));
  if (self == nullptr || get == nullptr || self->gets_.count(get) == 0)
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
      get->result.status = 0;
      get->result.error = in ? std::string(static_cast<const char*>(in), len) : "connection error";
      if (get->result.error.empty()) get->result.error = "connection error";
      lws_set_opaque_user_data(wsi, nullptr);
      self->finish_get(get);
      return 0;
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
      get->result.status = static_cast<int>(lws_http_client_http_response(wsi));
      return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
      if (get->result.body.size() + len > self->options_.max_body) {
        get->result.status = 0;
        get->result.error = "response body over the limit";
        lws_set_opaque_user_data(wsi, nullptr);
        self->finish_get(get);
        return -1;
      }
      get->result.body.append(static_cast<const char*>(in), len);
      return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
      char buffer[4096 + LWS_PRE];
      char* p = buffer + LWS_PRE;
      int n = static_cast<int>(sizeof buffer - LWS_PRE);
      if (lws_http_client_read(wsi, &p, &n) < 0) return -1;
      return 0;
    }
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
      lws_set_opaque_user_data(wsi, nullptr);
      self->finish_get(get);
      return -1;  // one request per connection
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
      // A response without a length ends with the connection.
      if (get->result.status == 0 && get->result.error.empty())
        get->result.error = "the connection closed early";
      lws_set_opaque_user_data(wsi, nullptr);
      self->finish_get(get);
      return 0;
    default:
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

NetServer* NetServer::from_wsi(struct lws* wsi) {
  struct lws_context* ctx = lws_get_context(wsi);
  auto* anchor = ctx ? static_cast<Anchor*>(lws_context_user(ctx)) : nullptr;
  return anchor ? anchor->server : nullptr;
}

namespace {

// Finishes the teardown of a context whose first phase ran: after a few loop
// turns (lws's libuv handles are closed by then) the second
// lws_context_destroy() frees it, and with it the evlib module whose code
// those close callbacks run in.
template <typename AnchorT>
void reap_later(uv_loop_t* loop, AnchorT* anchor) {
  struct Reaper {
    uv_timer_t timer;
    AnchorT* anchor;
    int turns = 0;
  };
  auto* r = new Reaper;
  r->anchor = anchor;
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  uv_timer_start(
      &r->timer,
      [](uv_timer_t* t) {
        auto* r = static_cast<Reaper*>(t->data);
        if (++r->turns < 3) return;
        if (r->anchor->context != nullptr) lws_context_destroy(r->anchor->context);
        uv_timer_stop(t);
        uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) {
          auto* r = static_cast<Reaper*>(h->data);
          delete r->anchor;
          delete r;
        });
      },
      10, 10);
}

}  // namespace

NetServer::~NetServer() {
  close_flusher();
  for (auto& [raw, get] : gets_) get->done = nullptr;
  for (auto& [wsi, ex] : http_) ex->wsi_ = nullptr;
  http_.clear();
  for (auto& [wsi, conn] : conns_) conn->wsi_ = nullptr;
  if (shutdown_timer_ != nullptr) {
    shutdown_timer_->data = nullptr;
    uv_timer_stop(shutdown_timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(shutdown_timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    shutdown_timer_ = nullptr;
  }
  if (anchor_ == nullptr) return;
  // From here on, lws's callbacks find no server.
  anchor_->server = nullptr;
  if (anchor_->context == nullptr) {
    delete anchor_;
  } else {
    if (!context_destroy_started_) lws_context_destroy(anchor_->context);
    reap_later(loop_, anchor_);
  }
  anchor_ = nullptr;
  conns_.clear();
}

void NetServer::for_each_connection(const std::function<void(WsConnection*)>& fn) {
  std::vector<WsConnection*> all;
  all.reserve(conns_.size());
  for (auto& [wsi, conn] : conns_) all.push_back(conn.get());
  for (WsConnection* c : all) fn(c);
}

int NetServer::public_callback(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in,
                               size_t len) {
  NetServer* self = from_wsi(wsi);
  if (self == nullptr) return lws_callback_http_dummy(wsi, reason, user, in, len);
  if (is_http_reason(reason)) return self->http_callback(Listener::kPublic, wsi, reason, in, len);
  switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_TIMER:
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
      return self->ws_callback(wsi, reason, in, len);
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
      // `wsi` is the listener here; the new socket has no wsi yet.
      if (self->sockets_.size() >= self->options_.max_connections) {
        self->counters_.refused_connections++;
        return 1;
      }
      return 0;
    case LWS_CALLBACK_WSI_CREATE:
      self->sockets_.insert(wsi);
      return 0;
    case LWS_CALLBACK_WSI_DESTROY:
      // Upgrades that never reached ESTABLISHED end here too.
      self->sockets_.erase(wsi);
      self->pending_auth_.erase(wsi);
      self->http_closed(wsi);
      return 0;
    default:
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

int NetServer::admin_callback(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in,
                              size_t len) {
  NetServer* self = from_wsi(wsi);
  if (self == nullptr) return lws_callback_http_dummy(wsi, reason, user, in, len);
  if (is_http_reason(reason)) return self->http_callback(Listener::kAdmin, wsi, reason, in, len);
  switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
      return 1;  // no WebSocket on the admin listener
    default:
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

int NetServer::http_callback(Listener listener, struct lws* wsi, enum lws_callback_reasons reason, void* in,
                             size_t len) {
  switch (reason) {
    case LWS_CALLBACK_HTTP:
      return on_http_request(listener, wsi, static_cast<const char*>(in));
    case LWS_CALLBACK_HTTP_BODY: {
      auto it = http_.find(wsi);
      if (it == http_.end() || it->second->responded_) return 0;
      HttpExchange& ex = *it->second;
      LogRequestScope scope(ex.request_id);
      if (ex.spool_fd_ >= 0) return spool_body(ex, static_cast<const char*>(in), len);
      if (ex.body.size() + len > options_.max_body) {
        ex.close_after_ = true;
        ex.respond({413,
                    "application/json",
                    {},
                    R"({"error":{"code":"too_large","message":"request body over the limit"}})"});
        return 0;
      }
      ex.body.append(static_cast<const char*>(in), len);
      return 0;
    }
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
      // lws also completes a POST that announced no body; that request was
      // dispatched already (a handler answering later must not get it twice).
      auto it = http_.find(wsi);
      if (it == http_.end() || it->second->responded_ || it->second->body_expected_ == 0) return 0;
      std::shared_ptr<HttpExchange> ex = it->second;
      if (ex->spool_fd_ >= 0) {
        ::close(ex->spool_fd_);
        ex->spool_fd_ = -1;
      }
      LogRequestScope scope(ex->request_id);
      handler_->on_http(ex);
      return 0;
    }
    case LWS_CALLBACK_HTTP_WRITEABLE:
      return write_http(wsi);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
      http_closed(wsi);
      return 0;
    default:
      return 0;
  }
}

void NetServer::http_answered(const HttpExchange& ex, int status) {
  if (status >= 100 && status <= 599) counters_.http_responses[status / 100 - 1]++;
  uv_update_time(loop_);
  std::string ms = std::to_string(uv_now(loop_) - ex.start_ms);
  std::string code = std::to_string(status);
  // The path only: a query string may carry what the client meant for the
  // handler alone.
  log_fields(status >= 500 ? LogLevel::kWarn : LogLevel::kInfo, "http", "request",
             {{"request_id", ex.request_id},
              {"listener", ex.listener == Listener::kAdmin ? "admin" : "public"},
              {"method", ex.method},
              {"path", ex.path},
              {"status", code},
              {"ms", ms},
              {"peer", ex.peer}});
}

int NetServer::on_http_request(Listener listener, struct lws* wsi, const char* uri) {
  counters_.http_requests++;
  auto ex = std::make_shared<HttpExchange>();
  ex->listener = listener;
  ex->server_ = this;
  ex->wsi_ = wsi;
  char* uri_ptr = nullptr;
  int uri_len = 0;
  int m = lws_http_get_uri_and_method(wsi, &uri_ptr, &uri_len);
  ex->method = method_name(m);
  ex->path = uri ? uri : "";
  ex->query = copy_query(wsi, &ex->query_params);
  collect_headers(wsi, &ex->headers);
  char peer[128] = {0};
  if (lws_get_peer_simple(wsi, peer, sizeof peer)) ex->peer = peer;
  uv_update_time(loop_);
  ex->start_ms = uv_now(loop_);
  std::string_view given = ex->header("x-request-id");
  bool usable = !given.empty() && given.size() <= 64 && std::all_of(given.begin(), given.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
  ex->request_id = usable ? std::string(given) : random_hex(16);
  forget_http(wsi);  // a keep-alive connection's earlier exchange
  http_[wsi] = ex;

  if (shutting_down_) {
    ex->respond(
        {503, "application/json", {}, R"({"error":{"code":"unavailable","message":"shutting down"}})"});
    return 0;
  }
  std::string cl = copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
  size_t content_length = cl.empty() ? 0 : static_cast<size_t>(std::strtoull(cl.c_str(), nullptr, 10));
  bool takes_body = m != LWSHUMETH_GET && m != LWSHUMETH_HEAD;
  BodyPlan plan;
  if (takes_body && listener == Listener::kPublic) plan = handler_->body_plan(*ex);
  bool spool = !plan.spool_dir.empty() && plan.limit > 0;
  if (content_length > (spool ? plan.limit : options_.max_body)) {
    ex->close_after_ = true;
    ex->respond({413,
                 "application/json",
                 {},
                 R"({"error":{"code":"too_large","message":"request body over the limit"}})"});
    return 0;
  }
  if (!copy_header(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING).empty()) {
    // lws 4.1 does not complete chunked request bodies: ask for a length.
    ex->close_after_ = true;
    ex->respond({411,
                 "application/json",
                 {},
                 R"({"error":{"code":"bad_request","message":"send the body with a Content-Length"}})"});
    return 0;
  }
  if (content_length > 0 && takes_body && spool) return start_spool(ex, plan, content_length);
  if (content_length > 0 && takes_body) {
    if (body_bytes_ + content_length > options_.max_body_total) {
      return refuse_busy(*ex);
    }
    body_bytes_ += content_length;
    ex->body_budget_ = content_length;
    ex->body_expected_ = content_length;
    ex->body.reserve(content_length);
    return 0;  // LWS_CALLBACK_HTTP_BODY_COMPLETION dispatches it
  }
  LogRequestScope scope(ex->request_id);
  handler_->on_http(ex);
  return 0;
}

// 503 to a body that would take the bodies in flight (buffered or written
// to disk) past their total; the connection closes after the answer.
int NetServer::refuse_busy(HttpExchange& ex) {
  counters_.refused_bodies++;
  ex.close_after_ = true;
  ex.respond({503,
              "application/json",
              {{"retry-after", "5"}},
              R"({"error":{"code":"unavailable","message":"too many uploads at once; try again later"}})"});
  return 0;
}

int NetServer::start_spool(const std::shared_ptr<HttpExchange>& ex, const BodyPlan& plan,
                           size_t content_length) {
  auto refuse = [&](int status, const char* body) {
    ex->close_after_ = true;
    ex->respond({status, "application/json", {}, body});
    return 0;
  };
  if (spool_bytes_ + content_length > options_.max_spool_total) {
    return refuse_busy(*ex);
  }
  if (::mkdir(plan.spool_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    log_write(LogLevel::kError, "net", "cannot create " + plan.spool_dir + ": " + std::strerror(errno));
    return refuse(500, R"({"error":{"code":"internal","message":"cannot store the body"}})");
  }
  std::string path = plan.spool_dir + "/body-XXXXXX";
  int fd = mkostemp(path.data(), O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    log_write(LogLevel::kError, "net",
              "cannot create a file in " + plan.spool_dir + ": " + std::strerror(errno));
    if (fd >= 0) {
      ::close(fd);
      ::unlink(path.c_str());
    }
    return refuse(500, R"({"error":{"code":"internal","message":"cannot store the body"}})");
  }
  ex->spool_fd_ = fd;
  ex->spool_dev_ = static_cast<uint64_t>(st.st_dev);
  ex->spool_ino_ = static_cast<uint64_t>(st.st_ino);
  ex->body_file = std::move(path);
  ex->body_file_size = 0;
  ex->spool_limit_ = plan.limit;
  ex->spool_budget_ = content_length;
  spool_bytes_ += content_length;
  ex->body_expected_ = content_length;
  return 0;  // the body goes to the file (spool_body); BODY_COMPLETION dispatches it
}

int NetServer::spool_body(HttpExchange& ex, const char* in, size_t len) {
  if (ex.body_file_size + len > ex.spool_limit_) {
    ex.drop_spool();
    ex.close_after_ = true;
    ex.respond({413,
                "application/json",
                {},
                R"({"error":{"code":"too_large","message":"request body over the limit"}})"});
    return 0;
  }
  // Local disk: the write lands in the page cache and returns.
  while (len > 0) {
    ssize_t w = ::write(ex.spool_fd_, in, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      log_write(LogLevel::kError, "net", std::string("cannot write a request body: ") + std::strerror(errno));
      ex.drop_spool();
      ex.close_after_ = true;
      ex.respond({500,
                  "application/json",
                  {},
                  R"({"error":{"code":"internal","message":"cannot store the body"}})"});
      return 0;
    }
    in += w;
    len -= static_cast<size_t>(w);
    ex.body_file_size += static_cast<uint64_t>(w);
  }
  return 0;
}

int NetServer::write_http(struct lws* wsi) {
  auto it = http_.find(wsi);
  if (it == http_.end() || !it->second->responded_) return 0;
  std::shared_ptr<HttpExchange> ex = it->second;
  HttpResponse& r = ex->response_;
  if (!ex->headers_sent_) {
    size_t extra = 256 + r.content_type.size();
    for (const auto& [k, v] : r.headers) extra += k.size() + v.size() + 8;
    std::vector<unsigned char> buf(LWS_PRE + 1024 + extra);
    unsigned char* start = buf.data() + LWS_PRE;
    unsigned char* p = start;
    unsigned char* end = buf.data() + buf.size() - 1;
    const char* ctype = r.content_type.empty() ? nullptr : r.content_type.c_str();
    uint64_t length = ex->response_file_ ? ex->response_file_->size() : r.body.size();
    if (lws_add_http_common_headers(wsi, static_cast<unsigned int>(r.status), ctype, length, &p, end))
      return -1;
    for (const auto& [k, v] : r.headers) {
      std::string name = k + ":";
      if (lws_add_http_header_by_name(wsi, reinterpret_cast<const unsigned char*>(name.c_str()),
                                      reinterpret_cast<const unsigned char*>(v.data()),
                                      static_cast<int>(v.size()), &p, end))
        return -1;
    }
    if (ex->close_after_) {
      static const char kClose[] = "close";
      if (lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                       reinterpret_cast<const unsigned char*>(kClose), 5, &p, end))
        return -1;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end)) return -1;
    ex->headers_sent_ = true;
    if (length == 0 || ex->method == "HEAD") {
      forget_http(wsi);
      if (ex->close_after_) return -1;
      return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    lws_callback_on_writable(wsi);
    return 0;
  }
  size_t remaining =
      (ex->response_file_ ? static_cast<size_t>(ex->response_file_->size()) : r.body.size()) - ex->sent_;
  size_t n = std::min(remaining, kBufferSize);
  bool final = n == remaining;
  // One buffer for every response piece: no allocation per piece.
  std::vector<unsigned char>& buf = write_buf_;
  if (buf.size() < LWS_PRE + n) buf.resize(LWS_PRE + kBufferSize);
  if (ex->response_file_) {
    // A piece at a time, as the connection takes it: the file is never whole in memory.
    size_t got = 0;
    while (got < n) {
      ssize_t k = ::pread(ex->response_file_->fd(), buf.data() + LWS_PRE + got, n - got,
                          static_cast<off_t>(ex->sent_ + got));
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) return -1;  // the file shrank or broke: the length sent is wrong, close
      got += static_cast<size_t>(k);
    }
  } else {
    std::memcpy(buf.data() + LWS_PRE, r.body.data() + ex->sent_, n);
  }
  int w = lws_write(wsi, buf.data() + LWS_PRE, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
  if (w < static_cast<int>(n)) return -1;
  ex->sent_ += n;
  if (!final) {
    lws_callback_on_writable(wsi);
    return 0;
  }
  forget_http(wsi);
  if (ex->close_after_) return -1;
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}

void NetServer::http_closed(struct lws* wsi) { forget_http(wsi); }

void NetServer::forget_http(struct lws* wsi) {
  auto it = http_.find(wsi);
  if (it == http_.end()) return;
  HttpExchange& ex = *it->second;
  ex.wsi_ = nullptr;
  body_bytes_ -= std::min(body_bytes_, ex.body_budget_);
  ex.body_budget_ = 0;
  spool_bytes_ -= std::min(spool_bytes_, ex.spool_budget_);
  ex.spool_budget_ = 0;
  ex.drop_spool();
  http_.erase(it);
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
      char peer[128] = {0};
      if (lws_get_peer_simple(wsi, peer, sizeof peer)) conn->peer_ = peer;
      WsConnection* raw = conn.get();
      conns_[wsi] = std::move(conn);
      // The hot callbacks find the connection here, without a hash lookup;
      // CLOSED clears it before the connection goes.
      lws_set_opaque_user_data(wsi, raw);
      counters_.connections_total++;
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
    case LWS_CALLBACK_TIMER: {
      auto it = conns_.find(wsi);
      if (it == conns_.end()) return 0;
      WsConnection* conn = it->second.get();
      if (conn->close_code_ == 0) handler_->on_ws_timer(conn);
      return finish_close_if_due(conn);
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
  counters_.bytes_in += len;
  if (!conn->in_message_) {
    conn->in_message_ = true;
    conn->message_.clear();
    if (lws_frame_is_binary(conn->wsi_)) {
      conn->close(LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "binary frames are not accepted");
      return finish_close_if_due(conn);
    }
  }
  if (conn->message_.size() + len > options_.max_message) {
    counters_.closed_too_big++;
    conn->message_.clear();
    conn->message_.shrink_to_fit();
    conn->close(LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message over the size limit");
    return finish_close_if_due(conn);
  }
  bool complete = lws_is_final_fragment(conn->wsi_) && lws_remaining_packet_payload(conn->wsi_) == 0;
  if (complete && conn->message_.empty()) {
    // A message that arrived in one piece is handed over from lws's buffer.
    conn->in_message_ = false;
    counters_.frames_in++;
    handler_->on_ws_message(conn, std::string_view(in, len));
    return finish_close_if_due(conn);
  }
  conn->message_.append(in, len);
  if (!complete) return 0;
  conn->in_message_ = false;
  counters_.frames_in++;
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
    // Released, not kept: a buffer kept by every connection that ever got
    // a frame would be most of an idle connection's memory.
    std::string().swap(conn->out_);
    conn->out_head_ = 0;
  } else {
    lws_callback_on_writable(conn->wsi_);
  }
  return 0;
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

void NetServer::shutdown(int grace_ms, std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  shutdown_done_ = std::move(done);
  for_each_connection([](WsConnection* c) { c->close(LWS_CLOSE_STATUS_GOINGAWAY, "space shutting down"); });
  uint64_t now = now_ms(loop_);
  shutdown_deadline_ms_ = now + static_cast<uint64_t>(std::max(grace_ms, 0));
  shutdown_timer_ = new uv_timer_t;
  uv_timer_init(loop_, shutdown_timer_);
  shutdown_timer_->data = this;
  uv_timer_start(
      shutdown_timer_,
      [](uv_timer_t* t) {
        if (t->data != nullptr) static_cast<NetServer*>(t->data)->shutdown_tick();
      },
      10, 10);
}

void NetServer::shutdown_tick() {
  uint64_t now = now_ms(loop_);
  if (!context_destroy_started_) {
    if (!conns_.empty() && now < shutdown_deadline_ms_) return;
    context_destroy_started_ = true;
    destroy_deadline_ms_ = now + 50;
    for (auto& [wsi, ex] : http_) ex->wsi_ = nullptr;
    http_.clear();
    body_bytes_ = 0;
    spool_bytes_ = 0;
    // First phase: lws closes its sockets and uv handles asynchronously.
    lws_context_destroy(context());
    return;
  }
  // Second phase: by now the close callbacks of lws's uv handles ran (they
  // run on the loop turn after the first phase), so the context can go.
  if (now < destroy_deadline_ms_) return;
  if (context() != nullptr) lws_context_destroy(context());
  if (context() != nullptr) log_write(LogLevel::kWarn, "net", "the lws context outlived its second destroy");
  uv_timer_stop(shutdown_timer_);
  shutdown_timer_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(shutdown_timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  shutdown_timer_ = nullptr;
  close_flusher();
  auto done = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  if (done) done();
}

}  // namespace hut::net
