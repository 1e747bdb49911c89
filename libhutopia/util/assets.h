// Files embedded by scripts/embed_assets.py (the space's web client, the
// relay's pages): finding one by its path.
// Thread safety: pure; any thread.
#ifndef HUTOPIA_UTIL_ASSETS_H_
#define HUTOPIA_UTIL_ASSETS_H_

#include <hutopia/plugin_assets.h>

#include <cstddef>
#include <optional>
#include <string_view>

namespace hut {

// One embedded table, as the generator's five parallel arrays.
struct EmbeddedAssets {
  size_t count;
  const char* const* paths;
  const char* const* types;
  const unsigned char* const* data;
  const size_t* sizes;
};

// The table of the arrays declared by HUT_DECLARE_ASSETS(sym).
#define HUT_EMBEDDED_ASSETS(sym) (::hut::EmbeddedAssets{HUT_ASSET_FIELDS(sym)})

struct EmbeddedFile {
  std::string_view type;  // its Content-Type
  std::string_view data;
};

// The file at `path` ("index.html", "img/logo.svg"); nullopt when none.
std::optional<EmbeddedFile> find_embedded(const EmbeddedAssets& assets, std::string_view path);

}  // namespace hut

#endif  // HUTOPIA_UTIL_ASSETS_H_
