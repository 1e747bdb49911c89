// A program built outside the tree against the installed libhutopia, with only
// what `pkg-config --cflags --libs hutopia` gives. It prints what it got from
// the library; install_test.sh compares that with what it expects.
#include <hutopia/config.h>
#include <hutopia/status.h>
#include <hutopia/token.h>
#include <hutopia/version.h>

#include <cstdio>
#include <optional>
#include <string>

int main() {
  std::printf("version %s\n", hut_version());
  std::printf("header version %s\n", HUT_VERSION_STRING);

  hut::EnvLookup env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "HUTOPIA_ADMIN_TOKEN") return std::string("from-env-0123456789abcdef0123456789");
    return std::nullopt;
  };
  hut::Result<hut::SpaceConfig> space =
      hut::parse_space_config("[space]\nid = \"outoftree\"\nlisten = \"[::1]:0\"\n", "inline.toml", env);
  if (!space.ok()) {
    std::printf("unexpected error %s\n", space.status().to_string().c_str());
    return 1;
  }
  std::printf("space %s %s admin token %s\n", space->space.id.c_str(), space->space.listen.c_str(),
              space->admin.token.c_str());

  hut::Result<hut::RelayConfig> relay =
      hut::parse_relay_config("[relay]\ntoken_ttl = \"60\"\n", "relayd.toml", env);
  std::printf("relay error %s\n", relay.ok() ? "none" : relay.status().to_string().c_str());

  hut::Result<hut::ListenAddress> addr = hut::parse_listen_address("127.0.0.1:8080");
  std::printf("address %s %d\n", addr.ok() ? addr->host.c_str() : "?", addr.ok() ? addr->port : -1);

  std::printf("base64url %s\n", hut::base64url_encode("\xfb\xff").c_str());

  // RFC 7515 appendix A.1's key; the signature depends only on the key and the
  // signing input, so the token is the same on every machine.
  hut::Result<std::string> secret = hut::base64url_decode(
      "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow");
  if (!secret.ok()) return 1;
  hut::Result<hut::Key> key = hut::Key::hs256(*secret);
  if (!key.ok()) return 1;
  hut::Result<std::string> jws = hut::sign_jws(*key, "{\"sub\":\"u1\"}");
  std::printf("jws %s\n", jws.ok() ? jws->c_str() : jws.status().to_string().c_str());
  std::printf("hs256 empty secret %s\n", hut::Key::hs256("").ok() ? "accepted" : "refused");
  return 0;
}
