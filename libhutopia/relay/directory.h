// The space directory and the relay tokens: spaces registered by their
// owners (id assigned by the relay, name, address), and the tokens the relay
// signs for a user entering one of them; the published key set.
//
// Routes: GET and POST /api/v1/spaces, GET and PATCH /api/v1/spaces/{space},
// POST /api/v1/spaces/{space}/tokens, GET /.well-known/jwks.json.
// Threads: pool threads.
#ifndef HUTOPIA_RELAY_DIRECTORY_H_
#define HUTOPIA_RELAY_DIRECTORY_H_

#include <string>

#include "net/server.h"
#include "relay/answers.h"
#include "relay/relay_state.h"

namespace hut::relay {

struct User;

// A space's entry in the directory.
struct SpaceEntry {
  std::string id, name, url, owner;
};

// The entry of `space_id`; false when none is registered.
bool load_space(RelayState& relay, const std::string& space_id, SpaceEntry* out);
// Signs a relay token for `u` to enter `space_id` (the per-user budget
// first): the token and its expiry (Unix ms).
Outcome mint_token(Call& call, const User& u, const std::string& space_id, std::string* token,
                   int64_t* expires_ms);

}  // namespace hut::relay

#endif  // HUTOPIA_RELAY_DIRECTORY_H_
