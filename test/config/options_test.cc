// The options objects behind the stable ABI (SpaceOptions, RelayOptions):
// every key goes through them and back unchanged, they agree with the TOML
// loader, and they refuse what the loader refuses with its messages.
#include <doctest/doctest.h>

#include <hutopia/config.h>

#include <map>
#include <string>
#include <type_traits>

#include "config/schema.h"

namespace hut {
namespace {

// Every boolean flipped and every integer one below its default (each
// default is above its key's minimum, and the rules between keys still hold).
template <typename C>
C unusual_numbers() {
  C c;
  for_each_key(c, [&](std::string_view, auto& value) {
    using T = std::remove_cvref_t<decltype(value)>;
    if constexpr (std::is_same_v<T, bool>) {
      value = !value;
    } else if constexpr (std::is_same_v<T, int64_t>) {
      value = value - 1;
    }
  });
  return c;
}

// A string each key's checks accept, unlike its default (admin.* and
// log.level serve both files).
const std::map<std::string_view, std::string_view> kStrings = {
    {"space.id", "other"},
    {"space.name", "Other space"},
    {"space.listen", "127.0.0.1:9123"},
    {"space.url", "https://space.example"},
    {"space.data_dir", "var/other"},
    {"space.plugins_dir", "other-plugins"},
    {"space.tls_cert", "cert.pem"},
    {"space.tls_key", "key.pem"},
    {"admin.listen", "127.0.0.1:9124"},
    {"admin.token", "0123456789abcdef0123456789abcdef0123"},
    {"auth.relay_issuer", "https://relay.example"},
    {"auth.relay_jwks", "https://relay.example/.well-known/jwks.json"},
    {"auth.relay_ca_file", "ca.pem"},
    {"auth.relay_login", "https://relay.example/login"},
    {"auth.app_issuer", "app"},
    {"auth.app_secret", "an app secret of some length"},
    {"store.url", "postgres://hut@127.0.0.1/other"},
    {"cluster.redis", "redis://127.0.0.1:6390"},
    {"cluster.node", "node-1"},
    {"log.level", "debug"},
    {"relay.listen", "127.0.0.1:9125"},
    {"relay.issuer", "https://relay.example"},
    {"relay.data_dir", "var/other-relay"},
};

template <typename C>
void set_strings(C& c) {
  for_each_key(c, [&](std::string_view key, auto& value) {
    if constexpr (std::is_same_v<std::remove_cvref_t<decltype(value)>, std::string>) {
      auto it = kStrings.find(key);
      REQUIRE_MESSAGE(it != kStrings.end(), key);
      value = std::string(it->second);
    }
  });
}

// A value unlike the default for every key, valid by every rule, and the
// TOML text that says the same.
template <typename C>
C every_key_changed(std::string* toml) {
  C c = unusual_numbers<C>();
  set_strings(c);
  C defaults;
  std::string section;
  for_each_key(c, [&](std::string_view key, const auto& value) {
    std::string s(key.substr(0, key.find('.')));
    if (s != section) *toml += "[" + s + "]\n";
    section = s;
    std::string name(key.substr(key.find('.') + 1));
    using T = std::remove_cvref_t<decltype(value)>;
    if constexpr (std::is_same_v<T, std::string>) {
      *toml += name + " = \"" + value + "\"\n";
    } else if constexpr (std::is_same_v<T, bool>) {
      *toml += name + " = " + (value ? "true" : "false") + "\n";
    } else {
      *toml += name + " = " + std::to_string(value) + "\n";
    }
    for_each_key(defaults, [&](std::string_view k, const auto& d) {
      if constexpr (std::is_same_v<std::remove_cvref_t<decltype(d)>, T>) {
        if (k == key) CHECK_MESSAGE(d != value, key);
      }
    });
  });
  return c;
}

// Two structs are equal key by key; names the first key that differs.
template <typename C>
void check_same(const C& a, const C& b) {
  std::vector<std::string> differ;
  for_each_key(a, [&](std::string_view key, const auto& va) {
    for_each_key(b, [&](std::string_view k, const auto& vb) {
      if constexpr (std::is_same_v<std::remove_cvref_t<decltype(va)>, std::remove_cvref_t<decltype(vb)>>) {
        if (k == key && va != vb) differ.emplace_back(key);
      }
    });
  });
  CHECK_MESSAGE(differ.empty(), (differ.empty() ? std::string() : differ.front()));
}

template <typename O, typename C>
void round_trip() {
  std::string toml;
  C c = every_key_changed<C>(&toml);
  Result<O> options = options_from<O>(c);
  REQUIRE_MESSAGE(options.ok(), options.status().to_string());
  CHECK(options->validate().ok());
  check_same(config_from<C>(*options), c);

  O parsed;
  Status st;
  if constexpr (std::is_same_v<C, SpaceConfig>) {
    st = parse_space_options(toml, "spaced.toml", {}, &parsed);
  } else {
    st = parse_relay_options(toml, "relayd.toml", {}, &parsed);
  }
  REQUIRE_MESSAGE(st.ok(), st.to_string());
  check_same(config_from<C>(parsed), c);
}

TEST_CASE("options: every space key goes through SpaceOptions and back, as the TOML file gives it") {
  round_trip<SpaceOptions, SpaceConfig>();
}

TEST_CASE("options: every relay key goes through RelayOptions and back, as the TOML file gives it") {
  round_trip<RelayOptions, RelayConfig>();
}

TEST_CASE("options: set refuses an unknown key, a wrong type and a value out of range, naming the key") {
  SpaceOptions o;
  Status st = o.set("space.colour", "blue");
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() == "unknown key space.colour");
  st = o.set("space.listen", int64_t{80});
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() == "space.listen: expected a string");
  st = o.set("limits.max_message", true);
  CHECK(st.message() == "limits.max_message: expected an integer");
  st = o.set("auth.relay_jwks_insecure", "yes");
  CHECK(st.message() == "auth.relay_jwks_insecure: expected a boolean");
  st = o.set("auth.leeway", 31);
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() == "auth.leeway: must be between 0 and 30");
  st = o.set("space.listen", "nowhere");
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() == "space.listen: expected host:port or [v6]:port, the port is missing");
  // A refused value leaves the old one.
  CHECK(o.get_int("auth.leeway").value() == 30);
  CHECK(o.get_string("space.listen").value() == "127.0.0.1:8080");
  // The same messages as the file loader, there with the file and line.
  SpaceOptions file;
  st = parse_space_options("[auth]\nleeway = 31\n", "spaced.toml", {}, &file);
  CHECK(st.message() == "spaced.toml:2: auth.leeway: must be between 0 and 30");

  RelayOptions r;
  CHECK(r.set("relay.token_ttl", 0).message() == "relay.token_ttl: must be between 1 and 315360000");
  CHECK(r.set("space.id", "x").message() == "unknown key space.id");
  CHECK(r.get_string("relay.token_ttl").status().code() == Status::Code::kInvalidArgument);
}

TEST_CASE("options: the rules between keys are checked by validate, as for a file") {
  SpaceOptions o;
  REQUIRE(o.set("auth.max_token_lifetime", 100).ok());
  CHECK(o.validate().message() == "auth.app_token_ttl: must not exceed auth.max_token_lifetime (100)");
  REQUIRE(o.set("auth.app_token_ttl", 60).ok());
  CHECK(o.validate().ok());
  SpaceConfig c;
  c.auth.max_token_lifetime = 100;
  CHECK(validate_space_config(c).message() ==
        "auth.app_token_ttl: must not exceed auth.max_token_lifetime (100)");
}

TEST_CASE("options: the key tables and for_each_key list the same keys") {
  std::vector<std::string> errors = config_key_table_errors();
  CHECK_MESSAGE(errors.empty(), (errors.empty() ? std::string() : errors.front()));
  size_t n = 0;
  SpaceConfig sc;
  for_each_key(sc, [&](std::string_view, const auto&) { ++n; });
  CHECK(n == space_config_keys().size());
  n = 0;
  RelayConfig rc;
  for_each_key(rc, [&](std::string_view, const auto&) { ++n; });
  CHECK(n == relay_config_keys().size());
}

}  // namespace
}  // namespace hut
