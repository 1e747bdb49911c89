// The relay's public keys (contract section 1): the space reads its last good
// copy from disk at start, fetches [auth] relay_jwks at start, and fetches it
// again when a token names a key it does not know (at most once per refresh
// interval), so that it can start and admit users while the relay is down and
// follows the relay's key rotation.
//
// Thread: the loop thread. Ownership: the Space owns the RelayKeys and
// destroys it after the NetServer; the verifier and the NetServer are
// borrowed.
#ifndef HUTOPIA_SPACE_RELAY_KEYS_H_
#define HUTOPIA_SPACE_RELAY_KEYS_H_

#include <hutopia/token.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/server.h"

namespace hut::space {

class RelayKeys {
 public:
  struct Options {
    std::string issuer;      // [auth] relay_issuer
    std::string url;         // [auth] relay_jwks; only http:// URLs are fetched
    std::string cache_path;  // <data_dir>/relay-jwks.json
    int64_t refresh_interval_ms = 10000;
  };
  RelayKeys(uv_loop_t* loop, TokenVerifier* verifier, Options options);
  ~RelayKeys();

  // Trusts the cached copy, when there is one.
  void load_cache();
  // Starts the first fetch; `net` is used for every fetch after this.
  void start(net::NetServer* net);
  // Fetches again unless a fetch ran within the refresh interval; `done`
  // runs on the loop when the key set is as fresh as it will get.
  void refresh(std::function<void()> done);

  size_t fetches() const { return fetches_; }

 private:
  struct Resolve;
  void fetch();
  void fetched(const net::HttpGetResult& result);
  void finish();
  void save(const std::string& jwks);

  uv_loop_t* loop_;
  TokenVerifier* verifier_;
  Options options_;
  net::NetServer* net_ = nullptr;
  std::string host_;
  int port_ = 80;
  std::string path_;
  bool fetchable_ = false;
  bool in_flight_ = false;
  uint64_t last_refresh_ms_ = 0;
  bool refreshed_once_ = false;
  size_t fetches_ = 0;
  std::vector<std::function<void()>> waiters_;
  Resolve* resolving_ = nullptr;  // the pending name lookup, told when we go
};

}  // namespace hut::space

#endif  // HUTOPIA_SPACE_RELAY_KEYS_H_
