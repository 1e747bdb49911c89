#include "space/relay_keys.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "util/log.h"

namespace hut::space {

struct RelayKeys::Resolve {
  uv_getaddrinfo_t req;
  RelayKeys* owner = nullptr;
};

RelayKeys::RelayKeys(uv_loop_t* loop, TokenVerifier* verifier, Options options)
    : loop_(loop), verifier_(verifier), options_(std::move(options)) {
  // http://host[:port][/path]
  const std::string& u = options_.url;
  constexpr std::string_view kScheme = "http://";
  if (u.rfind(kScheme, 0) == 0) {
    std::string rest = u.substr(kScheme.size());
    size_t slash = rest.find('/');
    std::string hostport = rest.substr(0, slash);
    path_ = slash == std::string::npos ? "/" : rest.substr(slash);
    if (!hostport.empty() && hostport.front() == '[') {
      size_t close = hostport.find(']');
      host_ = hostport.substr(1, close == std::string::npos ? std::string::npos : close - 1);
      if (close != std::string::npos && close + 1 < hostport.size() && hostport[close + 1] == ':')
        port_ = std::atoi(hostport.c_str() + close + 2);
    } else {
      size_t colon = hostport.rfind(':');
      host_ = hostport.substr(0, colon);
      if (colon != std::string::npos) port_ = std::atoi(hostport.c_str() + colon + 1);
    }
    fetchable_ = !host_.empty() && port_ > 0 && port_ < 65536;
  } else if (!u.empty()) {
    log_printf(LogLevel::kWarn, "space", "auth.relay_jwks: only http:// URLs are fetched (%s)", u.c_str());
  }
}

RelayKeys::~RelayKeys() {
  if (resolving_ != nullptr) resolving_->owner = nullptr;
}

void RelayKeys::load_cache() {
  if (options_.issuer.empty() || options_.cache_path.empty()) return;
  std::ifstream in(options_.cache_path, std::ios::binary);
  if (!in) return;
  std::stringstream ss;
  ss << in.rdbuf();
  Result<KeySet> keys = KeySet::parse_jwks(ss.str());
  if (!keys.ok()) {
    log_printf(LogLevel::kWarn, "space", "%s: %s", options_.cache_path.c_str(),
               keys.status().to_string().c_str());
    return;
  }
  verifier_->trust_set(*keys, options_.issuer);
  log_printf(LogLevel::kInfo, "space", "trusting %zu relay keys from %s", keys->size(),
             options_.cache_path.c_str());
}

void RelayKeys::start(net::NetServer* net) {
  net_ = net;
  if (fetchable_ && !options_.issuer.empty()) fetch();
}

void RelayKeys::refresh(std::function<void()> done) {
  if (!fetchable_ || net_ == nullptr || options_.issuer.empty()) {
    done();
    return;
  }
  if (in_flight_) {
    waiters_.push_back(std::move(done));
    return;
  }
  uv_update_time(loop_);
  uint64_t now = uv_now(loop_);
  if (refreshed_once_ && now - last_refresh_ms_ < static_cast<uint64_t>(options_.refresh_interval_ms)) {
    done();
    return;
  }
  refreshed_once_ = true;
  last_refresh_ms_ = now;
  waiters_.push_back(std::move(done));
  fetch();
}

void RelayKeys::fetch() {
  in_flight_ = true;
  ++fetches_;
  auto* r = new Resolve;
  r->owner = this;
  r->req.data = r;
  resolving_ = r;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // Names are resolved on libuv's thread pool, never on the loop.
  int rc = uv_getaddrinfo(
      loop_, &r->req,
      [](uv_getaddrinfo_t* req, int status, struct addrinfo* res) {
        auto* r = static_cast<Resolve*>(req->data);
        RelayKeys* self = r->owner;
        std::string address;
        if (status == 0 && res != nullptr) {
          char buf[INET6_ADDRSTRLEN] = {0};
          if (res->ai_family == AF_INET)
            inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, buf, sizeof buf);
          else if (res->ai_family == AF_INET6)
            inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr, buf, sizeof buf);
          address = buf;
        }
        uv_freeaddrinfo(res);
        delete r;
        if (self == nullptr) return;
        self->resolving_ = nullptr;
        if (address.empty() || self->net_ == nullptr) {
          net::HttpGetResult fail;
          fail.error = "cannot resolve " + self->host_;
          self->fetched(fail);
          return;
        }
        std::string host_header = self->host_ + ":" + std::to_string(self->port_);
        self->net_->http_get(address, self->port_, self->path_, host_header,
                             [self](net::HttpGetResult result) { self->fetched(result); });
      },
      host_.c_str(), nullptr, &hints);
  if (rc != 0) {
    resolving_ = nullptr;
    delete r;
    net::HttpGetResult fail;
    fail.error = std::string("uv_getaddrinfo: ") + uv_strerror(rc);
    fetched(fail);
  }
}

void RelayKeys::fetched(const net::HttpGetResult& result) {
  if (result.status != 200) {
    log_printf(LogLevel::kWarn, "space", "fetching %s: %s", options_.url.c_str(),
               result.status ? ("HTTP " + std::to_string(result.status)).c_str() : result.error.c_str());
    finish();
    return;
  }
  Result<KeySet> keys = KeySet::parse_jwks(result.body);
  if (!keys.ok()) {
    log_printf(LogLevel::kWarn, "space", "%s: %s", options_.url.c_str(), keys.status().to_string().c_str());
    finish();
    return;
  }
  verifier_->trust_set(*keys, options_.issuer);
  log_printf(LogLevel::kInfo, "space", "trusting %zu relay keys from %s", keys->size(), options_.url.c_str());
  save(result.body);
  finish();
}

void RelayKeys::finish() {
  in_flight_ = false;
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters) w();
}

// Writes the copy off the loop: a temporary file, then an atomic rename.
void RelayKeys::save(const std::string& jwks) {
  if (options_.cache_path.empty()) return;
  struct Save {
    uv_work_t work;
    std::string path;
    std::string text;
    bool ok = false;
  };
  auto* s = new Save;
  s->work.data = s;
  s->path = options_.cache_path;
  s->text = jwks;
  int rc = uv_queue_work(
      loop_, &s->work,
      [](uv_work_t* w) {
        auto* s = static_cast<Save*>(w->data);
        std::string tmp = s->path + ".tmp";
        FILE* f = std::fopen(tmp.c_str(), "wb");
        if (f == nullptr) return;
        bool ok = std::fwrite(s->text.data(), 1, s->text.size(), f) == s->text.size();
        ok = std::fflush(f) == 0 && ok;
        ok = std::fclose(f) == 0 && ok;
        s->ok = ok && std::rename(tmp.c_str(), s->path.c_str()) == 0;
      },
      [](uv_work_t* w, int) {
        auto* s = static_cast<Save*>(w->data);
        if (!s->ok) log_printf(LogLevel::kWarn, "space", "cannot write %s", s->path.c_str());
        delete s;
      });
  if (rc != 0) delete s;
}

}  // namespace hut::space
