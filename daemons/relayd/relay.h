// The relay: accounts, login sessions, the space directory and relay tokens
// (contract sections 1 and 5), served over libhutopia's network layer.
//
// Threads: every request is parsed and routed on the loop thread; the work
// that touches SQLite, the key files or argon2 runs on libuv's thread pool
// (uv_queue_work) and the response is sent from the loop thread once that
// work is done. So nothing slow or blocking runs on the loop, and every
// write is committed before its answer leaves. Requests that hash a
// password take at most [limits] hash_workers pool threads at once.
// Ownership: the daemon's main() owns the Relay; the Relay owns its
// NetServer, its store (RelayStore) and its key ring (RelayKeys); the loop
// is borrowed and must outlive the Relay.
#ifndef HUTOPIA_RELAYD_RELAY_H_
#define HUTOPIA_RELAYD_RELAY_H_

#include <hutopia/config.h>
#include <hutopia/status.h>
#include <hutopia/token.h>

#include <sqlite3.h>
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "net/server.h"
#include "relay/limits.h"
#include "util/metrics.h"

namespace hut::relay {

// The signing keys in <data_dir>/keys: <kid>.pem (PKCS#8, mode 0600), the
// file `current` naming the key that signs, and <kid>.retired holding the
// Unix time (seconds) at which a key stopped signing. A retired key stays
// published until every token it signed has expired.
// Thread safety: every method may be called from any thread; a mutex guards
// the cached keys.
class RelayKeys {
 public:
  RelayKeys(std::string dir, int64_t token_ttl_s) : dir_(std::move(dir)), token_ttl_s_(token_ttl_s) {}
  // Creates the directory and a first key when there is none.
  Status ensure();
  // Makes a new key the current one and retires the old one.
  Result<std::string> rotate(int64_t now_s);
  // The key that signs now (re-read from disk when `current` changed).
  Result<Key> signing_key();
  // The published set: the current key and the retired keys still needed.
  Result<std::string> jwks(int64_t now_s);

 private:
  Status reload_locked();
  std::string dir_;
  int64_t token_ttl_s_;
  std::mutex mu_;
  std::optional<Key> current_;
  std::string current_stamp_;  // what `current` looked like when read
};

// The SQLite store (<data_dir>/relay.db, WAL). One connection guarded by a
// mutex; callers are thread-pool jobs.
class RelayStore {
 public:
  ~RelayStore();
  Status open(const std::string& path);
  sqlite3* db() const { return db_; }
  std::mutex& mutex() { return mu_; }

 private:
  sqlite3* db_ = nullptr;
  std::mutex mu_;
};

class Relay : public net::NetHandler {
 public:
  static Result<std::unique_ptr<Relay>> create(RelayConfig config, uv_loop_t* loop);
  ~Relay() override;

  // Binds the listeners (public and admin). Call on the loop thread or
  // before the loop runs.
  Status start();
  std::string public_url() const;
  std::string admin_url() const;

  // What reload() did: the keys ("section.key") whose new value it applied,
  // and those whose new value waits for the next start.
  struct ReloadReport {
    std::vector<std::string> applied;
    std::vector<std::string> needs_restart;
  };
  // Applies the [limits] budgets, hash_workers, hash_queue and the admin
  // token from `config` (loop thread); other keys that differ wait for a
  // restart. The log level is the program's to apply.
  ReloadReport reload(const RelayConfig& config);
  // Stops taking requests, lets running jobs finish, then destroys the
  // network layer; `done` runs on the loop once the loop can be left.
  void stop(std::function<void()> done);

  void on_http(std::shared_ptr<net::HttpExchange> exchange) override;

  // A request as a pool job sees it: a copy, so the job shares nothing
  // with the loop thread.
  struct Request {
    std::string method;
    std::string path;
    std::string query;
    std::string body;
    std::string authorization;
    std::string cookie;
    std::string content_type;
    std::string origin;
    std::string peer;  // the client's address
  };

 private:
  Relay(RelayConfig config, uv_loop_t* loop);
  net::HttpResponse handle(const Request& req);
  // GET /healthz, and GET /metrics with the admin token (loop thread).
  void handle_admin(const std::shared_ptr<net::HttpExchange>& ex);
  std::string metrics_text() const;
  void maybe_finish_stop();

  struct Job;
  // Hands a job to the thread pool; false when libuv refused it.
  bool submit(Job* job);
  // Starts waiting password-hash jobs while fewer than hash_workers run.
  void start_waiting_hash_jobs();
  static void run_job(uv_work_t* work);
  static void after_job(uv_work_t* work, int status);

  RelayConfig config_;
  uv_loop_t* loop_;
  std::unique_ptr<net::NetServer> net_;
  RelayStore store_;
  std::unique_ptr<RelayKeys> keys_;
  std::string host_;
  int port_ = 0;
  size_t pending_ = 0;  // jobs waiting, queued or running (loop thread only)
  // Requests that hash a password (logins, sign-ups) run at most
  // limits.hash_workers at once, so that the other routes always find a
  // pool thread; up to limits.hash_queue more wait here, the rest get 503.
  size_t hash_running_ = 0;
  std::deque<Job*> hash_waiting_;
  // Budgets (thread-safe; taken on pool threads).
  std::unique_ptr<RateLimiter> login_account_limit_;
  std::unique_ptr<RateLimiter> login_address_limit_;
  std::unique_ptr<RateLimiter> account_limit_;
  std::unique_ptr<RateLimiter> token_limit_;
  // Figures for /metrics; the counters are bumped on pool threads.
  struct Stats {
    std::atomic<uint64_t> logins_ok{0};
    std::atomic<uint64_t> logins_failed{0};
    std::atomic<uint64_t> signups{0};
    std::atomic<uint64_t> tokens_minted{0};
    std::atomic<uint64_t> throttled{0};     // 429 answers
    std::atomic<uint64_t> hash_refused{0};  // 503: the hash queue was full
    Histogram hash_seconds;                 // requests that hash a password, start to answer
  };
  Stats stats_;
  std::string admin_host_;
  int admin_port_ = 0;
  bool stopping_ = false;
  bool net_down_ = false;
  std::function<void()> stop_done_;
};

}  // namespace hut::relay

#endif  // HUTOPIA_RELAYD_RELAY_H_
