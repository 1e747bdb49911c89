// Compact JWS: parsing (nothing trusted yet) and signing.
#include <hutopia/token.h>
#include <cstring>
#include <string>

#include "token/json.h"

namespace hut {

Result<Jws> parse_jws(std::string_view compact, size_t max_size) {
  if (compact.size() > max_size) return Status::invalid_argument("token too large");
  size_t dot1 = compact.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : compact.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || compact.find('.', dot2 + 1) != std::string_view::npos) {
    return Status::invalid_argument("not three parts");
  }
  std::string_view header_b64 = compact.substr(0, dot1);
  std::string_view payload_b64 = compact.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view sig_b64 = compact.substr(dot2 + 1);
  Jws jws;
  Result<std::string> header = base64url_decode(header_b64);
  if (!header.ok()) return Status::invalid_argument("bad base64url in header");
  Result<std::string> payload = base64url_decode(payload_b64);
  if (!payload.ok()) return Status::invalid_argument("bad base64url in payload");
  Result<std::string> sig = base64url_decode(sig_b64);
  if (!sig.ok()) return Status::invalid_argument("bad base64url in signature");

  token_json::JsonPtr json = token_json::parse_strict(*header);
  if (!cJSON_IsObject(json.get())) return Status::invalid_argument("header is not a JSON object");
  const cJSON* alg = cJSON_GetObjectItemCaseSensitive(json.get(), "alg");
  if (!cJSON_IsString(alg)) return Status::invalid_argument("header has no string alg");
  if (cJSON_GetObjectItemCaseSensitive(json.get(), "crit") != nullptr) {
    return Status::invalid_argument("header has crit");
  }
  const cJSON* kid = cJSON_GetObjectItemCaseSensitive(json.get(), "kid");
  if (kid != nullptr) {
    if (!cJSON_IsString(kid)) return Status::invalid_argument("header kid is not a string");
    jws.kid = kid->valuestring;
    jws.has_kid = true;
  }
  jws.alg = alg->valuestring;
  jws.header_json = std::move(*header);
  jws.payload_json = std::move(*payload);
  jws.signature = std::move(*sig);
  jws.signing_input = std::string(compact.substr(0, dot2));
  return jws;
}

Result<std::string> sign_jws(const Key& key, std::string_view payload_json) {
  token_json::JsonPtr payload = token_json::parse_strict(payload_json);
  if (!cJSON_IsObject(payload.get())) return Status::invalid_argument("payload is not a JSON object");
  token_json::JsonPtr header(cJSON_CreateObject());
  if (header == nullptr) return Status::internal("out of memory");
  cJSON_AddStringToObject(header.get(), "alg", std::string(jws_alg_name(key.alg())).c_str());
  cJSON_AddStringToObject(header.get(), "typ", "JWT");
  if (!key.kid().empty()) cJSON_AddStringToObject(header.get(), "kid", key.kid().c_str());
  std::string input = base64url_encode(token_json::print(header.get()));
  input += '.';
  input += base64url_encode(payload_json);
  Result<std::string> sig = key.sign(input);
  if (!sig.ok()) return sig.status();
  input += '.';
  input += base64url_encode(*sig);
  return input;
}

Result<std::string> sign_token(const Key& key, const Claims& claims) {
  token_json::JsonPtr json(cJSON_CreateObject());
  if (json == nullptr) return Status::internal("out of memory");
  cJSON* obj = json.get();
  cJSON_AddStringToObject(obj, "iss", claims.iss.c_str());
  cJSON_AddStringToObject(obj, "sub", claims.sub.c_str());
  cJSON_AddStringToObject(obj, "aud", claims.aud.c_str());
  cJSON_AddNumberToObject(obj, "iat", static_cast<double>(claims.iat));
  cJSON_AddNumberToObject(obj, "exp", static_cast<double>(claims.exp));
  if (claims.nbf) cJSON_AddNumberToObject(obj, "nbf", static_cast<double>(*claims.nbf));
  cJSON_AddStringToObject(obj, "jti", claims.jti.c_str());
  if (!claims.name.empty()) cJSON_AddStringToObject(obj, "name", claims.name.c_str());
  if (!claims.username.empty()) cJSON_AddStringToObject(obj, "username", claims.username.c_str());
  if (!claims.avatar.empty()) cJSON_AddStringToObject(obj, "avatar", claims.avatar.c_str());
  std::string payload = token_json::print(obj);
  if (payload.empty()) return Status::internal("out of memory");
  return sign_jws(key, payload);
}

}  // namespace hut
