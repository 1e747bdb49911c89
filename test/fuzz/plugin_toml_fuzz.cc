// Fuzzes a plugin's configuration file (<name>.toml) turned into the JSON its
// init receives: any bytes give either valid JSON or an error naming the
// file, line and column; never a crash.
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "bus/protocol.h"
#include "plugins/toml_json.h"

namespace {

std::string scratch_dir;

// A file in a folder of its own, removed when the fuzzer exits.
std::string scratch_file() {
  const char* base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
  scratch_dir = std::string(base) + "/hut-fuzz-toml-XXXXXX";
  if (mkdtemp(scratch_dir.data()) == nullptr) __builtin_trap();
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(scratch_dir, ec);
  });
  return scratch_dir + "/plugin.toml";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = scratch_file();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) __builtin_trap();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  std::fclose(f);
  hut::Result<std::string> json = hut::toml_file_to_json(path);
  if (json.ok()) {
    if (!hut::bus::is_json(*json) || json->empty() || json->front() != '{') std::abort();
  } else if (json.status().message().find(path) != 0) {
    std::abort();
  }
  return 0;
}
