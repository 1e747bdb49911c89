// TokenVerifier: every refusal of contract section 1, each on its own, and the
// tokens that pass.
#include <doctest/doctest.h>

#include <hutopia/token.h>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "token/token_helpers.h"

namespace hut {
namespace {

using test::good_claims;
using test::hand_token;
using test::kNow;
using test::kRelay;
using test::kSpace;

constexpr const char* kApp = "app-backend";

// A verifier that trusts one relay key (kid "relay-1") and an app secret.
struct Fixture {
  Key relay = Key::generate_ed25519("relay-1").value();
  Key app = Key::hs256("app secret of at least 32 bytes!!").value();
  TokenVerifier verifier{TokenVerifier::Options{kSpace, 30, 300}};

  Fixture() {
    verifier.trust(relay, kRelay);
    verifier.trust(app, kApp);
  }

  Result<Claims> check(const std::string& token, int64_t now = kNow) const {
    return verifier.verify(token, now);
  }
  // A relay token with the payload given as JSON text.
  std::string relay_token(const std::string& payload) const {
    return hand_token(relay, R"({"alg":"EdDSA","typ":"JWT","kid":"relay-1"})", payload);
  }
};

void check_refused(const Result<Claims>& r, std::string_view reason) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kUnauthenticated);
  CHECK(r.status().message() == reason);
}

std::string payload_without(const std::string& claim) {
  std::string p = R"({"iss":"https://relay.example","sub":"user-42","aud":"space-1","iat":1800000000,)"
                  R"("exp":1800000060,"jti":"j1"})";
  size_t at = p.find("\"" + claim + "\":");
  REQUIRE(at != std::string::npos);
  size_t end = p.find_first_of(",}", at);
  if (p[end] == ',') ++end;
  p.erase(at, end - at);
  if (p[p.size() - 2] == ',') p.erase(p.size() - 2, 1);
  return p;
}

TEST_CASE("verify accepts a relay token and an app token, and returns the claims") {
  Fixture f;
  Result<Claims> relay = f.check(sign_token(f.relay, good_claims()).value());
  REQUIRE(relay.ok());
  CHECK(relay->iss == kRelay);
  CHECK(relay->sub == "user-42");
  CHECK(relay->aud == kSpace);
  CHECK(relay->jti == "jti-1");
  CHECK(relay->iat == kNow);
  CHECK(relay->exp == kNow + 60);
  CHECK(relay->name == "Ada");
  CHECK(relay->username == "ada");
  CHECK_FALSE(relay->nbf.has_value());

  Claims app_claims = good_claims();
  app_claims.iss = kApp;
  app_claims.nbf = kNow - 5;
  app_claims.avatar = "https://img.example/a.png";
  Result<Claims> app = f.check(sign_token(f.app, app_claims).value());
  REQUIRE(app.ok());
  CHECK(app->iss == kApp);
  CHECK(app->nbf == kNow - 5);
  CHECK(app->avatar == "https://img.example/a.png");
}

TEST_CASE("refused: alg none") {
  Fixture f;
  std::string payload = R"({"iss":"https://relay.example","sub":"u","aud":"space-1","iat":1800000000,)"
                        R"("exp":1800000060,"jti":"j"})";
  std::string with_kid =
      base64url_encode(R"({"alg":"none","kid":"relay-1"})") + "." + base64url_encode(payload) + ".";
  check_refused(f.check(with_kid), "unsigned token (alg none)");
  std::string without_kid = base64url_encode(R"({"alg":"none"})") + "." + base64url_encode(payload) + ".";
  check_refused(f.check(without_kid), "unsigned token (alg none)");
  std::string unknown_kid =
      base64url_encode(R"({"alg":"none","kid":"nope"})") + "." + base64url_encode(payload) + ".";
  check_refused(f.check(unknown_kid), "unsigned token (alg none)");
  std::string rs256 =
      base64url_encode(R"({"alg":"RS256","kid":"relay-1"})") + "." + base64url_encode(payload) + ".AAAA";
  check_refused(f.check(rs256), "unsupported algorithm RS256");
}

TEST_CASE("refused: HS256 signed with the Ed25519 public key bytes (key confusion)") {
  Fixture f;
  std::string claims = R"({"iss":"https://relay.example","sub":"u","aud":"space-1","iat":1800000000,)"
                       R"("exp":1800000060,"jti":"j"})";
  // Every public form of the relay key an attacker could use as an HMAC secret.
  std::string jwk = f.relay.to_jwk().value();
  size_t x_at = jwk.find("\"x\":\"") + 5;
  std::string x = jwk.substr(x_at, jwk.find('"', x_at) - x_at);
  for (const std::string& secret :
       {f.relay.public_key().to_pem().value(), base64url_decode(x).value(), x, jwk}) {
    Key forged = Key::hs256(secret).value();
    std::string token = hand_token(forged, R"({"alg":"HS256","typ":"JWT","kid":"relay-1"})", claims);
    check_refused(f.check(token), "algorithm HS256 not allowed for this key");
  }
}

TEST_CASE("refused: an EdDSA token checked against a secret") {
  Fixture f;
  Key attacker = Key::generate_ed25519("").value();
  Claims c = good_claims();
  c.iss = kApp;
  // No kid: the token goes to the app secret, which only takes HS256.
  check_refused(f.check(sign_token(attacker, c).value()), "algorithm EdDSA not allowed for this key");
}

TEST_CASE("refused: bad signature (one flipped byte)") {
  Fixture f;
  for (const Key* key : {&f.relay, &f.app}) {
    Claims c = good_claims();
    if (key == &f.app) c.iss = kApp;
    std::string token = sign_token(*key, c).value();
    REQUIRE(f.check(token).ok());
    Jws jws = parse_jws(token).value();
    std::string sig = jws.signature;
    sig[sig.size() / 2] = static_cast<char>(sig[sig.size() / 2] ^ 0x01);
    check_refused(f.check(jws.signing_input + "." + base64url_encode(sig)), "bad signature");
    // A payload changed under the old signature.
    Claims other = c;
    other.sub = "admin";
    std::string other_token = sign_token(*key, other).value();
    std::string spliced = other_token.substr(0, other_token.rfind('.')) + token.substr(token.rfind('.'));
    check_refused(f.check(spliced), "bad signature");
  }
}

TEST_CASE("refused: another relay key with the same kid") {
  Fixture f;
  Key impostor = Key::generate_ed25519("relay-1").value();
  check_refused(f.check(sign_token(impostor, good_claims()).value()), "bad signature");
}

TEST_CASE("refused: expired, and accepted just inside the leeway") {
  Fixture f;
  std::string token = sign_token(f.relay, good_claims()).value();  // exp = kNow + 60
  CHECK(f.check(token, kNow + 60).ok());
  CHECK(f.check(token, kNow + 60 + 29).ok());
  check_refused(f.check(token, kNow + 60 + 30), "expired");
  check_refused(f.check(token, kNow + 3600), "expired");
}

TEST_CASE("refused: nbf in the future") {
  Fixture f;
  Claims c = good_claims();
  c.nbf = kNow + 40;
  std::string token = sign_token(f.relay, c).value();
  check_refused(f.check(token), "token not yet valid");
  CHECK(f.check(token, kNow + 10).ok());  // inside the leeway
}

TEST_CASE("refused: iat in the future") {
  Fixture f;
  Claims c = good_claims();
  c.iat = kNow + 100;
  c.exp = kNow + 160;
  std::string token = sign_token(f.relay, c).value();
  check_refused(f.check(token), "token issued in the future");
  CHECK(f.check(token, kNow + 71).ok());
}

TEST_CASE("refused: lifetime over the maximum") {
  Fixture f;
  Claims c = good_claims();
  c.exp = c.iat + 301;
  check_refused(f.check(sign_token(f.relay, c).value()), "token lifetime too long");
  c.exp = c.iat + 300;
  CHECK(f.check(sign_token(f.relay, c).value()).ok());
  c.exp = c.iat - 1;
  check_refused(f.check(sign_token(f.relay, c).value(), kNow - 10), "token expires before it was issued");
}

TEST_CASE("refused: wrong aud; an aud array must contain the space") {
  Fixture f;
  Claims c = good_claims();
  c.aud = "space-2";
  check_refused(f.check(sign_token(f.relay, c).value()), "wrong audience");
  const std::string base =
      R"({"iss":"https://relay.example","sub":"u","iat":1800000000,"exp":1800000060,"jti":"j",)";
  CHECK(f.check(f.relay_token(base + R"("aud":["other","space-1"]})")).ok());
  check_refused(f.check(f.relay_token(base + R"("aud":["other","space-10"]})")), "wrong audience");
  check_refused(f.check(f.relay_token(base + R"("aud":[]})")), "wrong audience");
  check_refused(f.check(f.relay_token(base + R"("aud":["space-1",5]})")),
                "claim aud is not a string or an array of strings");
}

TEST_CASE("refused: aud missing") {
  Fixture f;
  check_refused(f.check(f.relay_token(payload_without("aud"))), "missing claim aud");
}

TEST_CASE("refused: wrong iss") {
  Fixture f;
  Claims c = good_claims();
  c.iss = "https://evil.example";
  check_refused(f.check(sign_token(f.relay, c).value()), "wrong issuer");
  // The app secret does not vouch for the relay's issuer either.
  check_refused(f.check(sign_token(f.app, good_claims()).value()), "wrong issuer");
}

TEST_CASE("refused: each required claim missing") {
  Fixture f;
  for (const char* claim : {"iss", "sub", "aud", "iat", "exp", "jti"}) {
    CAPTURE(claim);
    check_refused(f.check(f.relay_token(payload_without(claim))), std::string("missing claim ") + claim);
  }
}

TEST_CASE("refused: claims with the wrong JSON types") {
  Fixture f;
  struct Case {
    const char* claim;
    const char* value;
    const char* reason;
  };
  const Case cases[] = {
      {"iss", "5", "claim iss is not a string"},
      {"sub", "null", "claim sub is not a string"},
      {"sub", "\"\"", "claim sub is empty"},
      {"jti", "[\"j\"]", "claim jti is not a string"},
      {"jti", "\"\"", "claim jti is empty"},
      {"aud", "{\"a\":1}", "claim aud is not a string or an array of strings"},
      {"iat", "\"1800000000\"", "claim iat is not a number"},
      {"exp", "true", "claim exp is not a number"},
      {"exp", "-5", "claim exp is out of range"},
      {"exp", "1e300", "claim exp is out of range"},
      {"nbf", "\"soon\"", "claim nbf is not a number"},
      {"name", "7", "claim name is not a string"},
      {"username", "{}", "claim username is not a string"},
      {"avatar", "false", "claim avatar is not a string"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.claim);
    CAPTURE(c.value);
    std::string payload = R"({"iss":"https://relay.example","sub":"u","aud":"space-1","iat":1800000000,)"
                          R"("exp":1800000060,"jti":"j"})";
    std::string key = std::string("\"") + c.claim + "\":";
    size_t at = payload.find(key);
    if (at == std::string::npos) {
      payload.insert(payload.size() - 1, "," + key + c.value);
    } else {
      size_t start = at + key.size();
      payload.replace(start, payload.find_first_of(",}", start) - start, c.value);
    }
    check_refused(f.check(f.relay_token(payload)), c.reason);
  }
  check_refused(f.check(f.relay_token("[1,2]")), "claims are not a JSON object");
  check_refused(f.check(f.relay_token("not json")), "claims are not a JSON object");
  // A claim named twice: JSON parsers disagree on which one counts.
  check_refused(f.check(f.relay_token(R"({"iss":"https://relay.example","sub":"u","aud":"space-1","aud":"x",)"
                                      R"("iat":1800000000,"exp":1800000060,"jti":"j"})")),
                "claims are not a JSON object");
}

TEST_CASE("an avatar that is not an http(s) URL is dropped") {
  Fixture f;
  Claims c = good_claims();
  c.avatar = "javascript:alert(1)";
  Result<Claims> r = f.check(sign_token(f.relay, c).value());
  REQUIRE(r.ok());
  CHECK(r->avatar.empty());
}

TEST_CASE("refused: unknown kid is kNotFound") {
  Fixture f;
  Key other = Key::generate_ed25519("relay-2").value();
  Result<Claims> r = f.check(sign_token(other, good_claims()).value());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kNotFound);
  CHECK(r.status().message() == "unknown key id relay-2");
  // A kid is shown only as printable ASCII.
  Key odd = Key::generate_ed25519("a\nb\x01").value();
  Result<Claims> odd_r = f.check(sign_token(odd, good_claims()).value());
  CHECK(odd_r.status().code() == Status::Code::kNotFound);
  CHECK(odd_r.status().message() == "unknown key id a?b?");
}

TEST_CASE("refused: no kid and no key trusted without one") {
  TokenVerifier v(TokenVerifier::Options{kSpace, 30, 300});
  Key relay = Key::generate_ed25519("relay-1").value();
  v.trust(relay, kRelay);
  Key unnamed = Key::generate_ed25519("").value();
  check_refused(v.verify(sign_token(unnamed, good_claims()).value(), kNow), "no key for a token without kid");
}

TEST_CASE("refused: malformed tokens") {
  Fixture f;
  std::string good = sign_token(f.relay, good_claims()).value();
  REQUIRE(f.check(good).ok());
  check_refused(f.check(good.substr(0, good.rfind('.'))), "malformed token: not three parts");
  check_refused(f.check("a.b.c.d"), "malformed token: not three parts");
  std::string bad = good;
  bad[good.find('.') + 3] = '*';
  check_refused(f.check(bad), "malformed token: bad base64url in payload");
  check_refused(f.check(good + "="), "malformed token: bad base64url in signature");
  std::string rest = good.substr(good.find('.'));
  check_refused(f.check(base64url_encode("\"EdDSA\"") + rest),
                "malformed token: header is not a JSON object");
  check_refused(f.check(base64url_encode(R"({"alg":"EdDSA","kid":"relay-1","crit":["x"]})") + rest),
                "malformed token: header has crit");
  check_refused(f.check(std::string(8193, 'A')), "malformed token: token too large");
  Claims big = good_claims();
  big.name = std::string(7000, 'n');
  check_refused(f.check(sign_token(f.relay, big).value()), "malformed token: token too large");
}

TEST_CASE("the leeway is clamped to 30 s even if configured larger") {
  TokenVerifier v(TokenVerifier::Options{kSpace, 3600, 300});
  CHECK(v.options().leeway_s == 30);
  Key relay = Key::generate_ed25519("relay-1").value();
  v.trust(relay, kRelay);
  std::string token = sign_token(relay, good_claims()).value();
  CHECK(v.verify(token, kNow + 60 + 29).ok());
  check_refused(v.verify(token, kNow + 60 + 30), "expired");
  check_refused(v.verify(token, kNow + 60 + 600), "expired");
  TokenVerifier negative(TokenVerifier::Options{kSpace, -5, 300});
  CHECK(negative.options().leeway_s == 0);
}

TEST_CASE("key rotation: two kids in a set, then the old one retired") {
  TokenVerifier v(TokenVerifier::Options{kSpace, 30, 300});
  Key old_key = Key::generate_ed25519("2026-01").value();
  Key new_key = Key::generate_ed25519("2026-02").value();
  Key app = Key::hs256("app-secret").value();
  v.trust(app, kRelay);
  KeySet both;
  both.add(old_key);
  both.add(new_key);
  v.trust_set(KeySet::parse_jwks(both.to_jwks()).value(), kRelay);
  std::string old_token = sign_token(old_key, good_claims()).value();
  std::string new_token = sign_token(new_key, good_claims()).value();
  CHECK(v.verify(old_token, kNow).ok());
  CHECK(v.verify(new_token, kNow).ok());

  KeySet only_new;
  only_new.add(new_key);
  v.trust_set(only_new, kRelay);
  CHECK(v.verify(new_token, kNow).ok());
  Result<Claims> retired = v.verify(old_token, kNow);
  CHECK(retired.status().code() == Status::Code::kNotFound);
  // The secret trusted for the same issuer survives a key set refresh.
  CHECK(v.verify(sign_token(app, good_claims()).value(), kNow).ok());
}

TEST_CASE("one verifier and its keys serve several threads at once") {
  Fixture f;
  Claims app_claims = good_claims();
  app_claims.iss = kApp;
  const std::string relay_token = sign_token(f.relay, good_claims()).value();
  const std::string app_token = sign_token(f.app, app_claims).value();
  std::atomic<int> good{0};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        const std::string& token = (t + i) % 2 == 0 ? relay_token : app_token;
        (f.check(token).ok() ? good : bad)++;
        // Signing with the shared HS256 key at the same time.
        (f.app.verify("x", f.app.sign("x").value()) ? good : bad)++;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  CHECK(good == 800);
  CHECK(bad == 0);
}

}  // namespace
}  // namespace hut
