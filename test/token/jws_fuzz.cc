// libFuzzer target: any bytes through parse_jws, TokenVerifier::verify (one
// EdDSA and one HS256 key trusted), Key::from_jwk and KeySet::parse_jwks.
#include <hutopia/token.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

// The keys the seed corpus in test/fuzz/corpus/jws was signed with: the
// Ed25519 pair of RFC 8037 appendix A.1 as kid "fuzz-ed", and an app secret.
const hut::TokenVerifier& verifier() {
  static const hut::TokenVerifier* v = [] {
    auto* out = new hut::TokenVerifier(hut::TokenVerifier::Options{"fuzz-space", 30, 300});
    hut::Result<hut::Key> ed = hut::Key::from_jwk(
        R"({"kty":"OKP","crv":"Ed25519","kid":"fuzz-ed","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",)"
        R"("x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})");
    hut::Result<hut::Key> hs = hut::Key::hs256("fuzz-secret");
    if (!ed.ok() || !hs.ok()) std::abort();
    out->trust(*ed, "fuzz-relay");
    out->trust(*hs, "fuzz-app");
    return out;
  }();
  return *v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  hut::Result<hut::Jws> jws = hut::parse_jws(input);
  // A parsed token's signing input is a prefix of its text.
  if (jws.ok() && input.substr(0, jws->signing_input.size()) != jws->signing_input) std::abort();
  hut::Result<hut::Claims> claims = verifier().verify(input, 1800000000);
  if (claims.ok() && (claims->jti.empty() || claims->aud != "fuzz-space")) std::abort();
  (void)hut::Key::from_jwk(input);
  (void)hut::KeySet::parse_jwks(input);
  return 0;
}
