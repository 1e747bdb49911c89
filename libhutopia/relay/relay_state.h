// What the relay's route handlers share: the configuration, the database,
// the signing keys, the budgets and the figures of /metrics; and a request
// as a handler sees it (Call).
//
// Threads: handlers run on libuv's thread pool. They read only the keys of
// `config` that a reload never writes (hut::Relay::reload writes the live
// [limits] keys, read on the loop thread alone); the database has its mutex,
// the keys and the budgets are thread-safe, the figures are atomics.
// Ownership: hut::Relay owns one RelayState; a Call borrows it and the
// request for the length of one handler.
#ifndef HUTOPIA_RELAY_RELAY_STATE_H_
#define HUTOPIA_RELAY_RELAY_STATE_H_

#include <hutopia/config.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "relay/limits.h"
#include "relay/relay_db.h"
#include "relay/signing_keys.h"
#include "util/metrics.h"

namespace hut::relay {

// Figures for /metrics; bumped on pool threads.
struct RelayStats {
  std::atomic<uint64_t> logins_ok{0};
  std::atomic<uint64_t> logins_failed{0};
  std::atomic<uint64_t> signups{0};
  std::atomic<uint64_t> tokens_minted{0};
  std::atomic<uint64_t> throttled{0};     // 429 answers
  std::atomic<uint64_t> hash_refused{0};  // 503: the hash queue was full
  Histogram hash_seconds;                 // requests that hash a password, start to answer
};

struct RelayState {
  explicit RelayState(RelayConfig c) : config(std::move(c)) {}
  // Opens the database and the keys under config.relay.data_dir and sets
  // the budgets.
  Status open();

  RelayConfig config;
  RelayDb db;
  std::unique_ptr<SigningKeys> keys;
  std::unique_ptr<RateLimiter> login_account_limit;
  std::unique_ptr<RateLimiter> login_address_limit;
  std::unique_ptr<RateLimiter> account_limit;
  std::unique_ptr<RateLimiter> token_limit;
  RelayStats stats;
};

// A request as a handler sees it: a copy, so that a pool job shares nothing
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

struct Call {
  RelayState& relay;
  const Request& req;
  int64_t now_ms;  // wall clock, read once per request
  const std::string& issuer() const { return relay.config.relay.issuer; }
};

}  // namespace hut::relay

#endif  // HUTOPIA_RELAY_RELAY_STATE_H_
