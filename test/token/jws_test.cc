// Compact JWS and keys: the RFC examples, parsing, PEM, JWK and JWK sets.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <hutopia/token.h>
#include <string>

#include "test_util.h"
#include "token/token_helpers.h"

namespace hut {
namespace {

// RFC 8037 appendix A.1 (private key) and A.2 (its public key).
constexpr const char* kRfc8037Jwk =
    R"({"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",)"
    R"("x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})";
constexpr const char* kRfc8037PublicJwk =
    R"({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})";
// RFC 8037 appendix A.4.
constexpr const char* kRfc8037Jws =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
// RFC 7515 appendix A.1: the JWS and the JWK's "k".
constexpr const char* kRfc7515Jws =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
constexpr const char* kRfc7515K =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

TEST_CASE("RFC 8037 A.4: the Ed25519 JWS verifies and signing it again gives the same signature") {
  Result<Jws> jws = parse_jws(kRfc8037Jws);
  REQUIRE(jws.ok());
  CHECK(jws->alg == "EdDSA");
  CHECK_FALSE(jws->has_kid);
  CHECK(jws->payload_json == "Example of Ed25519 signing");

  Result<Key> pub = Key::from_jwk(kRfc8037PublicJwk);
  REQUIRE(pub.ok());
  CHECK_FALSE(pub->has_private());
  CHECK(pub->verify(jws->signing_input, jws->signature));

  Result<Key> pair = Key::from_jwk(kRfc8037Jwk);
  REQUIRE(pair.ok());
  CHECK(pair->has_private());
  Result<std::string> sig = pair->sign(jws->signing_input);
  REQUIRE(sig.ok());
  CHECK(*sig == jws->signature);
  CHECK(jws->signing_input + "." + base64url_encode(*sig) == kRfc8037Jws);

  std::string tampered = jws->signature;
  tampered[10] ^= 1;
  CHECK_FALSE(pub->verify(jws->signing_input, tampered));
}

TEST_CASE("RFC 7515 A.1: the HS256 JWS verifies with its JWK secret") {
  Result<Jws> jws = parse_jws(kRfc7515Jws);
  REQUIRE(jws.ok());
  CHECK(jws->alg == "HS256");
  CHECK(jws->header_json == "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}");
  Result<std::string> secret = base64url_decode(kRfc7515K);
  REQUIRE(secret.ok());
  Result<Key> key = Key::hs256(*secret);
  REQUIRE(key.ok());
  CHECK(key->verify(jws->signing_input, jws->signature));
  CHECK(key->sign(jws->signing_input).value() == jws->signature);
  Result<Key> other = Key::hs256("another secret");
  CHECK_FALSE(other->verify(jws->signing_input, jws->signature));
}

TEST_CASE("a private JWK whose x does not match d is refused") {
  std::string jwk = kRfc8037Jwk;
  jwk.replace(jwk.find("11qY"), 4, "22qY");
  CHECK_FALSE(Key::from_jwk(jwk).ok());
}

TEST_CASE("parse_jws refuses malformed tokens") {
  Key key = Key::hs256("secret").value();
  std::string good = sign_jws(key, R"({"a":1})").value();
  REQUIRE(parse_jws(good).ok());

  CHECK_FALSE(parse_jws("abc.def").ok());    // two parts
  CHECK_FALSE(parse_jws(good + ".x").ok());  // four parts
  CHECK_FALSE(parse_jws("").ok());
  std::string bad_b64 = good;
  bad_b64[3] = '+';  // outside the base64url alphabet
  CHECK_FALSE(parse_jws(bad_b64).ok());
  std::string with_space = good;
  with_space.insert(5, " ");
  CHECK_FALSE(parse_jws(with_space).ok());
  // Padding: the header {"alg":"HS256"} is 15 bytes, so its base64 ends in '='.
  std::string hdr = base64url_encode(R"({"alg":"HS256"})");
  std::string rest = good.substr(good.find('.'));
  CHECK(parse_jws(hdr + rest).ok());
  CHECK_FALSE(parse_jws(hdr + "=" + rest).ok());
  // Header not a JSON object.
  CHECK_FALSE(parse_jws(base64url_encode("[\"alg\"]") + rest).ok());
  CHECK_FALSE(parse_jws(base64url_encode("not json") + rest).ok());
  CHECK_FALSE(parse_jws(base64url_encode(R"({"alg":"HS256"} x)") + rest).ok());
  // alg missing or not a string.
  CHECK_FALSE(parse_jws(base64url_encode(R"({"typ":"JWT"})") + rest).ok());
  CHECK_FALSE(parse_jws(base64url_encode(R"({"alg":5})") + rest).ok());
  // crit, a non-string kid, a member named twice.
  Result<Jws> crit = parse_jws(base64url_encode(R"({"alg":"HS256","crit":["exp"]})") + rest);
  CHECK_FALSE(crit.ok());
  CHECK(crit.status().message() == "header has crit");
  CHECK_FALSE(parse_jws(base64url_encode(R"({"alg":"HS256","kid":7})") + rest).ok());
  CHECK_FALSE(parse_jws(base64url_encode(R"({"alg":"EdDSA","alg":"HS256"})") + rest).ok());
  // Oversized.
  CHECK_FALSE(parse_jws(std::string(9000, 'a') + "." + "b.c").ok());
  Result<Jws> big = parse_jws(good, good.size() - 1);
  CHECK_FALSE(big.ok());
  CHECK(big.status().message() == "token too large");
  CHECK(parse_jws(good, good.size()).ok());
}

TEST_CASE("sign_jws and sign_token round trip through parse_jws and Key::verify") {
  for (JwsAlg alg : {JwsAlg::kEdDSA, JwsAlg::kHS256}) {
    CAPTURE(jws_alg_name(alg));
    Key key =
        alg == JwsAlg::kEdDSA ? Key::generate_ed25519("k1").value() : Key::hs256("s3cret", "app").value();
    Result<std::string> token = sign_token(key, test::good_claims());
    REQUIRE(token.ok());
    Result<Jws> jws = parse_jws(*token);
    REQUIRE(jws.ok());
    CHECK(jws->alg == jws_alg_name(alg));
    CHECK(jws->kid == key.kid());
    CHECK(jws->header_json.find("\"typ\":\"JWT\"") != std::string::npos);
    CHECK(key.public_key().verify(jws->signing_input, jws->signature));
    CHECK(jws->payload_json.find("\"sub\":\"user-42\"") != std::string::npos);
    CHECK(jws->payload_json.find("\"exp\":1800000060") != std::string::npos);
  }
  CHECK_FALSE(sign_jws(Key::hs256("s").value(), "[1]").ok());
  CHECK_FALSE(Key::hs256("").ok());
}

TEST_CASE("a public key cannot sign, and public_key() drops the private part") {
  Key pair = Key::generate_ed25519("k").value();
  Key pub = pair.public_key();
  CHECK(pair.has_private());
  CHECK_FALSE(pub.has_private());
  CHECK(pub.kid() == "k");
  CHECK_FALSE(pub.sign("x").ok());
  std::string sig = pair.sign("x").value();
  CHECK(pub.verify("x", sig));
  CHECK_FALSE(pub.verify("y", sig));
}

TEST_CASE("PEM save and load round trip, with mode 0600") {
  test::TempDir dir;
  Key pair = Key::generate_ed25519("k1").value();
  std::string path = dir.file("relay.pem");
  REQUIRE(pair.save_pem_file(path).ok());
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::string text = test::read_file(path);
  CHECK(text.rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);

  Result<Key> loaded = Key::load_pem_file(path, "k1");
  REQUIRE(loaded.ok());
  CHECK(loaded->has_private());
  CHECK(loaded->kid() == "k1");
  CHECK(loaded->to_jwk().value() == pair.to_jwk().value());
  std::string sig = loaded->sign("data").value();
  CHECK(pair.verify("data", sig));

  // Saving again replaces the file atomically and keeps the mode.
  Key other = Key::generate_ed25519("k2").value();
  REQUIRE(other.save_pem_file(path).ok());
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(Key::load_pem_file(path, "k2")->to_jwk().value() == other.to_jwk().value());

  // The public key alone as SubjectPublicKeyInfo.
  std::string pub_pem = pair.public_key().to_pem().value();
  CHECK(pub_pem.rfind("-----BEGIN PUBLIC KEY-----", 0) == 0);
  Result<Key> pub = Key::from_pem(pub_pem, "k1");
  REQUIRE(pub.ok());
  CHECK_FALSE(pub->has_private());
  CHECK(pub->verify("data", sig));

  CHECK_FALSE(Key::from_pem("not a key", "k").ok());
  CHECK_FALSE(Key::load_pem_file(dir.file("missing.pem"), "k").ok());
  CHECK_FALSE(Key::hs256("s").value().to_pem().ok());
}

TEST_CASE("a non-Ed25519 PEM key is refused") {
  EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  REQUIRE(ec != nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(bio, ec, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(ec);
  CHECK(pem.rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);
  Result<Key> key = Key::from_pem(pem, "k");
  CHECK_FALSE(key.ok());
  CHECK(key.status().message() == "not an Ed25519 key");
}

TEST_CASE("JWK and JWKS round trip, kid lookup") {
  Key a = Key::generate_ed25519("a").value();
  Key b = Key::generate_ed25519("b").value();
  std::string jwk = a.to_jwk().value();
  CHECK(jwk.find("\"kty\":\"OKP\"") != std::string::npos);
  CHECK(jwk.find("\"crv\":\"Ed25519\"") != std::string::npos);
  CHECK(jwk.find("\"kid\":\"a\"") != std::string::npos);
  CHECK(jwk.find("\"d\"") == std::string::npos);
  Result<Key> back = Key::from_jwk(jwk);
  REQUIRE(back.ok());
  CHECK(back->kid() == "a");
  CHECK(back->verify("m", a.sign("m").value()));

  KeySet set;
  set.add(a);
  set.add(b);
  set.add(Key::hs256("secret", "c").value());  // never published
  CHECK(set.size() == 2);
  std::string text = set.to_jwks();
  CHECK(text.find("\"alg\":\"EdDSA\"") != std::string::npos);
  CHECK(text.find("\"use\":\"sig\"") != std::string::npos);
  CHECK(text.find("secret") == std::string::npos);
  Result<KeySet> parsed = KeySet::parse_jwks(text);
  REQUIRE(parsed.ok());
  CHECK(parsed->size() == 2);
  CHECK(parsed->to_jwks() == text);
  REQUIRE(parsed->find("b") != nullptr);
  CHECK(parsed->find("b")->verify("m", b.sign("m").value()));
  CHECK_FALSE(parsed->find("b")->verify("m", a.sign("m").value()));
  CHECK_FALSE(parsed->find("b")->has_private());
  CHECK(parsed->find("zzz") == nullptr);

  // Replacing a kid keeps one entry.
  Key a2 = Key::generate_ed25519("a").value();
  set.add(a2);
  CHECK(set.size() == 2);
  CHECK(set.find("a")->verify("m", a2.sign("m").value()));
}

TEST_CASE("JWKS parsing: other key types skipped, a bad Ed25519 key refuses the set") {
  std::string x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
  std::string ok_key = R"({"kty":"OKP","crv":"Ed25519","x":")" + x + R"(","kid":"k1"})";
  Result<KeySet> mixed = KeySet::parse_jwks(
      R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"r"},{"kty":"OKP","crv":"X25519","x":")" + x +
      R"(","kid":"x"},)" + ok_key + "]}");
  REQUIRE(mixed.ok());
  CHECK(mixed->size() == 1);
  CHECK(mixed->find("k1") != nullptr);

  CHECK_FALSE(
      KeySet::parse_jwks(R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":")" + x + R"("}]})").ok());  // no kid
  CHECK_FALSE(KeySet::parse_jwks(R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"s"}]})").ok());
  CHECK_FALSE(KeySet::parse_jwks(R"({"keys":[)" + ok_key + "," + ok_key + "]}").ok());  // kid twice
  CHECK_FALSE(KeySet::parse_jwks(R"({"keys":{}})").ok());
  CHECK_FALSE(KeySet::parse_jwks("[]").ok());
  CHECK_FALSE(KeySet::parse_jwks("{").ok());
  CHECK(KeySet::parse_jwks(R"({"keys":[]})")->size() == 0);
}

TEST_CASE("base64url is strict") {
  CHECK(base64url_encode("\xfb\xff") == "-_8");
  CHECK(base64url_decode("-_8").value() == "\xfb\xff");
  CHECK_FALSE(base64url_decode("-_8=").ok());
  CHECK_FALSE(base64url_decode("+/8").ok());
  CHECK_FALSE(base64url_decode("-_9").ok());  // non-zero unused bits
  CHECK_FALSE(base64url_decode("a").ok());
}

}  // namespace
}  // namespace hut
