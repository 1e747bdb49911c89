// The relay's public keys (contract section 1): the space reads its last good
// copy from disk at start, fetches [auth] relay_jwks at start, and fetches it
// again when a token names a key it does not know (at most once per refresh
// interval), so that it can start and admit users while the relay is down and
// follows the relay's key rotation.
//
// Fetching: libcurl, one transfer at a time on libuv's thread pool (never on
// the loop), http:// or https://. Over https:// the relay's certificate and
// host name are always checked (against `ca_file`, or the system store). The
// copy on disk is written only for a key set that came over https:// or from
// a loopback address: one fetched in clear over a network is trusted for the
// life of the process, never across restarts.
//
// Thread: the loop thread. Ownership: the Space owns the RelayKeys; the
// verifier is borrowed. A transfer in flight when the RelayKeys is stopped or
// destroyed is aborted, and its result dropped.
#ifndef HUTOPIA_SPACE_RELAY_KEYS_H_
#define HUTOPIA_SPACE_RELAY_KEYS_H_

#include <hutopia/token.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace hut::space {

class RelayKeys {
 public:
  struct Options {
    std::string issuer;      // [auth] relay_issuer
    std::string url;         // [auth] relay_jwks: http:// or https://
    std::string ca_file;     // [auth] relay_ca_file; empty: the system store
    std::string cache_path;  // <data_dir>/relay-jwks.json
    int64_t refresh_interval_ms = 10000;
    int64_t timeout_ms = 10000;  // one whole transfer
    size_t max_body = 1 << 20;   // bytes of the key set
  };
  // The outcome of one transfer (filled on a worker thread).
  struct Fetched {
    long status = 0;  // HTTP status; 0 when no response came
    std::string body;
    std::string error;          // why, when status is 0
    bool verified_tls = false;  // came over https:// (certificate checked)
    bool loopback = false;      // the peer's address is loopback
  };

  RelayKeys(uv_loop_t* loop, TokenVerifier* verifier, Options options);
  ~RelayKeys();

  // Trusts the cached copy, when there is one.
  void load_cache();
  // Starts the first fetch.
  void start();
  // Aborts a transfer in flight; no fetch starts after this.
  void stop();
  // Fetches again unless a fetch ran within the refresh interval; `done`
  // runs on the loop when the key set is as fresh as it will get.
  void refresh(std::function<void()> done);

  size_t fetches() const { return fetches_; }
  // Key sets written to the cache file so far.
  size_t saves() const { return saves_; }

 private:
  struct Transfer;
  void fetch();
  void fetched(const Fetched& result);
  void finish();
  void save(const std::string& jwks);

  uv_loop_t* loop_;
  TokenVerifier* verifier_;
  Options options_;
  bool fetchable_ = false;
  bool started_ = false;
  bool stopped_ = false;
  bool in_flight_ = false;
  uint64_t last_refresh_ms_ = 0;
  bool refreshed_once_ = false;
  size_t fetches_ = 0;
  size_t saves_ = 0;
  // The saves run on the thread pool, two of them possibly at once: the
  // newest key set must be the one left in the file (SaveOrder, shared with
  // each save in flight).
  struct SaveOrder;
  std::shared_ptr<SaveOrder> save_order_;
  uint64_t save_generation_ = 0;
  std::vector<std::function<void()>> waiters_;
  Transfer* transfer_ = nullptr;  // the transfer in flight, told when we go
};

}  // namespace hut::space

#endif  // HUTOPIA_SPACE_RELAY_KEYS_H_
