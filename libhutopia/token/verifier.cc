// TokenVerifier: the checks a space makes before it lets anyone in
// (contract section 1), in the order docs/tokens.md gives.
#include <hutopia/token.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "token/json.h"

namespace hut {

namespace {

// NumericDate values outside [0, 2^53] are refused: a double holds every
// integer up to there exactly.
constexpr double kMaxNumericDate = 9007199254740992.0;
constexpr int64_t kMaxLeeway = 30;

Status refuse(std::string_view reason) { return Status::unauthenticated(reason); }

int64_t sat_add(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out))
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  return out;
}

// Reads a required string claim. Refuses absent, non-string or empty values.
Status get_string_claim(const cJSON* claims, const char* name, std::string* out) {
  const cJSON* item = cJSON_GetObjectItemCaseSensitive(claims, name);
  if (item == nullptr) return refuse(std::string("missing claim ") + name);
  if (!cJSON_IsString(item)) return refuse(std::string("claim ") + name + " is not a string");
  if (item->valuestring[0] == '\0') return refuse(std::string("claim ") + name + " is empty");
  *out = item->valuestring;
  return Status::ok_status();
}

// Reads a NumericDate claim (seconds); `round_up` for nbf, so that a
// fractional value never starts a token early.
Status get_time_claim(const cJSON* item, const char* name, bool round_up, int64_t* out) {
  if (!cJSON_IsNumber(item)) return refuse(std::string("claim ") + name + " is not a number");
  double v = item->valuedouble;
  if (!std::isfinite(v) || v < 0 || v > kMaxNumericDate) {
    return refuse(std::string("claim ") + name + " is out of range");
  }
  *out = static_cast<int64_t>(round_up ? std::ceil(v) : std::floor(v));
  return Status::ok_status();
}

Status get_optional_string(const cJSON* claims, const char* name, std::string* out) {
  const cJSON* item = cJSON_GetObjectItemCaseSensitive(claims, name);
  if (item == nullptr) return Status::ok_status();
  if (!cJSON_IsString(item)) return refuse(std::string("claim ") + name + " is not a string");
  *out = item->valuestring;
  return Status::ok_status();
}

// `aud` is a string or an array of strings.
Status check_audience_type(const cJSON* aud) {
  if (aud == nullptr) return refuse("missing claim aud");
  bool ok = cJSON_IsString(aud) || cJSON_IsArray(aud);
  for (const cJSON* item = cJSON_IsArray(aud) ? aud->child : nullptr; item != nullptr; item = item->next) {
    ok = ok && cJSON_IsString(item);
  }
  return ok ? Status::ok_status() : refuse("claim aud is not a string or an array of strings");
}

// Whether a well-typed `aud` names `audience`.
bool names_audience(const cJSON* aud, const std::string& audience) {
  if (cJSON_IsString(aud)) return audience == aud->valuestring;
  for (const cJSON* item = aud->child; item != nullptr; item = item->next) {
    if (audience == item->valuestring) return true;
  }
  return false;
}

// Text from an unverified header, made safe to put in a reason that may be
// logged or shown: at most 64 bytes, printable ASCII only.
std::string printable(std::string_view text) {
  std::string out(text.substr(0, 64));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

bool is_http_url(const std::string& url) {
  return url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0;
}

}  // namespace

TokenVerifier::TokenVerifier(Options options) : options_(std::move(options)) {
  options_.leeway_s = std::clamp<int64_t>(options_.leeway_s, 0, kMaxLeeway);
  options_.max_lifetime_s = std::max<int64_t>(options_.max_lifetime_s, 0);
}

void TokenVerifier::trust(const Key& key, std::string issuer) {
  Trusted entry{key.public_key(), std::move(issuer)};
  for (Trusted& t : keys_) {
    if (t.key.kid() == key.kid()) {
      t = std::move(entry);
      return;
    }
  }
  keys_.push_back(std::move(entry));
}

void TokenVerifier::trust_set(const KeySet& keys, const std::string& issuer) {
  std::erase_if(keys_, [&](const Trusted& t) { return t.issuer == issuer && t.key.alg() == JwsAlg::kEdDSA; });
  for (const Key& key : keys.keys()) trust(key, issuer);
}

Result<Claims> TokenVerifier::verify(std::string_view token, int64_t now_s) const {
  Result<Jws> parsed = parse_jws(token);
  if (!parsed.ok()) return refuse("malformed token: " + std::string(parsed.status().message()));
  const Jws& jws = *parsed;

  if (jws.alg == "none") return refuse("unsigned token (alg none)");
  if (jws.alg != "EdDSA" && jws.alg != "HS256") return refuse("unsupported algorithm " + printable(jws.alg));

  // The key the header names, by kid; a token without kid goes to the key
  // trusted without one.
  const Trusted* trusted = nullptr;
  for (const Trusted& t : keys_) {
    if (t.key.kid() == jws.kid) {
      trusted = &t;
      break;
    }
  }
  if (trusted == nullptr) {
    if (jws.has_kid && !jws.kid.empty()) return Status::not_found("unknown key id " + printable(jws.kid));
    return refuse("no key for a token without kid");
  }

  // The algorithm is the key's, never the header's choice.
  if (jws.alg != jws_alg_name(trusted->key.alg())) {
    return refuse("algorithm " + jws.alg + " not allowed for this key");
  }
  if (!trusted->key.verify(jws.signing_input, jws.signature)) return refuse("bad signature");

  // Only now is anything in the payload believed.
  token_json::JsonPtr json = token_json::parse_strict(jws.payload_json);
  if (!cJSON_IsObject(json.get())) return refuse("claims are not a JSON object");
  const cJSON* obj = json.get();
  Claims claims;
  HUT_RETURN_IF_ERROR(get_string_claim(obj, "iss", &claims.iss));
  HUT_RETURN_IF_ERROR(get_string_claim(obj, "sub", &claims.sub));
  const cJSON* aud = cJSON_GetObjectItemCaseSensitive(obj, "aud");
  HUT_RETURN_IF_ERROR(check_audience_type(aud));
  const cJSON* iat = cJSON_GetObjectItemCaseSensitive(obj, "iat");
  if (iat == nullptr) return refuse("missing claim iat");
  HUT_RETURN_IF_ERROR(get_time_claim(iat, "iat", false, &claims.iat));
  const cJSON* exp = cJSON_GetObjectItemCaseSensitive(obj, "exp");
  if (exp == nullptr) return refuse("missing claim exp");
  HUT_RETURN_IF_ERROR(get_time_claim(exp, "exp", false, &claims.exp));
  HUT_RETURN_IF_ERROR(get_string_claim(obj, "jti", &claims.jti));
  const cJSON* nbf = cJSON_GetObjectItemCaseSensitive(obj, "nbf");
  if (nbf != nullptr) {
    int64_t v = 0;
    HUT_RETURN_IF_ERROR(get_time_claim(nbf, "nbf", true, &v));
    claims.nbf = v;
  }
  HUT_RETURN_IF_ERROR(get_optional_string(obj, "name", &claims.name));
  HUT_RETURN_IF_ERROR(get_optional_string(obj, "username", &claims.username));
  HUT_RETURN_IF_ERROR(get_optional_string(obj, "avatar", &claims.avatar));
  if (!claims.avatar.empty() && !is_http_url(claims.avatar)) claims.avatar.clear();

  if (claims.iss != trusted->issuer) return refuse("wrong issuer");
  if (!names_audience(aud, options_.audience)) return refuse("wrong audience");
  claims.aud = options_.audience;

  const int64_t leeway = options_.leeway_s;
  if (sat_add(claims.exp, leeway) <= now_s) return refuse("expired");
  if (claims.nbf && *claims.nbf > sat_add(now_s, leeway)) return refuse("token not yet valid");
  if (claims.iat > sat_add(now_s, leeway)) return refuse("token issued in the future");
  if (claims.exp < claims.iat) return refuse("token expires before it was issued");
  if (claims.exp - claims.iat > options_.max_lifetime_s) return refuse("token lifetime too long");
  return claims;
}

}  // namespace hut
