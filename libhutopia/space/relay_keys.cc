#include "space/relay_keys.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>

#include "util/file.h"
#include "util/log.h"

namespace hut::space {
namespace {

bool is_loopback_address(const std::string& ip) {
  in_addr a4{};
  if (inet_pton(AF_INET, ip.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (inet_pton(AF_INET6, ip.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) return a6.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace

// One transfer: made on the loop, run on a worker thread, finished on the
// loop. `owner` is cleared (on the loop) when the RelayKeys stops or goes;
// `cancelled` tells the worker to give up.
struct RelayKeys::Transfer {
  uv_work_t work;
  RelayKeys* owner = nullptr;
  std::atomic<bool> cancelled{false};
  std::string url;
  std::string ca_file;
  int64_t timeout_ms = 0;
  size_t max_body = 0;
  Fetched result;

  static size_t on_data(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    size_t len = size * n;
    if (t->result.body.size() + len > t->max_body) return 0;  // aborts the transfer
    t->result.body.append(data, len);
    return len;
  }
  static int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<Transfer*>(user)->cancelled.load() ? 1 : 0;
  }

  // On the worker thread.
  void run() {
    CURL* curl = curl_easy_init();
    if (curl == nullptr) {
      result.error = "cannot start a transfer";
      return;
    }
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_ms));
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_body));
    // Never relaxed: a key set from a host that cannot prove its name is no key set.
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Transfer::on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &Transfer::on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, this);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "hutopia-spaced");
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
      long status = 0;
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      result.status = status;
      char* scheme = nullptr;
      curl_easy_getinfo(curl, CURLINFO_SCHEME, &scheme);
      result.verified_tls =
          scheme != nullptr && (std::string(scheme) == "https" || std::string(scheme) == "HTTPS");
      char* ip = nullptr;
      curl_easy_getinfo(curl, CURLINFO_PRIMARY_IP, &ip);
      result.loopback = ip != nullptr && is_loopback_address(ip);
    } else {
      result.body.clear();
      result.error = errbuf[0] != '\0' ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
    }
    curl_easy_cleanup(curl);
  }
};

RelayKeys::RelayKeys(uv_loop_t* loop, TokenVerifier* verifier, Options options)
    : loop_(loop), verifier_(verifier), options_(std::move(options)) {
  const std::string& u = options_.url;
  fetchable_ = u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0;
  if (!fetchable_ && !u.empty())
    log_printf(LogLevel::kWarn, "space", "auth.relay_jwks: not an http:// or https:// URL (%s)", u.c_str());
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

RelayKeys::~RelayKeys() { stop(); }

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

void RelayKeys::start() {
  started_ = true;
  if (fetchable_ && !options_.issuer.empty() && !stopped_) fetch();
}

void RelayKeys::stop() {
  stopped_ = true;
  if (transfer_ != nullptr) {
    transfer_->owner = nullptr;
    transfer_->cancelled = true;
    transfer_ = nullptr;
  }
  in_flight_ = false;
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters) w();
}

void RelayKeys::refresh(std::function<void()> done) {
  if (!fetchable_ || !started_ || stopped_ || options_.issuer.empty()) {
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
  auto* t = new Transfer;
  t->owner = this;
  t->work.data = t;
  t->url = options_.url;
  t->ca_file = options_.ca_file;
  t->timeout_ms = options_.timeout_ms;
  t->max_body = options_.max_body;
  transfer_ = t;
  int rc = uv_queue_work(
      loop_, &t->work, [](uv_work_t* w) { static_cast<Transfer*>(w->data)->run(); },
      [](uv_work_t* w, int) {
        std::unique_ptr<Transfer> t(static_cast<Transfer*>(w->data));
        RelayKeys* self = t->owner;
        if (self == nullptr) return;
        self->transfer_ = nullptr;
        self->fetched(t->result);
      });
  if (rc != 0) {
    transfer_ = nullptr;
    delete t;
    Fetched fail;
    fail.error = std::string("uv_queue_work: ") + uv_strerror(rc);
    fetched(fail);
  }
}

void RelayKeys::fetched(const Fetched& result) {
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
  if (result.verified_tls || result.loopback) {
    save(result.body);
  } else {
    log_printf(LogLevel::kWarn, "space",
               "%s came in clear over the network: trusted until the space stops, not saved",
               options_.url.c_str());
  }
  finish();
}

void RelayKeys::finish() {
  in_flight_ = false;
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters) w();
}

struct RelayKeys::SaveOrder {
  std::mutex mu;
  uint64_t written = 0;  // the generation in the file; guarded by mu
};

// Writes the copy off the loop: a temporary file, then an atomic rename. A
// save that finds a newer one already written leaves the file as it is.
void RelayKeys::save(const std::string& jwks) {
  if (options_.cache_path.empty()) return;
  ++saves_;
  if (save_order_ == nullptr) save_order_ = std::make_shared<SaveOrder>();
  struct Save {
    uv_work_t work;
    std::string path;
    std::string text;
    std::shared_ptr<SaveOrder> order;
    uint64_t generation = 0;
    bool ok = false;
  };
  auto* s = new Save;
  s->work.data = s;
  s->path = options_.cache_path;
  s->text = jwks;
  s->order = save_order_;
  s->generation = ++save_generation_;
  int rc = uv_queue_work(
      loop_, &s->work,
      [](uv_work_t* w) {
        auto* s = static_cast<Save*>(w->data);
        std::lock_guard lock(s->order->mu);
        if (s->generation < s->order->written) {
          s->ok = true;
          return;
        }
        s->ok = util::write_file_atomic(s->path, s->text).ok();
        if (s->ok) s->order->written = s->generation;
      },
      [](uv_work_t* w, int) {
        auto* s = static_cast<Save*>(w->data);
        if (!s->ok) log_printf(LogLevel::kWarn, "space", "cannot write %s", s->path.c_str());
        delete s;
      });
  if (rc != 0) delete s;
}

}  // namespace hut::space
