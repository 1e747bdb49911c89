// A plugin's configuration file (<name>.toml) turned into the JSON text that
// its init receives. Thread: any.
#ifndef HUTOPIA_PLUGINS_TOML_JSON_H_
#define HUTOPIA_PLUGINS_TOML_JSON_H_

#include <string>

#include <hutopia/status.h>

namespace hut {

// "{}" when the file does not exist; kInvalidArgument naming the file, line
// and column when it is not valid TOML.
Result<std::string> toml_file_to_json(const std::string& path);

}  // namespace hut

#endif  // HUTOPIA_PLUGINS_TOML_JSON_H_
