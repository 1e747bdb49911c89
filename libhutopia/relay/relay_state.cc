#include "relay/relay_state.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace hut::relay {

Status RelayState::open() {
  const std::string& dir = config.relay.data_dir;
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::io_error("cannot create relay.data_dir " + dir + ": " + std::strerror(errno));
  HUT_RETURN_IF_ERROR(db.open(relay_store_url(config)));
  keys = std::make_unique<SigningKeys>(dir + "/keys", config.relay.token_ttl);
  HUT_RETURN_IF_ERROR(keys->ensure());
  const RelayConfig::Limits& l = config.limits;
  login_account_limit = std::make_unique<RateLimiter>(l.login_attempts_per_account, l.login_window * 1000);
  login_address_limit = std::make_unique<RateLimiter>(l.login_attempts_per_address, l.login_window * 1000);
  account_limit = std::make_unique<RateLimiter>(l.accounts_per_address, l.account_window * 1000);
  token_limit = std::make_unique<RateLimiter>(l.tokens_per_user, l.token_window * 1000);
  return Status();
}

}  // namespace hut::relay
