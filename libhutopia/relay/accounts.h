// Accounts: creating one (argon2id password hash), checking a password,
// the profile (name, avatar) and the public view of a user.
//
// Routes: POST /api/v1/accounts, GET and PATCH /api/v1/me, PUT
// /api/v1/me/avatar, GET /avatars/{user}, GET /api/v1/users/{user}.
// Threads: pool threads (each call holds the database mutex around its
// statements, never around a password hash).
#ifndef HUTOPIA_RELAY_ACCOUNTS_H_
#define HUTOPIA_RELAY_ACCOUNTS_H_

#include <cjson/cJSON.h>

#include <string>
#include <string_view>

#include "net/server.h"
#include "relay/answers.h"
#include "relay/relay_state.h"

namespace hut::relay {

struct User {
  std::string id;
  std::string username;
  std::string name;
  bool has_avatar = false;
};

// The user whose `column` ("id" or "username") is `key`; false when none.
// The caller holds the connection (RelayDb::lock).
bool load_user(const RelayDb::Locked& l, std::string_view column, std::string_view key, User* out);
// <issuer>/avatars/<id>, or "" without an avatar.
std::string avatar_url(const std::string& issuer, const User& u);
// Adds id, username (when asked), name and avatar to `obj`.
void add_user_fields(cJSON* obj, const User& u, const std::string& issuer, bool with_username);

// Makes an account after checking the rules, the registration switch and the
// per-address budget. `name` empty: the username.
Outcome create_account(Call& call, const std::string& username, const std::string& password,
                       const std::string& name, User* out);
// Checks a password (the budgets first). An unknown username costs the same
// hash as a known one.
Outcome check_password(Call& call, const std::string& username, const std::string& password, User* out);

}  // namespace hut::relay

#endif  // HUTOPIA_RELAY_ACCOUNTS_H_
