// KeySet: the JWK set format for Ed25519 public keys.
#include <hutopia/token.h>
#include <cstring>
#include <string>

#include "token/json.h"

namespace hut {

namespace {
constexpr size_t kMaxJwksBytes = 256 * 1024;
constexpr size_t kMaxKeys = 64;
}  // namespace

Result<KeySet> KeySet::parse_jwks(std::string_view json) {
  if (json.size() > kMaxJwksBytes) return Status::invalid_argument("key set too large");
  token_json::JsonPtr root = token_json::parse_strict(json);
  if (!cJSON_IsObject(root.get())) return Status::invalid_argument("key set is not a JSON object");
  const cJSON* keys = cJSON_GetObjectItemCaseSensitive(root.get(), "keys");
  if (!cJSON_IsArray(keys)) return Status::invalid_argument("key set has no keys array");
  KeySet set;
  size_t index = 0;
  for (const cJSON* item = keys->child; item != nullptr; item = item->next, ++index) {
    std::string where = "key " + std::to_string(index) + ": ";
    if (!cJSON_IsObject(item)) return Status::invalid_argument(where + "not a JSON object");
    const char* kty = token_json::get_string(item, "kty");
    const char* crv = token_json::get_string(item, "crv");
    if (kty == nullptr || std::strcmp(kty, "OKP") != 0 || crv == nullptr ||
        std::strcmp(crv, "Ed25519") != 0) {
      continue;  // another kind of key: not ours to use
    }
    const char* use = token_json::get_string(item, "use");
    if (use != nullptr && std::strcmp(use, "sig") != 0) continue;  // not a signing key
    Result<Key> key = Key::from_jwk(token_json::print(item));
    if (!key.ok()) return Status::invalid_argument(where + std::string(key.status().message()));
    if (key->kid().empty()) return Status::invalid_argument(where + "no kid");
    if (set.find(key->kid()) != nullptr)
      return Status::invalid_argument(where + "kid " + key->kid() + " twice");
    if (set.size() >= kMaxKeys) return Status::invalid_argument("too many keys");
    set.add(*key);
  }
  return set;
}

std::string KeySet::to_jwks() const {
  token_json::JsonPtr root(cJSON_CreateObject());
  cJSON* array = cJSON_AddArrayToObject(root.get(), "keys");
  for (const Key& key : keys_) {
    Result<std::string> jwk = key.to_jwk();
    if (!jwk.ok()) continue;
    cJSON* item = cJSON_Parse(jwk->c_str());
    if (item != nullptr) cJSON_AddItemToArray(array, item);
  }
  return token_json::print(root.get());
}

void KeySet::add(const Key& key) {
  if (key.alg() != JwsAlg::kEdDSA) return;  // a key set is published; secrets never go in one
  Key pub = key.public_key();
  for (Key& k : keys_) {
    if (k.kid() == pub.kid()) {
      k = pub;
      return;
    }
  }
  keys_.push_back(pub);
}

const Key* KeySet::find(std::string_view kid) const {
  for (const Key& k : keys_) {
    if (k.kid() == kid) return &k;
  }
  return nullptr;
}

}  // namespace hut
