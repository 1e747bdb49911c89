/* The assets scripts/embed_assets.py embeds in a C file under a symbol name
 * (--name SYMBOL): the declarations of its five parallel arrays, and the
 * descriptor fields that serve them at /plugins/<name>/<path>.
 *
 *     HUT_DECLARE_ASSETS(voice_assets)
 *     ...
 *     HUT_SET_DESCRIPTOR_ASSETS(descriptor, voice_assets);
 *
 * or, in an aggregate initializer of hut_plugin_descriptor, HUT_ASSET_FIELDS
 * (voice_assets) in the place of its five asset fields. C and C++ alike. */
#ifndef HUTOPIA_PLUGIN_ASSETS_H_
#define HUTOPIA_PLUGIN_ASSETS_H_

#include <stddef.h>

#ifdef __cplusplus
#define HUT_ASSETS_LINKAGE_ extern "C"
#else
#define HUT_ASSETS_LINKAGE_ extern
#endif

/* Declares SYMBOL_count, SYMBOL_paths, SYMBOL_types, SYMBOL_data and
 * SYMBOL_sizes, as the generated file defines them. At file scope. */
#define HUT_DECLARE_ASSETS(sym)                                \
  HUT_ASSETS_LINKAGE_ const size_t sym##_count;                \
  HUT_ASSETS_LINKAGE_ const char* const sym##_paths[];         \
  HUT_ASSETS_LINKAGE_ const char* const sym##_types[];         \
  HUT_ASSETS_LINKAGE_ const unsigned char* const sym##_data[]; \
  HUT_ASSETS_LINKAGE_ const size_t sym##_sizes[];

/* The five asset fields of a hut_plugin_descriptor, in their order. */
#define HUT_ASSET_FIELDS(sym) sym##_count, sym##_paths, sym##_types, sym##_data, sym##_sizes

/* Points the asset fields of descriptor `d` (an lvalue) at the table. */
#define HUT_SET_DESCRIPTOR_ASSETS(d, sym) \
  do {                                    \
    (d).asset_count = sym##_count;        \
    (d).asset_paths = sym##_paths;        \
    (d).asset_types = sym##_types;        \
    (d).asset_data = sym##_data;          \
    (d).asset_sizes = sym##_sizes;        \
  } while (0)

#endif /* HUTOPIA_PLUGIN_ASSETS_H_ */
