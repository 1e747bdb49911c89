// The keys of spaced.toml and relayd.toml as data: what the loader knows, in a
// form that documentation and tests can read (docs/configuration.md lists the
// same rows).
//
// Thread safety: the functions return fresh values and may run on any thread.
#ifndef HUTOPIA_CONFIG_SCHEMA_H_
#define HUTOPIA_CONFIG_SCHEMA_H_

#include <hutopia/config.h>

#include <string>
#include <vector>

namespace hut {

struct ConfigKeyInfo {
  std::string section;        // "space"
  std::string key;            // "listen"
  std::string type;           // "string", "integer" or "boolean"
  std::string default_value;  // as TOML would write it: "\"127.0.0.1:8080\"", "300", "true"
  std::string env;            // "HUTOPIA_SPACE_LISTEN"
  std::string description;    // one line
};

std::vector<ConfigKeyInfo> space_config_keys();
std::vector<ConfigKeyInfo> relay_config_keys();

// One Markdown table row per key, in schema order:
// | `listen` | string | `"127.0.0.1:8080"` | `HUTOPIA_SPACE_LISTEN` | description |
std::string config_markdown_rows(const std::vector<ConfigKeyInfo>& keys, const std::string& section);

// Where the key tables and for_each_key (config.h) disagree: a key without a
// row, a row of no key. Empty when they match.
std::vector<std::string> config_key_table_errors();

// The library's struct inside an options object.
const SpaceConfig& options_config(const SpaceOptions& options);
const RelayConfig& options_config(const RelayOptions& options);
SpaceConfig& options_config(SpaceOptions& options);
RelayConfig& options_config(RelayOptions& options);
// validate_space_config / validate_relay_config on the library's struct
// (without going through an options object).
Status check_space_config(const SpaceConfig& config);
Status check_relay_config(const RelayConfig& config);

}  // namespace hut

#endif  // HUTOPIA_CONFIG_SCHEMA_H_
