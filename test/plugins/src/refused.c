/* Test plugins the space must refuse before running any of their code: built
 * with -DPLUGIN_NAME, and one of -DWRONG_MAJOR, -DNEWER_MINOR, -DREQUIRES=... */
#include <hutopia/plugin.h>
#include <stdlib.h>

#ifndef REQUIRES
#define REQUIRES NULL
#define REQUIRES_LIST NULL
#else
static const char* const requires_list[] = {REQUIRES, NULL};
#define REQUIRES_LIST requires_list
#endif

#if defined(WRONG_MAJOR)
#define MAJOR (HUT_PLUGIN_ABI_MAJOR + 1)
#else
#define MAJOR HUT_PLUGIN_ABI_MAJOR
#endif
#if defined(NEWER_MINOR)
#define MINOR (HUT_PLUGIN_ABI_MINOR + 1)
#else
#define MINOR HUT_PLUGIN_ABI_MINOR
#endif

static const hut_plugin_descriptor descriptor = {
    .abi_major = MAJOR,
    .abi_minor = MINOR,
    .name = PLUGIN_NAME,
    .version = "0.0.1",
    .requires_plugins = REQUIRES_LIST,
};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

/* Reaching init would be a bug of the space: the test run dies loudly. */
HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* host, hut_plugin* self, const char* config_json,
                                      char* err, size_t errlen) {
  (void)host;
  (void)self;
  (void)config_json;
  (void)err;
  (void)errlen;
  abort();
}
