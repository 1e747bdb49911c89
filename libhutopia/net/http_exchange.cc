// The HTTP exchange of the network layer: a request assembled from lws's
// callbacks (headers, a body in memory or spooled to a file, the limits on
// both) and its response written out piece by piece.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/server.h"
#include "util/log.h"
#include "util/random.h"
#include "util/table.h"

namespace hut::net {
namespace {

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

constexpr std::pair<int, const char*> kMethods[] = {
    {LWSHUMETH_GET, "GET"},         {LWSHUMETH_POST, "POST"},   {LWSHUMETH_OPTIONS, "OPTIONS"},
    {LWSHUMETH_PUT, "PUT"},         {LWSHUMETH_PATCH, "PATCH"}, {LWSHUMETH_DELETE, "DELETE"},
    {LWSHUMETH_CONNECT, "CONNECT"}, {LWSHUMETH_HEAD, "HEAD"},
};

const char* method_name(int m) { return util::second_of(kMethods, m).value_or(""); }

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
  if (status >= 100 && status <= 599) http_responses_[status / 100 - 1]++;
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
  counters_[Count::kHttpRequests]++;
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
  counters_[Count::kRefusedBodies]++;
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

}  // namespace hut::net
