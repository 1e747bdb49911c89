// Feeds arbitrary text to both configuration parsers, with an environment that
// overrides a few keys from the input itself. Nothing may crash or leak, and
// a successful parse must hold only values that pass validation.
#include <hutopia/config.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // The last line, when it starts with "#env ", is the value of a few variables.
  std::string env_value;
  size_t nl = text.rfind('\n');
  if (nl != std::string_view::npos && text.substr(nl + 1).substr(0, 5) == "#env ")
    env_value = text.substr(nl + 6);
  hut::EnvLookup env = [&](const std::string& name) -> std::optional<std::string> {
    if (env_value.empty()) return std::nullopt;
    if (name == "HUTOPIA_AUTH_LEEWAY" || name == "HUTOPIA_SPACE_LISTEN" ||
        name == "HUTOPIA_RELAY_REGISTRATION") {
      return env_value;
    }
    return std::nullopt;
  };

  hut::Result<hut::SpaceConfig> space = hut::parse_space_config(text, "fuzz.toml", env);
  if (space.ok()) {
    if (space->auth.leeway < 0 || space->auth.leeway > 30) std::abort();
    if (!hut::parse_listen_address(space->space.listen).ok()) std::abort();
    if (space->space.id.empty()) std::abort();
  } else if (space.status().message().substr(0, 9) != "fuzz.toml" &&
             space.status().message().substr(0, 21) != "environment variable ") {
    std::abort();
  }
  hut::Result<hut::RelayConfig> relay = hut::parse_relay_config(text, "fuzz.toml", env);
  if (relay.ok() && relay->relay.token_ttl <= 0) std::abort();
  (void)hut::parse_listen_address(text.substr(0, 64));
  return 0;
}
