#include "util/assets.h"

namespace hut {

std::optional<EmbeddedFile> find_embedded(const EmbeddedAssets& assets, std::string_view path) {
  for (size_t i = 0; i < assets.count; ++i) {
    if (path == assets.paths[i])
      return EmbeddedFile{assets.types[i],
                          std::string_view(reinterpret_cast<const char*>(assets.data[i]), assets.sizes[i])};
  }
  return std::nullopt;
}

}  // namespace hut
